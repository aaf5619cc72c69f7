"""Settings: read once at start-up from a TOML file and ``BROKER_*`` environment variables, validated,
then frozen.

Precedence: environment over file over defaults. Relative paths in the file are relative to the
file's folder (the instance folder). Secrets are never values in the file: each is read from an
environment variable (``BROKER_SECRET_KEY``, ``BROKER_PAIRWISE_SECRET``, ``BROKER_CLAIMS_KEY``) or from a file
named in the config (``secret_key_file``, ``pairwise_secret_file``, ``claims_key_file``), so the config file can
be committed safely.
All problems are reported together in one ``ConfigError``.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from limits import parse_many

from broker.core.claims import BY_NAME
from broker.core.identifiers import MIN_SECRET_BYTES
from broker.core.profile import MergeRules, rule_problems

CONFIG_ENV = "BROKER_CONFIG"
DEFAULT_CONFIG_NAME = "broker.toml"
DEFAULT_RELEASE = ("email", "email_verified", "given_name", "family_name", "name")
CLAIMS_KEY_HEX = 64  # 32 random bytes (AES-256), written as hexadecimal
_HEX_KEY = re.compile(rb"[0-9a-fA-F]{%d}" % CLAIMS_KEY_HEX)


class ConfigError(Exception):
    def __init__(self, problems: list[str], source: str) -> None:
        self.problems = problems
        text = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid broker configuration ({source}):\n{text}")


@dataclass(frozen=True)
class SamlSettings:
    idp_entity_id: str
    clock_skew: timedelta
    request_max_age: timedelta
    want_authn_requests_signed: bool
    assertion_lifetime: timedelta
    #: legacy apps whose SHA-1 signatures are still accepted (each logged as a warning at start-up)
    sha1_allowed_for: frozenset[str]


@dataclass(frozen=True)
class LimitSettings:
    """Abuse limits (``limits`` notation, e.g. "60/minute"); counters in Redis when ``storage_url`` says so."""

    enabled: bool
    per_ip: str  # every sign-in endpoint, per client address
    per_upstream: str  # callbacks of one upstream provider, all clients together
    per_downstream: str  # sign-in requests of one downstream app, all clients together
    storage_url: str


@dataclass(frozen=True)
class OidcSettings:
    """The OpenID provider toward downstream apps (issuer: ``base_url``)."""

    code_lifetime: timedelta  # RFC 6749 §4.1.2: short-lived, 10 minutes at most
    access_token_lifetime: timedelta
    id_token_lifetime: timedelta
    refresh_token_lifetime: timedelta
    #: Dynamic Client Registration (RFC 7591) is open only with this initial access token (§3); None: off
    registration_token: bytes | None = field(repr=False)
    #: hosts (or "*.example.org" suffixes) redirect URIs of dynamically registered clients may use; empty: any
    registration_allowed_hosts: frozenset[str]


@dataclass(frozen=True)
class LinkingSettings:
    """Automatic linking by e-mail (issue 5): only for listed (new upstream, existing upstream) pairs, and only
    when the new upstream is authoritative for e-mail; otherwise a matching verified address is an offer."""

    auto_link_by_email: frozenset[tuple[str, str]] = frozenset()
    email_authoritative: frozenset[str] = frozenset()


@dataclass(frozen=True)
class DemoSettings:
    enabled: bool
    provider_port: int
    app_port: int


@dataclass(frozen=True)
class Settings:
    instance_dir: Path
    base_url: str
    database_url: str
    metadata_dir: Path
    certs_dir: Path
    session_type: str  # "sqlalchemy" (embedded default) or "redis"
    redis_url: str | None
    sso_session_lifetime: timedelta
    pending_login_lifetime: timedelta
    release_claims: frozenset[str]
    release_unverified_email: bool
    trusted_proxies: int
    brand_name: str
    theme_dir: Path | None
    saml: SamlSettings
    limits: LimitSettings
    oidc: OidcSettings
    demo: DemoSettings
    secret_key: bytes = field(repr=False)
    pairwise_secret: bytes = field(repr=False)
    #: AES-256 keys sealing personal claims at rest: the first seals, all open (``broker.storage.sealing``)
    claims_keys: tuple[bytes, ...] = field(repr=False)
    #: how the unified profile merges the claims of an account's identities (``[profile]``, ``core.profile``)
    profile: MergeRules = field(default_factory=MergeRules)
    #: automatic linking by a verified e-mail address (``[linking]``); off unless configured
    linking: LinkingSettings = field(default_factory=LinkingSettings)

    @property
    def secure_cookies(self) -> bool:
        return self.base_url.startswith("https://")

    def url(self, path: str) -> str:
        return self.base_url + path


class _Reader:
    """Reads typed values from the merged file + environment, collecting every problem."""

    def __init__(self, data: Mapping[str, Any], environ: Mapping[str, str], base: Path) -> None:
        self.data, self.environ, self.base, self.problems = data, environ, base, list[str]()
        self.read: dict[str, set[str]] = {}

    def setting(self, section: str, key: str, default: Any) -> Any:
        """The file's value of ``[section] key`` (no environment), noting that the key is known."""
        self.read.setdefault(section, set()).add(key)
        return self.table(section).get(key, default)

    def report_unknown(self) -> None:
        """A typo in a key silently keeps its default; name every key and section nothing read."""
        for section, table in self.data.items():
            if section not in self.read:
                self.problems.append(f"unknown section [{section}]")
                continue
            known = self.read[section]
            for key in table if isinstance(table, Mapping) else ():
                if key not in known:
                    close = difflib.get_close_matches(key, sorted(known), n=1)
                    hint = f" (did you mean {close[0]!r}?)" if close else ""
                    self.problems.append(f"[{section}] unknown setting {key!r}{hint}")

    def table(self, section: str) -> Mapping[str, Any]:
        table = self.data.get(section, {})
        if isinstance(table, Mapping):
            return table
        problem = f"[{section}] must be a table"
        if problem not in self.problems:
            self.problems.append(problem)
        return {}

    def _raw(self, section: str, key: str, default: Any) -> Any:
        env = f"BROKER_{key.upper()}" if section == "broker" else f"BROKER_{section.upper()}_{key.upper()}"
        if env in self.environ:
            self.read.setdefault(section, set()).add(key)
            return self.environ[env]
        return self.setting(section, key, default)

    def text(self, section: str, key: str, default: str) -> str:
        value = self._raw(section, key, default)
        if not isinstance(value, str):
            self.problems.append(f"[{section}] {key} must be a string")
            return default
        return value

    def number(self, section: str, key: str, default: int, low: int, high: int) -> int:
        value = self._raw(section, key, default)
        try:
            if not isinstance(value, int | str) or isinstance(value, bool):  # 1.5 must not become 1
                raise TypeError(value)
            number = int(value)
        except (TypeError, ValueError):
            self.problems.append(f"[{section}] {key} must be a whole number, got {value!r}")
            return default
        if not low <= number <= high:
            self.problems.append(f"[{section}] {key} must be between {low} and {high}, got {number}")
            return default  # the problem is reported; nothing downstream may see the value
        return number

    def flag(self, section: str, key: str, default: bool) -> bool:
        value = self._raw(section, key, default)
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value.lower() in ("1", "true", "yes", "on")
        self.problems.append(f"[{section}] {key} must be true or false, got {value!r}")
        return default

    def text_list(self, section: str, key: str) -> frozenset[str]:
        """A list of strings from the file (lists have no environment form)."""
        value = self.setting(section, key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.problems.append(f"[{section}] {key} must be a list of non-empty strings")
            return frozenset()
        return frozenset(value)

    def rate(self, section: str, key: str, default: str) -> str:
        """A rate limit in ``limits`` notation ("60/minute", "10/second;300/hour")."""
        value = self.text(section, key, default)
        try:
            parse_many(value)
        except ValueError:
            self.problems.append(f"[{section}] {key} must be a rate such as '60/minute', got {value!r}")
            return default
        return value

    def path(self, section: str, key: str, default: str) -> Path:
        text = self.text(section, key, default)
        try:
            path = Path(text).expanduser()
        except RuntimeError:  # "~someone" for a user this machine does not know
            self.problems.append(f"[{section}] {key}: cannot expand {text!r}")
            path = Path(default)
        return path if path.is_absolute() else self.base / path

    def secret(self, key: str, env: str, min_bytes: int, section: str = "broker",
               optional: bool = False, hint: str = "") -> bytes:
        """A secret from ``env`` or from the file named by ``key``; never from the config file itself.
        ``optional``: empty when neither is set. ``hint``: added to the problem when neither is set."""
        self.read.setdefault(section, set()).add(key)
        if env in self.environ:
            try:
                value = self.environ[env].encode()
            except UnicodeEncodeError:  # os.environ carries undecodable bytes as lone surrogates
                self.problems.append(f"the environment variable {env} is not UTF-8 text")
                return b""
            origin = f"environment variable {env}"
        else:
            file_setting = self.setting(section, key, None)
            if not file_setting and optional:
                return b""
            if not file_setting:
                self.problems.append(f"no {key.removesuffix('_file')}: set {env} or [{section}] {key}{hint}")
                return b""
            if not isinstance(file_setting, str):
                self.problems.append(f"[{section}] {key} must be a string")
                return b""
            path = Path(file_setting) if Path(file_setting).is_absolute() else self.base / file_setting
            try:
                value = path.read_bytes().strip()
            except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
                reason = exc.strerror if isinstance(exc, OSError) else "not a valid path"
                self.problems.append(f"cannot read {key} {path!s:.200}: {reason}")
                return b""
            origin = str(path)
        if len(value) < min_bytes:
            self.problems.append(f"the secret from {origin} is shorter than {min_bytes} bytes")
        return value


def _claims_keys(read: _Reader) -> tuple[bytes, ...]:
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


def _linking(read: _Reader) -> LinkingSettings:
    """``[linking]``: ``auto_link_by_email = [["new-upstream", "existing-upstream"], ...]`` and
    ``email_authoritative = ["new-upstream", ...]``; both empty by default (never link automatically)."""
    pairs = read.setting("linking", "auto_link_by_email", [])
    if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 and all(
            isinstance(n, str) and n for n in p) for p in pairs):
        read.problems.append("[linking] auto_link_by_email must be a list of [new upstream, existing upstream] pairs")
        pairs = []
    return LinkingSettings(frozenset((p[0], p[1]) for p in pairs), read.text_list("linking", "email_authoritative"))


def _profile(read: _Reader) -> MergeRules:
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


def resolve_database_url(raw: str, base: Path) -> str:
    """``sqlite:///relative.db`` is taken relative to the instance folder, like every other path.

    Absolute paths (``sqlite:////srv/broker.db``) and in-memory databases (``sqlite://``,
    ``sqlite:///:memory:``) are left alone; a driver name (``sqlite+pysqlite:///``) is kept.
    """
    scheme, sep, rest = raw.partition(":///")
    if not sep or (scheme != "sqlite" and not scheme.startswith("sqlite+")):
        return raw
    if not rest or rest.startswith(("/", ":memory:")):
        return raw
    return f"{scheme}:///{base / rest}"


def load_settings(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the settings; raise ``ConfigError`` listing every problem found."""
    env = os.environ if environ is None else environ
    if path is None:
        path = Path(env.get(CONFIG_ENV, DEFAULT_CONFIG_NAME))
    path = path.resolve()
    if not path.is_file():
        raise ConfigError([f"{path} does not exist; create an instance with 'broker init'"], str(path))
    try:
        data = tomllib.loads(path.read_bytes().decode("utf-8"))  # TOML is UTF-8 whatever the locale
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise ConfigError([f"not valid TOML: {reason}"], str(path)) from exc
    read = _Reader(data, env, path.parent)

    base_url = read.text("broker", "base_url", "http://127.0.0.1:5000").rstrip("/")
    try:
        parts = urlsplit(base_url)
        hostname = parts.hostname
    except ValueError:  # e.g. an unclosed IPv6 bracket
        parts, hostname = urlsplit(""), None
    if parts.scheme not in ("http", "https") or not hostname:
        read.problems.append(f"[broker] base_url must be an http(s) URL, got {base_url!r}")
    elif parts.scheme == "http" and hostname not in ("127.0.0.1", "localhost", "::1"):
        read.problems.append("[broker] base_url must use https (plain http is allowed only on localhost)")
    elif parts.query or parts.fragment or "@" in parts.netloc:
        # base_url is the OpenID issuer too, which has no query, fragment or user part (OIDC Discovery §3)
        read.problems.append("[broker] base_url must not have a query, fragment or user name")
    session_type = read.text("broker", "session_type", "sqlalchemy")
    redis_url = read.text("broker", "redis_url", "") or None
    if session_type not in ("sqlalchemy", "redis"):
        read.problems.append(f"[broker] session_type must be 'sqlalchemy' or 'redis', got {session_type!r}")
    elif session_type == "redis" and not redis_url:
        read.problems.append("[broker] session_type 'redis' needs redis_url (or BROKER_REDIS_URL)")
    release = read.setting("broker", "release_claims", list(DEFAULT_RELEASE))
    unknown = (
        [c for c in release if not isinstance(c, str) or c not in BY_NAME]
        if isinstance(release, list) else ["(not a list)"]
    )
    if unknown:
        read.problems.append(f"[broker] release_claims has unknown claims: {', '.join(map(str, unknown))}")

    theme_dir = read.path("broker", "theme_dir", "") if read.text("broker", "theme_dir", "") else None
    if theme_dir is not None and not (theme_dir / "templates").is_dir():
        read.problems.append(f"[broker] theme_dir {theme_dir} has no templates/ folder")

    saml = SamlSettings(
        idp_entity_id=read.text("saml", "idp_entity_id", "") or base_url + "/saml2/idp/metadata",
        clock_skew=timedelta(seconds=read.number("saml", "clock_skew_seconds", 120, 0, 600)),
        request_max_age=timedelta(seconds=read.number("saml", "request_max_age_seconds", 300, 30, 3600)),
        want_authn_requests_signed=read.flag("saml", "want_authn_requests_signed", False),
        assertion_lifetime=timedelta(seconds=read.number("saml", "assertion_lifetime_seconds", 300, 60, 3600)),
        sha1_allowed_for=read.text_list("saml", "sha1_allowed_for"),
    )
    limits = LimitSettings(
        enabled=read.flag("limits", "enabled", True),
        per_ip=read.rate("limits", "per_ip", "120/minute"),
        per_upstream=read.rate("limits", "per_upstream", "3000/minute"),
        per_downstream=read.rate("limits", "per_downstream", "3000/minute"),
        storage_url=read.text("limits", "storage_url", "") or (
            redis_url if session_type == "redis" and redis_url else "memory://"),
    )
    registration_token = read.secret("registration_token_file", "BROKER_OIDC_REGISTRATION_TOKEN", 32,
                                     section="oidc", optional=True)
    oidc = OidcSettings(
        code_lifetime=timedelta(seconds=read.number("oidc", "code_lifetime_seconds", 60, 10, 600)),
        access_token_lifetime=timedelta(seconds=read.number("oidc", "access_token_lifetime_seconds", 600, 60, 86400)),
        id_token_lifetime=timedelta(seconds=read.number("oidc", "id_token_lifetime_seconds", 600, 60, 86400)),
        refresh_token_lifetime=timedelta(hours=read.number("oidc", "refresh_token_hours", 24 * 14, 1, 24 * 365)),
        registration_token=registration_token or None,
        registration_allowed_hosts=read.text_list("oidc", "registration_allowed_hosts"),
    )
    demo = DemoSettings(
        enabled=read.flag("demo", "enabled", False),
        provider_port=read.number("demo", "provider_port", 5001, 1024, 65535),
        app_port=read.number("demo", "app_port", 5002, 1024, 65535),
    )
    settings = Settings(
        instance_dir=path.parent,
        base_url=base_url,
        database_url=resolve_database_url(read.text("broker", "database_url", "sqlite:///broker.db"), path.parent),
        metadata_dir=read.path("broker", "metadata_dir", "metadata"),
        certs_dir=read.path("broker", "certs_dir", "certs"),
        session_type=session_type,
        redis_url=redis_url,
        sso_session_lifetime=timedelta(hours=read.number("broker", "sso_session_hours", 8, 1, 24 * 30)),
        pending_login_lifetime=timedelta(minutes=read.number("broker", "pending_login_minutes", 15, 1, 120)),
        release_claims=frozenset(release) if not unknown else frozenset(DEFAULT_RELEASE),
        release_unverified_email=read.flag("broker", "release_unverified_email", False),
        trusted_proxies=read.number("broker", "trusted_proxies", 0, 0, 5),
        brand_name=read.text("broker", "brand_name", "City sign-in"),
        theme_dir=theme_dir,
        saml=saml,
        limits=limits,
        oidc=oidc,
        demo=demo,
        secret_key=read.secret("secret_key_file", "BROKER_SECRET_KEY", 32),
        pairwise_secret=read.secret("pairwise_secret_file", "BROKER_PAIRWISE_SECRET", MIN_SECRET_BYTES),
        claims_keys=_claims_keys(read),
        profile=_profile(read),
        linking=_linking(read),
    )
    read.report_unknown()
    if read.problems:
        raise ConfigError(read.problems, str(path))
    return settings
