"""A whole federation on 127.0.0.1: the broker on a real https server (the test run's throw-away CA,
``tests.peers.tls``), a real OpenID provider (authlib) upstream and pysaml2 SPs downstream. Used by the flow
tests and by ``bench/login_bench.py``."""

from __future__ import annotations

import base64
import dataclasses
import json
import secrets
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from saml2 import samlp
from sqlalchemy import func, select

from broker.app import close_app, create_app
from broker.config.settings import load_settings
from broker.demo.oidc_provider import DemoProvider, create_demo_provider
from broker.demo.oidc_provider_config import DemoClient, DemoProviderSettings, DemoUser
from broker.demo.oidc_provider_keys import new_rsa_key
from broker.keys.keyring import generate_keyring, write_private
from broker.storage import create_engine_for
from broker.storage.tables import AccountRow, LinkedIdentityRow
from tests.databases import migrated
from tests.flows.saml_peers import SpKeys, TestSp
from tests.peers.browser import Browser
from tests.peers.servers import LOOPBACK, LateApp, RunningServer, WsgiApp, serve
from tests.peers.tls import throwaway_ca, trusted_by_requests

CLIENT_ID, UPSTREAM = "city-broker", "op"
CITIZEN = DemoUser("anna", "correct horse", {
    "sub": "anna-0001", "email": "anna@example.org", "email_verified": True,
    "given_name": "Anna", "family_name": "Virtanen", "name": "Anna Virtanen",
})


@dataclass
class FixedClock:
    """A clock the test moves by hand (``Services.clock`` is a swap-in point, like httpx's transports)."""

    at: datetime

    def now(self) -> datetime:
        return self.at


def saml_status(fields: dict[str, str]) -> tuple[str, str | None]:
    """(top-level, second-level) status codes of the Response the broker posts back to the SP."""
    response = samlp.response_from_string(base64.b64decode(fields["SAMLResponse"]).decode())
    code = response.status.status_code
    return code.value, code.status_code.value if code.status_code is not None else None


#: (the provider's base URL, the broker's callback URL for it, the instance folder) -> (the provider's WSGI
#: app, its registration as in ``metadata/upstreams/*.json``, without ``name``)
UpstreamBuilder = Callable[[str, str, Path], tuple[WsgiApp, dict[str, Any]]]


@dataclass(frozen=True)
class ExtraUpstream:
    """One more upstream for ``running_federation``, registered as ``name`` next to the demo provider "op".

    ``build`` makes its provider once the URLs are known; ``host`` "localhost" puts the provider on another
    site than the broker (127.0.0.1), so its form_post answers are cross-site POSTs.
    """

    name: str
    build: UpstreamBuilder
    host: str = "127.0.0.1"


@dataclass
class Federation:
    broker: RunningServer
    broker_late: LateApp
    app: Flask
    provider: DemoProvider
    op: RunningServer
    folder: Path
    database_url: str
    sps: dict[str, TestSp]
    #: the servers of ``running_federation(extra_upstreams=...)``, by upstream name
    extra: dict[str, RunningServer] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.broker.url

    def count(self, table: type[AccountRow] | type[LinkedIdentityRow]) -> int:
        engine = create_engine_for(self.database_url)
        try:
            with engine.connect() as connection:
                return int(connection.execute(select(func.count()).select_from(table)).scalar_one())
        finally:
            engine.dispose()

    def accounts(self) -> int:
        return self.count(AccountRow)

    def set_clock(self, clock: FixedClock) -> None:
        """The broker's clock, for the web layer and the journeys alike (both were wired with the system clock)."""
        services = self.app.extensions["broker"]
        services.clock = clock
        services.journeys = dataclasses.replace(services.journeys, clock=clock)

    def login(self, browser: Browser, sp: str = "sp1", **kwargs: object) -> tuple[str, requests.Response]:
        """Start a Redirect-binding login at ``sp`` and follow it to the page that posts back to the SP."""
        request_id, location = self.sps[sp].redirect_request(**kwargs)
        return request_id, browser.get(location)


def _write_instance(folder: Path, keys: Path, base_url: str, database_url: str, op_url: str,
                    redis_url: str | None, extra_config: str = "", ask_consent: bool = False) -> None:
    (folder / "certs").mkdir(parents=True)
    for name in ("signing.key", "signing.crt", "oidc-es256.key"):
        data = (keys / "broker" / name).read_bytes()
        write_private(folder / "certs" / name, data)
    write_private(folder / "certs" / "session.secret", secrets.token_urlsafe(48).encode())
    write_private(folder / "certs" / "pairwise.secret", secrets.token_urlsafe(48).encode())
    write_private(folder / "certs" / "claims.key", secrets.token_hex(32).encode())
    write_private(folder / "certs" / "op-client.secret", b"op-client-secret-" + secrets.token_hex(8).encode())
    (folder / "broker.toml").write_text(f"""
[broker]
base_url = "{base_url}"
database_url = "{database_url}"
secret_key_file = "certs/session.secret"
pairwise_secret_file = "certs/pairwise.secret"
claims_key_file = "certs/claims.key"
""" + (f'session_type = "redis"\nredis_url = "{redis_url}"\n' if redis_url else "") + extra_config)
    (folder / "metadata" / "saml-sp").mkdir(parents=True)
    # Most flow tests are about protocols, not consent: the operator exempts every app (recorded as such);
    # the consent tests write their own policy (``ask_consent``).
    (folder / "metadata" / "release-policy.toml").write_text(
        'version = "test"\n' + ("" if ask_consent else "[default]\nconsent_exempt = true\n"))
    (folder / "metadata" / "upstreams").mkdir(parents=True)
    (folder / "metadata" / "upstreams" / f"{UPSTREAM}.json").write_text(json.dumps({
        "name": UPSTREAM, "protocol": "oidc", "issuer": op_url, "client_id": CLIENT_ID,
        "display_name": "Test OpenID provider", "client_secret_file": "certs/op-client.secret",
    }))


def make_keys(folder: Path) -> Path:
    """Keys of the broker and three SPs (RSA 2048, fresh each time)."""
    generate_keyring(folder / "broker", "test broker", bits=2048)
    for name in ("sp1", "sp2", "sp3"):
        generate_keyring(folder / name, f"test {name}", bits=2048)
    return folder


_OP_KEYS: list[rsa.RSAPrivateKey] = []


def _op_signing_key() -> rsa.RSAPrivateKey:
    """The demo provider's signing key, generated once per test process (a key per federation cost 0.2 s)."""
    if not _OP_KEYS:
        _OP_KEYS.append(new_rsa_key())
    return _OP_KEYS[0]


@contextmanager
def running_federation(folder: Path, key_folder: Path, database_url: str, redis_url: str | None = None,
                       extra_upstreams: Sequence[ExtraUpstream] = (), extra_config: str = "",
                       ask_consent: bool = False, op_login_form: bool = False,
                       broker_host: str = LOOPBACK) -> Iterator[Federation]:
    """The federation; browser sessions in Redis when ``redis_url`` is given, else in the database.
    ``extra_upstreams`` are registered and served besides the demo provider "op"; ``extra_config`` is
    appended to broker.toml (TOML sections such as ``[limits]``); every app asks for consent only with
    ``ask_consent`` (otherwise the release policy exempts them all); the demo provider signs the citizen in
    without a form unless ``op_login_form``. The broker is served over https, so its cookies are Secure and
    SameSite=None and it sends HSTS; plain ``requests`` calls trust the test CA meanwhile. ``broker_host``
    names the broker in its ``base_url`` (it still listens on 127.0.0.1): "localhost" gives it a domain, which
    WebAuthn wants as the relying party ID (the test certificate covers both)."""
    broker_late, op_late = LateApp(), LateApp()
    broker_server, op_server = serve(broker_late, tls=throwaway_ca()), serve(op_late)
    if broker_host != LOOPBACK:
        broker_server = dataclasses.replace(broker_server, url=f"https://{broker_host}:{broker_server.port}")
    extra: dict[str, RunningServer] = {}
    app: Flask | None = None
    try:
        _write_instance(folder, key_folder, broker_server.url, database_url, op_server.url, redis_url,
                        extra_config, ask_consent)
        for upstream in extra_upstreams:
            late = LateApp()
            extra[upstream.name] = server = serve(late)
            late.target, registration = upstream.build(
                f"http://{upstream.host}:{server.port}",
                f"{broker_server.url}/upstream/oidc/{upstream.name}/callback", folder)
            (folder / "metadata" / "upstreams" / f"{upstream.name}.json").write_text(
                json.dumps({"name": upstream.name, **registration}))
        provider = create_demo_provider(DemoProviderSettings(
            issuer=op_server.url,
            clients=(DemoClient(CLIENT_ID, (folder / "certs" / "op-client.secret").read_text(),
                                (f"{broker_server.url}/upstream/oidc/{UPSTREAM}/callback",)),),
            users=(CITIZEN,),
            signing_key=_op_signing_key(),
            auto_login=None if op_login_form else CITIZEN.username,
        ))
        op_late.target = provider.app
        sps = {name: TestSp(f"http://127.0.0.1:9/{name}", SpKeys(key_folder / name / "signing.key",
                                                                key_folder / name / "signing.crt"))
               for name in ("sp1", "sp2")}
        for name, sp in sps.items():
            (folder / "metadata" / "saml-sp" / f"{name}.xml").write_text(sp.metadata())
        migrated(database_url)
        app = create_app(load_settings(folder / "broker.toml", environ={}))
        broker_late.target = app
        with trusted_by_requests(throwaway_ca()):
            idp_metadata = requests.get(broker_server.url + "/saml2/idp/metadata", timeout=10).text
            for sp in sps.values():
                sp.connect(idp_metadata)
            yield Federation(broker_server, broker_late, app, provider, op_server, folder, database_url, sps,
                             extra)
    finally:
        broker_server.stop()
        op_server.stop()
        for server in extra.values():
            server.stop()
        if app is not None:
            close_app(app)
