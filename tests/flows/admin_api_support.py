"""The admin API's flow tests (issue 19), over real HTTP: a federation where Bob, of the city's staff, signs in to
the console through the provider "other" (the only upstream ``[console] upstreams`` allows staff) with his
authenticator app, and Anna, a citizen, signs in to the portal through "op"; automation clients registered by
metadata files get tokens at the token endpoint with HTTP Basic (RFC 6749 §2.3.1)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lxml.html  # type: ignore[import-untyped]  # lxml ships no type information
import pyotp
import requests
from openapi_schema_validator import OAS31Validator, validate

from broker.core.operators import OperatorGrant, Role
from broker.oidc.client import hash_secret
from broker.storage.authenticators import new_totp_secret
from broker.web.admin_api import PREFIX
from broker.web.admin_api.openapi import document
from broker.web.admin_api.table import OPERATIONS
from tests.flows.federation import CITIZEN, ExtraUpstream, Federation, running_federation
from tests.flows.linking_support import BOB, BOB_SUB, DemoUpstream
from tests.flows.portal_support import services
from tests.peers.browser import Browser

REGISTRATION_TOKEN = "initial-" + secrets.token_urlsafe(24)


@dataclass
class AdminWorld:
    federation: Federation
    other: DemoUpstream
    #: Bob's account and the secret of his authenticator app
    bob: str = ""
    bob_secret: str = ""

    @property
    def url(self) -> str:
        return self.federation.url


@contextmanager
def admin_world(folder: Path, key_folder: Path, database_url: str) -> Iterator[AdminWorld]:
    """The federation, with dynamic registration open (to show what it may not ask for) and limits that the tests'
    many calls from one address stay under."""
    other = DemoUpstream("other")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "registration.token").write_text(REGISTRATION_TOKEN)
    config = (f'\n[console]\nupstreams = ["other"]\n[oidc]\nregistration_token_file = "{folder / "registration.token"}"'
              '\nregistration_allowed_hosts = ["127.0.0.1"]\n[limits]\nper_ip = "100000/minute"\n')
    with running_federation(folder / "instance", key_folder, database_url, extra_config=config,
                            extra_upstreams=[ExtraUpstream("other", other.build)]) as federation:
        other.sign_in_as(BOB)
        yield AdminWorld(federation, other)


def choose(browser: Browser, discovery: requests.Response, upstream: str) -> requests.Response:
    """Press "Sign in with ..." for ``upstream`` on the discovery page."""
    forms = lxml.html.fromstring(discovery.text).forms
    index = next(i for i, f in enumerate(forms) if (f.action or "").endswith(f"/{upstream}"))
    return browser.submit(discovery, form=index)


def anna(world: AdminWorld) -> str:
    """Anna signs in to the portal through "op" in a browser of her own; her account id."""
    with Browser() as browser:
        home = choose(browser, browser.submit(browser.get(f"{world.url}/account/")), "op")
        assert home.status_code == 200, home.text[:300]
    svc = services(world.federation)
    issuer = svc.registry.upstream("op")
    assert issuer is not None
    account = svc.accounts.find_by_identity(issuer.issuer, str(CITIZEN.claims["sub"]))
    assert account is not None
    return account.account_id


def staff(world: AdminWorld, browser: Browser, *roles: Role) -> str:
    """Bob signs in to the portal through "other", gets an authenticator app and ``roles``, and signs in to the
    console with it; his account id."""
    svc = services(world.federation)
    home = choose(browser, browser.submit(browser.get(f"{world.url}/account/")), "other")
    assert home.status_code == 200 and home.url == f"{world.url}/account/", home.text[:300]
    issuer = svc.registry.upstream("other")
    assert issuer is not None
    account = svc.accounts.find_by_identity(issuer.issuer, BOB_SUB)
    assert account is not None
    world.bob, world.bob_secret = account.account_id, new_totp_secret()
    svc.authenticators.add_totp(world.bob, "phone", world.bob_secret, svc.clock.now())
    set_roles(world, world.bob, *roles)
    factor = browser.submit(browser.get(f"{world.url}/console/"))
    assert "Confirm it is you" in factor.text, factor.text[:300]
    console = browser.submit(factor, {"code": pyotp.TOTP(world.bob_secret).now()})
    assert console.status_code == 200 and "Operator console" in console.text, console.text[:300]
    return world.bob


def set_roles(world: AdminWorld, account_id: str, *roles: Role) -> None:
    """Exactly ``roles`` for the account, straight in the store (the console reads them at every request)."""
    grants = services(world.federation).operators
    assert grants is not None
    for role in Role:
        if role in roles:
            grants.grant(OperatorGrant(account_id, role, "test", services(world.federation).clock.now()))
        else:
            grants.revoke(account_id, role)


def api(world: AdminWorld, browser: Browser, method: str, path: str, body: dict[str, Any] | None = None, *,
        csrf: str | None = None, origin: str | None = "") -> requests.Response:
    """A call with the browser's cookies (the console session), as the console's own script would make it: from
    the broker's origin (``origin=""``; None: no Origin header) and with the CSRF token when given."""
    headers = {"Origin": origin or world.url} if origin is not None else {}
    if csrf is not None:
        headers["X-CSRFToken"] = csrf
    return browser.session.request(method, f"{world.url}{PREFIX}{path}", json=body, headers=headers, timeout=10,
                                   allow_redirects=False)


def csrf_token(world: AdminWorld, browser: Browser) -> str:
    answer = api(world, browser, "GET", "/whoami")
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["csrf_token"]
    return token


def bearer(world: AdminWorld, token: str, method: str, path: str, body: dict[str, Any] | None = None) \
        -> requests.Response:
    """A call with an access token and no cookie at all, as a CI pipeline makes it."""
    return requests.request(method, f"{world.url}{PREFIX}{path}", json=body, timeout=10,
                            headers={"Authorization": f"Bearer {token}"})


def automation_client(world: AdminWorld, client_id: str, scope: str) -> str:
    """Register an automation client by its metadata file, as the operator does; its secret."""
    secret = secrets.token_urlsafe(32)
    write_client(world, client_id, {"client_id": client_id, "grant_types": ["client_credentials"], "scope": scope,
                                    "token_endpoint_auth_method": "client_secret_basic",
                                    "client_secret_hash": hash_secret(secret)})
    return secret


def write_client(world: AdminWorld, client_id: str, document: dict[str, Any] | None) -> None:
    """Write (or with None remove) the client's file, and reload the registry."""
    path = world.federation.folder / "metadata" / "oidc-clients" / f"{client_id}.json"
    path.parent.mkdir(exist_ok=True)
    if document is None:
        path.unlink()
    else:
        path.write_text(json.dumps(document))
    snapshot = services(world.federation).registry.reload()
    assert (client_id in snapshot.oidc_clients) is (document is not None), snapshot.problems


def token_request(world: AdminWorld, client_id: str, secret: str, **form: str) -> requests.Response:
    return requests.post(f"{world.url}/oidc/token", data={"grant_type": "client_credentials", **form},
                         auth=(client_id, secret), timeout=10)


def client_token(world: AdminWorld, client_id: str, secret: str, **form: str) -> str:
    answer = token_request(world, client_id, secret, **form)
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["access_token"]
    return token


def conforms(answer: requests.Response, operation_id: str) -> None:
    """The answer is what the OpenAPI document says the operation answers."""
    op = next(o for o in OPERATIONS if o.operation_id == operation_id)
    doc = document(OPERATIONS, "https://broker.test")
    validate(answer.json(), {"$ref": f"#/components/schemas/{op.response}", "components": doc["components"]},
             cls=OAS31Validator)
