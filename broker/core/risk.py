"""Risk-based challenges (issue 17): signals about a login, a score, and the operator's rules that decide
whether the login goes on (allow), needs a second factor first (step-up) or is refused.

Signals (``LoginSignals``), computed by a ``LoginHistory`` from the account's recent logins:

- ``new_device``: the browser's device id (a signed long-lived cookie) was never seen for this account, or the
  browser has none;
- ``new_network``: the address's network prefix (/24 IPv4, /48 IPv6) was never seen for this account;
- ``logins_by_account``, ``logins_by_address``: completed logins in the velocity window, of the account and
  from the same address (any account);
- ``failed_second_factors``: wrong second-factor answers of the account in the window;
- ``distant_networks``: the account signed in from another network prefix within the window (a session used
  from two places at once; "distant" is "another prefix": only keyed hashes are kept, so no geography);
- ``first_login``: the account has no login in the history at all (a new account, or none within retention).

Rule language (``[risk]`` in the settings, parsed once at start-up by ``risk_rules.parse_risk``; no ``eval``)::

    [risk]
    default = "allow"                       # when no rule matches
    window_minutes = 60                     # the velocity window
    retention_days = 90                     # how long the history keeps a login
    weights = { new_device = 10 }           # score weights (the others keep their defaults)
    thresholds = { logins_by_account = 20 } # a count "fires" (adds its weight) when above its threshold

    [[risk.rules]]
    when = ["new_device", "new_network", "not first_login"]   # every condition must hold
    then = "step-up"                                          # allow | step-up | refuse

    [[risk.rules]]
    name = "account velocity"               # optional: the audit names the rule by it (default: its conditions)
    when = ["logins_by_account > 10"]
    then = "refuse"

    [[risk.rules]]
    when = ["score >= 50"]
    then = "step-up"

    [risk.apps."https://tax.city.example"]  # per app (its party id): what it sets replaces the global value
    default = "step-up"
    # rules = [ { when = ["new_device"], then = "refuse" } ]

A condition is a flag (``new_device``, ``new_network``, ``distant_networks``, ``first_login``), ``not`` and a flag,
or a comparison ``<count or score> <op> <whole number>`` with ``op`` one of ``> >= < <= == !=`` over
``logins_by_account``, ``logins_by_address``, ``failed_second_factors`` or ``score``. Rules are tried in order;
the first whose conditions all hold decides, else the default. An app's ``rules`` replace the global rules
for that app, its ``default`` the global default; what it does not set it inherits.

Score: the sum of the weights of the signals that fired: a flag fires when true, a count when above its
threshold. On a first login ``new_device`` and ``new_network`` are necessarily true (there is no history) and
so tell nothing: they are still reported, but add nothing to the score.

Defaults (no ``[risk]`` section): allow everything except a clear velocity trip, more than 20 logins of one
account in an hour, which asks for a step-up. A first login and a usual login (known device or network,
ordinary pace) are never challenged by the defaults: the issue asks for this "without making the usual login
of a usual citizen any harder", and a new phone or a hotel network is ordinary too, so the defaults do not
challenge a new device or network either; an operator who wants that writes the rule. A step-up (not a
refusal) on velocity keeps the citizen able to go on, with a second factor, while an automated run stops.

Privacy: no raw address is ever stored. ``login_place`` turns the address and the device id into keyed hashes
(HMAC-SHA256 with a broker secret) of the network prefix, of the address and of the device id; the history
keeps only those, and only for ``retention`` (rows older are deleted as new ones are written).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from enum import Enum
from typing import Protocol

from broker.core.backoff import CodeAttempt

IPV4_PREFIX = 24
IPV6_PREFIX = 48


class Decision(Enum):
    ALLOW = "allow"
    STEP_UP = "step-up"
    REFUSE = "refuse"


@dataclass(frozen=True)
class LoginSignals:
    """What the history says about one login (the login itself not counted)."""

    new_device: bool = False
    new_network: bool = False
    logins_by_account: int = 0  # completed logins of the account in the velocity window
    logins_by_address: int = 0  # completed logins from the same address (any account) in the window
    failed_second_factors: int = 0  # wrong second-factor answers of the account in the window
    distant_networks: bool = False  # the account signed in from another network prefix in the window
    first_login: bool = False  # no login of the account in the history at all


FLAGS = ("new_device", "new_network", "distant_networks", "first_login")
COUNTS = ("logins_by_account", "logins_by_address", "failed_second_factors")
SCORE = "score"

#: the weight each signal adds to the score when it fires. Velocity and failed second factors weigh most (an
#: automated run, a guessed code); a new device or network little (people change phones and use hotel Wi-Fi);
#: a first login nothing (every citizen has one)
DEFAULT_WEIGHTS: Mapping[str, int] = {
    "new_device": 10, "new_network": 10, "distant_networks": 20, "first_login": 0,
    "logins_by_account": 40, "logins_by_address": 30, "failed_second_factors": 30,
}
#: a count fires when above its threshold: 20 logins of one account an hour is no person; an address is
#: shared (a household, a library, carrier-grade NAT), so it gets more; 3 wrong codes are more than a typo
DEFAULT_THRESHOLDS: Mapping[str, int] = {"logins_by_account": 20, "logins_by_address": 100, "failed_second_factors": 2}
DEFAULT_WINDOW = timedelta(minutes=60)
DEFAULT_RETENTION = timedelta(days=90)

_COMPARISONS: Mapping[str, Callable[[int, int], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq, "!=": operator.ne,
}
MAX_NUMBER = 10**9


@dataclass(frozen=True)
class Condition:
    """One condition of a rule: a flag (``negated``: ``not`` flag) or ``name op value`` over a count or the score."""

    name: str
    op: str = ""  # "" for a flag
    value: int = 0
    negated: bool = False

    def holds(self, values: Mapping[str, int | bool]) -> bool:
        if not self.op:
            return bool(values[self.name]) != self.negated
        return _COMPARISONS[self.op](int(values[self.name]), self.value)

    def __str__(self) -> str:
        if not self.op:
            return f"not {self.name}" if self.negated else self.name
        return f"{self.name} {self.op} {self.value}"


@dataclass(frozen=True)
class RiskRule:
    """``when`` every condition holds, ``then`` decide; ``name`` is what the audit calls it."""

    when: tuple[Condition, ...]
    then: Decision
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or " and ".join(map(str, self.when))

    def matches(self, values: Mapping[str, int | bool]) -> bool:
        return all(condition.holds(values) for condition in self.when)


@dataclass(frozen=True)
class AppRules:
    """An app's override: ``None`` inherits the global value."""

    rules: tuple[RiskRule, ...] | None = None
    default: Decision | None = None


#: the one default rule: a clear velocity trip asks for a second factor
VELOCITY_RULE = RiskRule((Condition("logins_by_account", ">", 20),), Decision.STEP_UP, "account velocity")


@dataclass(frozen=True)
class RiskRules:
    """The operator's rules (``[risk]``), ready to evaluate; the defaults are described in the module docstring."""

    rules: tuple[RiskRule, ...] = (VELOCITY_RULE,)
    default: Decision = Decision.ALLOW
    apps: Mapping[str, AppRules] = field(default_factory=dict)
    weights: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    thresholds: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    #: the velocity window: how far back logins, failures and other networks count
    window: timedelta = DEFAULT_WINDOW
    #: how long the login history keeps a row (``LoginHistory`` adapters delete older ones)
    retention: timedelta = DEFAULT_RETENTION

    def for_app(self, party_id: str | None) -> tuple[tuple[RiskRule, ...], Decision]:
        app = self.apps.get(party_id or "", AppRules())
        return (self.rules if app.rules is None else app.rules,
                self.default if app.default is None else app.default)


DEFAULT_RULES = RiskRules()


@dataclass(frozen=True)
class RiskDecision:
    decision: Decision
    #: the label of the rule that decided, or "default" / "app default"
    rule: str
    #: the signals that fired (flags true, counts above their thresholds), in ``LoginSignals`` order
    signals: tuple[str, ...]
    score: int

    @property
    def reason(self) -> str:
        """One line for the audit record: no address, no device id."""
        fired = ", ".join(self.signals) or "no signal"
        return f"risk {self.decision.value}: {self.rule} ({fired}; score {self.score})"


def fired_signals(signals: LoginSignals, rules: RiskRules = DEFAULT_RULES) -> tuple[str, ...]:
    flags = [name for name in FLAGS if getattr(signals, name)]
    counts = [name for name in COUNTS if getattr(signals, name) > rules.thresholds.get(name, DEFAULT_THRESHOLDS[name])]
    order = [f.name for f in fields(LoginSignals)]
    return tuple(sorted(flags + counts, key=order.index))


def score(signals: LoginSignals, rules: RiskRules = DEFAULT_RULES) -> int:
    """The summed weights of the fired signals; a first login's new device and network weigh nothing."""
    expected = {"new_device", "new_network"} if signals.first_login else set()
    return sum(rules.weights.get(name, DEFAULT_WEIGHTS[name])
               for name in fired_signals(signals, rules) if name not in expected)


def decide(signals: LoginSignals, rules: RiskRules = DEFAULT_RULES, party_id: str | None = None) -> RiskDecision:
    """The first matching rule's decision for the app ``party_id`` (its own rules and default if it has them)."""
    app_rules, default = rules.for_app(party_id)
    total = score(signals, rules)
    values: dict[str, int | bool] = {f.name: getattr(signals, f.name) for f in fields(LoginSignals)}
    values[SCORE] = total
    fired = fired_signals(signals, rules)
    for rule in app_rules:
        if rule.matches(values):
            return RiskDecision(rule.then, rule.label, fired, total)
    has_own_default = party_id is not None and party_id in rules.apps and rules.apps[party_id].default is not None
    return RiskDecision(default, "app default" if has_own_default else "default", fired, total)


@dataclass(frozen=True)
class LoginPlace:
    """Where a login comes from, as keyed hashes only (64 hexadecimal digits each): the device id (``""``: the
    browser has none, always a new device), the network prefix and the full address."""

    device: str
    network: str
    address: str


def _keyed(key: bytes, purpose: bytes, value: str) -> str:
    return hmac.new(key, purpose + b"\0" + value.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()


def network_prefix(address: str) -> str:
    """The /24 (IPv4) or /48 (IPv6) network of ``address`` (an IPv4-mapped IPv6 address counts as IPv4);
    an unreadable address is a network of its own."""
    try:
        ip = ipaddress.ip_address(address.strip().split("%", 1)[0])
    except ValueError:
        return "unreadable:" + address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    bits = IPV4_PREFIX if ip.version == 4 else IPV6_PREFIX
    return str(ipaddress.ip_network(f"{ip}/{bits}", strict=False))


def login_place(address: str, device_id: str, key: bytes) -> LoginPlace:
    """The keyed hashes of a login's device id, network prefix and address (HMAC-SHA256 under ``key``, a
    broker secret, each with its own purpose); a changed key makes every device and network new."""
    if len(key) < 16:
        raise ValueError("the login history key must be at least 16 bytes")
    try:
        ip = ipaddress.ip_address(address.strip().split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        canonical = str(ip)
    except ValueError:
        canonical = "unreadable:" + address
    return LoginPlace(device=_keyed(key, b"device", device_id) if device_id else "",
                      network=_keyed(key, b"network", network_prefix(address)),
                      address=_keyed(key, b"address", canonical))


class LoginHistory(Protocol):
    """Recent logins and failed second factors per account, as keyed hashes (``LoginPlace``) only.

    The journey asks ``signals`` once per login (one round trip), decides, and ``record``s the login once it
    is completed (after any step-up): a refused or abandoned attempt never makes a device or network known.
    """

    def signals(self, account_id: str, place: LoginPlace, now: datetime, window: timedelta) -> LoginSignals:
        """The signals of a login of ``account_id`` from ``place`` at ``now`` (itself not yet recorded)."""
        ...

    def record(self, account_id: str, place: LoginPlace, at: datetime) -> None:
        """A completed login; also deletes (a bounded number of) rows older than the retention."""
        ...

    def record_second_factor_failure(self, account_id: str, at: datetime, address: str | None = None) -> None:
        """A wrong second-factor answer of ``account_id`` from ``address`` (its keyed hash; None: not known): the
        latest attempt of the account from that address still in flight (``begin_code_attempt``) becomes it, else a
        new one is recorded."""
        ...

    def begin_code_attempt(self, account_id: str, address: str, at: datetime, window: timedelta) -> CodeAttempt:
        """Record a code entry of ``account_id`` from ``address`` before its code is checked, then count, in the
        same call, the wrong answers within ``window`` of the account and of the address, with the other attempts
        still in flight (``backoff.IN_FLIGHT``) counted as wrong: of two entries made at once, the later to count
        sees the other (``core.backoff``)."""
        ...

    def withdraw_code_attempt(self, claim: int) -> None:
        """Forget an attempt that was refused before its code was checked (it was no guess)."""
        ...
