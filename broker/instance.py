"""``broker init``: a new instance folder with config, keys, secrets, metadata folders and database.

Layout::

    broker.toml            settings (no secrets in it: it may be committed)
    certs/                 signing.key (0600), signing.crt, oidc-es256.key (0600), session.secret (0600),
                           pairwise.secret (0600), claims.key (0600: seals personal claims at rest),
                           metrics.token (0600: the bearer token /metrics requires)
    metadata/saml-sp/      downstream SAML SP metadata files
    metadata/upstreams/    upstream provider registrations
    metadata/oidc-clients/ downstream OpenID Connect clients (RFC 7591 client metadata)
    metadata/saml-idp/     upstream SAML IdP metadata files (one IdP or an aggregate; optional <name>.pem pins it)
    metadata/federations/  federation metadata feeds, one <name>.toml each
    broker.db              the embedded SQLite database (when no database URL is given)

With ``demo=True`` it also registers the DEMO SAML app and the DEMO OpenID provider on localhost.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from broker.config.settings import load_settings
from broker.demo.saml_app import DemoAppSettings, metadata_xml
from broker.keys.keyring import ES256_KEY, generate_es256_key, generate_keyring, write_private
from broker.registry.metadata_sources import FEDERATION_FOLDER, IDP_FOLDER
from broker.registry.oidc_clients import CLIENT_FOLDER
from broker.registry.saml_sps import SP_FOLDER
from broker.registry.upstreams import UPSTREAM_FOLDER
from broker.storage import upgrade

DEMO_UPSTREAM = "demo"
CLAIMS_KEY = "claims.key"
METRICS_TOKEN = "metrics.token"  # noqa: S105  (a file name in certs/, not a token)
DEMO_CLIENT_ID = "broker-demo"


class InstanceExists(Exception):
    pass


@dataclass(frozen=True)
class InstanceOptions:
    folder: Path
    base_url: str = "http://127.0.0.1:5000"
    database_url: str | None = None
    demo: bool = False
    demo_provider_port: int = 5001
    demo_app_port: int = 5002


def _toml_string(value: str) -> str:
    """A TOML basic string: JSON's escapes (quote, backslash, control characters) are all valid TOML."""
    return json.dumps(value)


def _config_text(options: InstanceOptions) -> str:
    database = options.database_url or "sqlite:///broker.db"
    return f"""# Broker settings. Secrets are not written here: they live in certs/ (mode 0600) or come from
# BROKER_SECRET_KEY / BROKER_PAIRWISE_SECRET / BROKER_CLAIMS_KEY. Single values (not lists, not *_file paths) can be
# overridden in the environment: BROKER_<KEY> for [broker], BROKER_<SECTION>_<KEY> for the others.
# An unknown key is an error, so a typo cannot silently keep a default.
[broker]
base_url = {_toml_string(options.base_url)}
database_url = {_toml_string(database)}
metadata_dir = "metadata"
certs_dir = "certs"
secret_key_file = "certs/session.secret"
pairwise_secret_file = "certs/pairwise.secret"
# seals personal claims in the database; to rotate, see 'broker keys rotate-claims' in the README
claims_key_file = "certs/claims.key"
# /metrics wants "Authorization: Bearer <this file's content>" (without a token: loopback clients only)
metrics_token_file = "certs/{METRICS_TOKEN}"
sso_session_hours = 8
pending_login_minutes = 15
release_claims = ["email", "email_verified", "email_relay", "given_name", "family_name", "name", "roles"]

[saml]
clock_skew_seconds = 120
request_max_age_seconds = 300
want_authn_requests_signed = false
assertion_lifetime_seconds = 300

[demo]
enabled = {"true" if options.demo else "false"}
provider_port = {options.demo_provider_port}
app_port = {options.demo_app_port}

# The city's look (README, "Configuration"): colours are contrast-checked at start-up (WCAG 2.1), logos are files
# in <theme_dir>/static/, and [[theme.apps]] changes the look of one app's sign-in pages only.
# [theme]
# service_name = {{ en = "City sign-in", de = "Anmeldung der Stadt" }}
# logo = "logo.svg"
# colours = {{ accent = "#0b4f8a", accent_text = "#ffffff", link = "#0b4f8a", focus = "#ffbf47" }}
# font = "system-ui, sans-serif"
# footer_text = "City of Example"
# footer_links = [{{ label = "Accessibility", url = "https://city.example/accessibility" }}]
#
# [[theme.apps]]
# app = "https://permits.city.example/saml"
# service_name = "Parking permits"
# colours = {{ accent = "#00594f" }}
"""


def demo_provider_url(options: InstanceOptions) -> str:
    return f"http://127.0.0.1:{options.demo_provider_port}"


def _register_demo(options: InstanceOptions) -> None:
    folder = options.folder
    app_settings = demo_app_settings(folder, options.base_url, options.demo_app_port)
    generate_keyring(folder / "certs" / "demo-app", "DEMO city app")
    (folder / "metadata" / SP_FOLDER / "demo-app.xml").write_text(metadata_xml(app_settings))
    write_private(folder / "certs" / "demo-client.secret", secrets.token_urlsafe(32).encode())
    registration = {
        "name": DEMO_UPSTREAM, "protocol": "oidc", "display_name": "DEMO provider (test citizen)",
        "issuer": demo_provider_url(options), "client_id": DEMO_CLIENT_ID,
        "client_secret_file": "certs/demo-client.secret",
    }
    (folder / "metadata" / UPSTREAM_FOLDER / f"{DEMO_UPSTREAM}.json").write_text(json.dumps(registration, indent=2))


def demo_app_settings(folder: Path, base_url: str, port: int) -> DemoAppSettings:
    keys = folder / "certs" / "demo-app"
    return DemoAppSettings(base_url=f"http://127.0.0.1:{port}", key_file=keys / "signing.key",
                           cert_file=keys / "signing.crt", broker_metadata_url=base_url + "/saml2/idp/metadata")


def init_instance(options: InstanceOptions, *, force: bool = False) -> Path:
    """Create the instance; refuses to overwrite an existing config unless ``force``."""
    folder = options.folder.resolve()
    config = folder / "broker.toml"
    if config.exists() and not force:
        raise InstanceExists(f"{config} already exists; use --force to overwrite it (keys are kept)")
    for sub in ("certs", f"metadata/{SP_FOLDER}", f"metadata/{UPSTREAM_FOLDER}", f"metadata/{CLIENT_FOLDER}",
                f"metadata/{IDP_FOLDER}", f"metadata/{FEDERATION_FOLDER}"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    config.write_text(_config_text(options))
    certs = folder / "certs"
    if not (certs / "signing.key").exists():
        generate_keyring(certs, "broker " + options.base_url)
    elif not (certs / ES256_KEY).exists():  # an instance made before the broker signed ES256 JWTs
        generate_es256_key(certs)
    for name in ("session.secret", "pairwise.secret", METRICS_TOKEN):
        if not (certs / name).exists():
            write_private(certs / name, secrets.token_urlsafe(48).encode())
    if not (certs / CLAIMS_KEY).exists():
        write_claims_key(certs / CLAIMS_KEY)
    if options.demo:
        _register_demo(InstanceOptions(folder, options.base_url, options.database_url, True,
                                       options.demo_provider_port, options.demo_app_port))
    # Read back exactly as the broker will: a bad --base-url or --database-url fails here (ConfigError),
    # and the database migrated is the one the broker opens (a relative SQLite path is relative to the folder).
    settings = load_settings(config, {})
    _make_sqlite_folder(settings.database_url, folder)
    upgrade(settings.database_url)
    return config


def write_claims_key(path: Path) -> None:
    """A new claims key: 32 random bytes as 64 hexadecimal digits, mode 0600 (``[broker] claims_key_file``)."""
    write_private(path, (secrets.token_hex(32) + "\n").encode())


def _make_sqlite_folder(database_url: str, folder: Path) -> None:
    """SQLite creates the database file but not its folder; create it when it is inside the instance."""
    scheme, sep, rest = database_url.partition(":///")
    if sep and (scheme == "sqlite" or scheme.startswith("sqlite+")) and rest.startswith("/"):
        parent = Path(rest.split("?", 1)[0]).parent
        if parent.is_relative_to(folder):
            parent.mkdir(parents=True, exist_ok=True)
