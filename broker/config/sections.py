"""Sections of the settings file that hold tables and lists: ``[profile]``, ``[linking]``, ``[assurance]``,
``[risk]``, and the claims-sealing keys. Each reads through ``Reader`` and reports problems there."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import parseaddr

from broker.config.reader import Reader
from broker.core.assurance import DEFAULT_ORDER, DEFAULT_POLICY, AssurancePolicy, order_problems
from broker.core.profile import MergeRules, rule_problems
from broker.core.risk import RiskRules
from broker.core.risk_rules import parse_risk

CLAIMS_KEY_HEX = 64  # 32 random bytes (AES-256), written as hexadecimal
_HEX_KEY = re.compile(rb"[0-9a-fA-F]{%d}" % CLAIMS_KEY_HEX)


@dataclass(frozen=True)
class LinkingSettings:
    """Automatic linking by e-mail (issue 5): only for listed (new upstream, existing upstream) pairs, and only
    when the new upstream is authoritative for e-mail; otherwise a matching verified address is an offer."""

    auto_link_by_email: frozenset[tuple[str, str]] = frozenset()
    email_authoritative: frozenset[str] = frozenset()


@dataclass(frozen=True)
class LimitSettings:
    """Abuse limits (``limits`` notation, e.g. "60/minute"); counters in Redis when ``storage_url`` says so.

    Per-address limits are checked before any shared budget, and one address may use at most
    ``1/address_share`` of a shared budget (``per_downstream``, ``per_upstream``): a shared budget that one
    address can exhaust would let it lock every citizen out (``broker.web.ops.limits``). The back channel
    (RFC 6749 §3.2 token, RFC 7009 revocation, RFC 7662 introspection, OIDC Core §5.3 UserInfo) is limited per
    address (``per_ip_api``), per client on its successful requests (``per_client``: only the client's own
    credentials spend it), and failed client authentication (RFC 6749 §2.3) per (client_id, address)
    (``failed_client_auth``). Repeated failures of unauthenticated callers and limit refusals reach the audit
    log at most once per ``audit_window_seconds`` per (kind, endpoint, client), with the count.
    """

    enabled: bool
    per_ip: str  # every sign-in endpoint, per client address
    per_upstream: str  # callbacks of one upstream provider, all clients together
    per_downstream: str  # sign-in requests of one downstream app, all clients together
    storage_url: str
    #: each back-channel endpoint (token, revocation, introspection, UserInfo), per client address
    per_ip_api: str
    #: successful back-channel requests of one client (token, revocation, introspection)
    per_client: str
    #: failed client authentications per (client_id, address); unknown client ids count as one per address
    failed_client_auth: str
    #: one address may use at most 1/address_share of a shared budget (1: the whole budget)
    address_share: int
    #: at most one audit record per window per (kind, endpoint, client) of unauthenticated failures and 429s
    audit_window_seconds: int
    #: answers to "create an account with a passkey" (each may create an account), per client address, on top of
    #: ``per_ip`` (``broker.journeys.passkey_signup``)
    per_ip_sign_up: str = "10/hour;30/day"


def limits_section(read: Reader, redis_url: str | None) -> LimitSettings:
    """``[limits]``: every rate in ``limits`` notation; counters in ``storage_url``, else in ``redis_url`` (the
    sessions' Redis, when sessions are there), else in process memory."""
    return LimitSettings(
        enabled=read.flag("limits", "enabled", True),
        per_ip=read.rate("limits", "per_ip", "120/minute"),
        per_upstream=read.rate("limits", "per_upstream", "3000/minute"),
        per_downstream=read.rate("limits", "per_downstream", "3000/minute"),
        storage_url=read.text("limits", "storage_url", "") or redis_url or "memory://",
        per_ip_api=read.rate("limits", "per_ip_api", "600/minute"),
        per_client=read.rate("limits", "per_client", "1200/minute"),
        failed_client_auth=read.rate("limits", "failed_client_auth", "20/minute"),
        address_share=read.number("limits", "address_share", 10, 1, 1000),
        audit_window_seconds=read.number("limits", "audit_window_seconds", 60, 1, 86400),
        per_ip_sign_up=read.rate("limits", "per_ip_sign_up", "10/hour;30/day"),
    )


@dataclass(frozen=True)
class MailSettings:
    """``[mail]``: the SMTP server that e-mails citizens notices (a second factor added or removed, issue 17).
    No ``smtp_host``: no mail at all; each notice is skipped and logged."""

    smtp_host: str = ""
    smtp_port: int = 587
    #: STARTTLS (RFC 3207) before anything else; off only for a server on this machine
    starttls: bool = True
    #: ``From``: an address or ``Name <address>``; its address is also the envelope sender
    from_address: str = ""
    username: str = ""
    password: str = field(default="", repr=False)
    timeout_seconds: int = 10


LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


def mail_section(read: Reader) -> MailSettings:
    """``[mail]``: ``smtp_host`` (empty: no mail), ``smtp_port``, ``starttls``, ``from_address`` (needed with a
    host), ``username`` with ``password_file`` (or ``BROKER_MAIL_PASSWORD``), ``timeout_seconds``."""
    reported = len(read.problems)
    host = read.text("mail", "smtp_host", "").strip()
    port = read.number("mail", "smtp_port", 587, 1, 65535)
    starttls = read.flag("mail", "starttls", True)
    from_address = read.text("mail", "from_address", "").strip()
    username = read.text("mail", "username", "")
    secret = read.secret("password_file", "BROKER_MAIL_PASSWORD", 0, section="mail", optional=True)
    timeout = read.number("mail", "timeout_seconds", 10, 1, 120)
    problems = []
    try:  # smtplib's AUTH sends ASCII only
        password = secret.decode("ascii")
    except UnicodeDecodeError:
        problems.append("the password (password_file or BROKER_MAIL_PASSWORD) must be ASCII text")
        password = ""
    if not username.isascii():
        problems.append("username must be ASCII text")
    if host:
        sender = parseaddr(from_address)[1]
        if not from_address:
            problems.append("from_address is required when smtp_host is set")
        elif "@" not in sender or any(c in from_address for c in "\r\n"):
            problems.append(f"from_address must be an e-mail address or 'Name <address>', got {from_address!r:.80}")
        if not starttls and host.lower() not in LOCAL_HOSTS:
            problems.append("starttls = false is allowed only for a server on this machine (localhost); "
                            "a remote server must offer STARTTLS")
        if bool(username) != bool(secret):
            problems.append("username and password_file (or BROKER_MAIL_PASSWORD) go together")
    read.problems.extend(f"[mail] {problem}" for problem in problems)
    if not host or len(read.problems) > reported:
        return MailSettings()
    return MailSettings(host, port, starttls, from_address, username, password, timeout)


def claims_keys(read: Reader) -> tuple[bytes, ...]:
    """The current claims key, then the previous ones (one per line or separated by spaces; ``#`` comments)."""
    suggested = read.base / "certs" / "claims.key"
    hint = (f"; create one with 'broker keys generate-claims-key {suggested}' and add "
            'claims_key_file = "certs/claims.key" to [broker]')
    reported = len(read.problems)
    current = read.secret("claims_key_file", "BROKER_CLAIMS_KEY", 0, hint=hint).strip()
    previous = read.secret("claims_previous_keys_file", "BROKER_CLAIMS_PREVIOUS_KEYS", 0, optional=True)
    if len(read.problems) > reported:  # missing or unreadable, and said so
        return ()
    words = [w for line in previous.splitlines() for w in line.split(b"#", 1)[0].split()]
    keys: list[bytes] = []
    for number, word in enumerate([current, *words]):
        if _HEX_KEY.fullmatch(word):
            keys.append(bytes.fromhex(word.decode("ascii")))
        else:  # the value itself is never shown
            which = "claims_key" if number == 0 else f"claims previous key {number}"
            read.problems.append(f"the {which} must be {CLAIMS_KEY_HEX} hexadecimal digits (32 random bytes), "
                                 "as 'broker keys generate-claims-key' writes")
    return tuple(keys)


def linking_section(read: Reader) -> LinkingSettings:
    """``[linking]``: ``auto_link_by_email = [["new-upstream", "existing-upstream"], ...]`` and
    ``email_authoritative = ["new-upstream", ...]``; both empty by default (never link automatically)."""
    pairs = read.setting("linking", "auto_link_by_email", [])
    if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 and all(
            isinstance(n, str) and n for n in p) for p in pairs):
        read.problems.append("[linking] auto_link_by_email must be a list of [new upstream, existing upstream] pairs")
        pairs = []
    return LinkingSettings(frozenset((p[0], p[1]) for p in pairs), read.text_list("linking", "email_authoritative"))


def profile_section(read: Reader) -> MergeRules:
    """``[profile]``: ``acr_order`` (lowest assurance first) and ``rules`` (claim name -> rule name)."""
    acr_order = read.setting("profile", "acr_order", [])
    rules = read.setting("profile", "rules", {})
    problems = []
    if not isinstance(acr_order, list) or not all(isinstance(a, str) and a for a in acr_order):
        problems.append("acr_order must be a list of non-empty strings")
        acr_order = []
    if not isinstance(rules, Mapping):
        problems.append("rules must be a table of claim = rule")
        rules = {}
    problems += rule_problems(rules, acr_order)
    read.problems.extend(f"[profile] {problem}" for problem in problems)
    if problems:
        return MergeRules()
    return MergeRules(rules=dict(rules), acr_order=tuple(acr_order))


def assurance_section(read: Reader) -> AssurancePolicy:
    """``[assurance]``: ``order`` (acr values, weakest first; default ``core.assurance.DEFAULT_ORDER``),
    ``aliases`` (other acr / AuthnContextClassRef names = the value in the order they mean) and
    ``second_factor_level`` (what an upstream sign-in plus a broker second factor reaches; "" for no step-up) and
    ``enrol_at_step_up`` (offer an account without a second factor to add one at the step-up; off by default)."""
    order = read.setting("assurance", "order", list(DEFAULT_ORDER))
    aliases = read.setting("assurance", "aliases", {})
    problems = []
    if not isinstance(order, list) or not order or not all(isinstance(a, str) and a for a in order):
        problems.append("order must be a non-empty list of acr values")
        order = list(DEFAULT_ORDER)
    if not isinstance(aliases, Mapping) or not all(isinstance(v, str) and v for v in aliases.values()):
        problems.append("aliases must be a table of name = acr value")
        aliases = {}
    default_second = DEFAULT_POLICY.second_factor_level
    if isinstance(order, list) and default_second not in order:
        default_second = ""  # an own scale without REFEDS MFA: no step-up unless the operator names its level
    second = read.setting("assurance", "second_factor_level", default_second)
    problems += order_problems(order, aliases)
    if not isinstance(second, str):
        problems.append("second_factor_level must be an acr value of the order, or \"\" (no step-up)")
    elif second and aliases.get(second, second) not in order:
        problems.append(f"second_factor_level {second!r} is not in the order")
    enrol = read.setting("assurance", "enrol_at_step_up", False)
    if not isinstance(enrol, bool):
        problems.append("enrol_at_step_up must be true or false")
    elif enrol and not second:
        problems.append("enrol_at_step_up needs a second_factor_level (there is no step-up to enrol at)")
    read.problems.extend(f"[assurance] {problem}" for problem in problems)
    if problems:
        return DEFAULT_POLICY
    return AssurancePolicy(order=tuple(order), aliases=dict(aliases), second_factor_level=second or None,
                           enrol_at_step_up=enrol is True)


def risk_section(read: Reader) -> RiskRules:
    """``[risk]``: risk-based challenges (``broker.core.risk``, whose docstring has the rule language):
    ``rules``, ``default``, ``apps``, ``weights``, ``thresholds``, ``window_minutes`` (the velocity window,
    60) and ``retention_days`` (how long the login history keeps a row, 90). No section: allow every login
    except more than 20 of one account in the window, which asks for a step-up."""
    window = read.number("risk", "window_minutes", 60, 1, 1440)
    retention = read.number("risk", "retention_days", 90, 1, 3650)
    table = {key: read.setting("risk", key, None) for key in ("rules", "default", "apps", "weights", "thresholds")}
    rules, problems = parse_risk({key: value for key, value in table.items() if value is not None},
                                 timedelta(minutes=window), timedelta(days=retention))
    read.problems.extend(f"[risk] {problem}" for problem in problems)
    return rules
