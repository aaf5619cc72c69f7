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

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from broker.config.console import console_section
from broker.config.reader import Reader
from broker.config.sections import (
    LimitSettings,
    LinkingSettings,
    MailSettings,
    assurance_section,
    claims_keys,
    limits_section,
    linking_section,
    mail_section,
    profile_section,
    risk_section,
)
from broker.config.theme import ThemeSettings, theme_section
from broker.core.assurance import DEFAULT_POLICY, AssurancePolicy
from broker.core.claims import BY_NAME
from broker.core.identifiers import MIN_SECRET_BYTES
from broker.core.operators import ConsolePolicy
from broker.core.profile import MergeRules
from broker.core.risk import DEFAULT_RULES, RiskRules

CONFIG_ENV = "BROKER_CONFIG"
DEFAULT_CONFIG_NAME = "broker.toml"
DEFAULT_RELEASE = ("email", "email_verified", "email_relay", "given_name", "family_name", "name", "roles")


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
    #: the broker's entity ID as a SAML SP toward upstream IdPs
    sp_entity_id: str = ""
    #: an external SAML discovery service (Identity Provider Discovery Service Protocol); None: the broker's page
    discovery_url: str | None = None
    #: where the compiled IdP metadata index lives (shared by every worker process of the instance)
    metadata_cache_dir: Path = Path("var/idp-metadata")
    #: build a refreshed index in a spawned process, so that a worker never holds the parsed aggregate
    metadata_build_in_child: bool = False


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
    #: whether dynamically registered clients may ask for ``subject_type: public`` (OIDC Core §8); else pairwise only
    registration_allow_public_subjects: bool = False


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
    #: the scale of assurance levels and the aliases of other acr names (``[assurance]``, ``core.assurance``)
    assurance: AssurancePolicy = DEFAULT_POLICY
    #: "text" (the host's logging as it is) or "json" (one object per line, ``broker.logging_setup``)
    log_format: str = "text"
    #: the city's time zone (IANA name, ``[broker] timezone``): dates and times on citizen pages are shown in it
    timezone: str = "UTC"
    #: a bearer token ``/metrics`` requires (``metrics_token_file`` / ``BROKER_METRICS_TOKEN``); empty: open
    metrics_token: bytes = field(default=b"", repr=False)
    #: the SMTP server of e-mail notices to citizens (``[mail]``); no host: no mail
    mail: MailSettings = field(default_factory=MailSettings)
    #: risk-based challenges: the rules, weights, thresholds, velocity window and history retention (``[risk]``)
    risk: RiskRules = DEFAULT_RULES
    #: the operator console and admin API (``[console]``, issue 19)
    console: ConsolePolicy = field(default_factory=ConsolePolicy)
    #: the city's look as data, for the instance and per app (``[theme]``, ``broker.config.theme``, issue 20)
    theme: ThemeSettings = field(default_factory=ThemeSettings)

    @property
    def secure_cookies(self) -> bool:
        return self.base_url.startswith("https://")

    def url(self, path: str) -> str:
        return self.base_url + path


def _discovery_url(read: Reader) -> str | None:
    """``[saml] discovery_url``: an https address (plain http only on this machine), or empty for none."""
    url = read.text("saml", "discovery_url", "")
    if not url:
        return None
    parts = urlsplit(url)
    local = parts.hostname in ("localhost", "127.0.0.1", "::1")
    if (parts.scheme != "https" and not (parts.scheme == "http" and local)) or not parts.hostname or parts.fragment:
        read.problems.append("[saml] discovery_url must be an https URL without a fragment")
        return None
    return url


def _timezone(read: Reader) -> str:
    """``[broker] timezone``: an IANA time zone name (``Europe/Vienna``) the system's tz database knows."""
    name = read.text("broker", "timezone", "UTC")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        read.problems.append(f"[broker] timezone must be an IANA time zone name such as 'Europe/Berlin', "
                             f"got {name!r:.60}")
        return "UTC"
    return name


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
    read = Reader(data, env, path.parent)

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

    log_format = read.text("broker", "log_format", "text")
    if log_format not in ("text", "json"):
        read.problems.append(f"[broker] log_format must be 'text' or 'json', got {log_format!r:.40}")
        log_format = "text"
    timezone = _timezone(read)
    theme_dir = read.path("broker", "theme_dir", "") if read.text("broker", "theme_dir", "") else None
    if theme_dir is not None and not ((theme_dir / "templates").is_dir() or (theme_dir / "static").is_dir()):
        read.problems.append(f"[broker] theme_dir {theme_dir} has no templates/ or static/ folder")

    saml = SamlSettings(
        idp_entity_id=read.text("saml", "idp_entity_id", "") or base_url + "/saml2/idp/metadata",
        clock_skew=timedelta(seconds=read.number("saml", "clock_skew_seconds", 120, 0, 600)),
        request_max_age=timedelta(seconds=read.number("saml", "request_max_age_seconds", 300, 30, 3600)),
        want_authn_requests_signed=read.flag("saml", "want_authn_requests_signed", False),
        assertion_lifetime=timedelta(seconds=read.number("saml", "assertion_lifetime_seconds", 300, 60, 3600)),
        sha1_allowed_for=read.text_list("saml", "sha1_allowed_for"),
        sp_entity_id=read.text("saml", "sp_entity_id", "") or base_url + "/saml2/sp/metadata",
        discovery_url=_discovery_url(read),
        metadata_cache_dir=read.path("saml", "metadata_cache_dir", "var/idp-metadata"),
        metadata_build_in_child=read.flag("saml", "metadata_build_in_child", False),
    )
    limits = limits_section(read, redis_url if session_type == "redis" else None)
    registration_token = read.secret("registration_token_file", "BROKER_OIDC_REGISTRATION_TOKEN", 32,
                                     section="oidc", optional=True)
    oidc = OidcSettings(
        code_lifetime=timedelta(seconds=read.number("oidc", "code_lifetime_seconds", 60, 10, 600)),
        access_token_lifetime=timedelta(seconds=read.number("oidc", "access_token_lifetime_seconds", 600, 60, 86400)),
        id_token_lifetime=timedelta(seconds=read.number("oidc", "id_token_lifetime_seconds", 600, 60, 86400)),
        refresh_token_lifetime=timedelta(hours=read.number("oidc", "refresh_token_hours", 24 * 14, 1, 24 * 365)),
        registration_token=registration_token or None,
        registration_allowed_hosts=read.text_list("oidc", "registration_allowed_hosts"),
        registration_allow_public_subjects=read.flag("oidc", "registration_allow_public_subjects", False),
    )
    demo = DemoSettings(
        enabled=read.flag("demo", "enabled", False),
        provider_port=read.number("demo", "provider_port", 5001, 1024, 65535),
        app_port=read.number("demo", "app_port", 5002, 1024, 65535),
    )
    assurance = assurance_section(read)
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
        theme=theme_section(read, theme_dir),
        saml=saml,
        limits=limits,
        oidc=oidc,
        demo=demo,
        secret_key=read.secret("secret_key_file", "BROKER_SECRET_KEY", 32),
        pairwise_secret=read.secret("pairwise_secret_file", "BROKER_PAIRWISE_SECRET", MIN_SECRET_BYTES),
        claims_keys=claims_keys(read),
        profile=profile_section(read),
        linking=linking_section(read),
        assurance=assurance,
        log_format=log_format,
        timezone=timezone,
        metrics_token=read.secret("metrics_token_file", "BROKER_METRICS_TOKEN", 32, optional=True),
        mail=mail_section(read),
        risk=risk_section(read),
        console=console_section(read, assurance),
    )
    read.report_unknown()
    if read.problems:
        raise ConfigError(read.problems, str(path))
    return settings
