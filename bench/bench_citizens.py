"""The citizens the benches sign in: N of them, known to both peers, one chosen per login by the driver.

Why: with one citizen, every bench login was the same account, and at concurrency 16 the logins queued on that
account's row lock (``SqlAccountStore.record_use`` takes ``SELECT ... FOR UPDATE``, held until the login step
commits): the broker's ``complete_login`` step took ~150 ms at c16 against 1.5 ms at c1. A city's concurrent
logins are of different citizens; that queue was an artefact of the bench.

Citizen ``n`` (0 <= n < N): at the demo OpenID provider ``op_user(n)``, at the SAML IdP ``idp_user(n)``. Citizen 0
is the tests' own citizen (``tests.flows.federation.CITIZEN``, ``tests.flows.saml_upstream.CITIZEN``), so N = 1 is
the old one-citizen bench; the others are modelled on them with their own ``sub`` / NameID, e-mail address, family
name and person identifier. The peers learn N from ``BENCH_CITIZENS`` (``ENV``). The driver's browser sends the
cookie ``bench_citizen=<n>`` (``COOKIE``) to the peers' hosts; ``choosing`` (a WSGI wrapper around each peer)
reads it into a context variable for the request, and the peer's auto-login user is the one ``current()`` names.
A missing cookie is citizen 0; a number outside 0..N-1 gets a 400, so a driver and peers that disagree on N fail
loudly instead of measuring fewer citizens.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from dataclasses import replace
from typing import Any

from werkzeug.http import parse_cookie

from broker.demo.oidc_provider_config import DemoUser
from tests.flows.federation import CITIZEN as OP_CITIZEN
from tests.flows.saml_upstream import CITIZEN as IDP_CITIZEN
from tests.flows.saml_upstream import EIDAS
from tests.peers.saml_idp import IdpUser

COOKIE = "bench_citizen"
ENV = "BENCH_CITIZENS"
DEFAULT = 200

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_current: ContextVar[int] = ContextVar("bench_citizen", default=0)


def count_from_env() -> int:
    count = int(os.environ.get(ENV, str(DEFAULT)))
    if count < 1:
        raise ValueError(f"{ENV} must be at least 1, not {count}")
    return count


def op_user(n: int) -> DemoUser:
    """Citizen ``n`` at the demo OpenID provider (0: the tests' ``CITIZEN``)."""
    if n == 0:
        return OP_CITIZEN
    tag = f"bench-{n:04d}"
    family = f"Bench{n:04d}"
    claims = {**OP_CITIZEN.claims, "sub": tag, "email": f"{tag}@example.org", "family_name": family,
              "name": f"{OP_CITIZEN.claims['given_name']} {family}"}
    return replace(OP_CITIZEN, username=tag, claims=claims)


def idp_user(n: int) -> IdpUser:
    """Citizen ``n`` at the SAML IdP (0: the tests' ``CITIZEN``)."""
    if n == 0:
        return IDP_CITIZEN
    tag = f"bench-{n:04d}"
    attributes = {**IDP_CITIZEN.attributes, "mail": [f"{tag}@city.example"],
                  EIDAS + "CurrentFamilyName": [f"Bench{n:04d}"], EIDAS + "PersonIdentifier": [f"FI/FI/BENCH-{n:04d}"]}
    return replace(IDP_CITIZEN, name_id=f"city-{tag}", attributes=attributes)


def current() -> int:
    """The citizen of the request being served (``choosing`` sets it)."""
    return _current.get()


def choosing(app: WsgiApp, count: int) -> WsgiApp:
    """``app`` serving each request as the citizen its ``bench_citizen`` cookie names (0 without one)."""

    def wrapper(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        value = parse_cookie(environ.get("HTTP_COOKIE", "")).get(COOKIE, "0")
        n = int(value) if value.isdigit() else -1
        if not 0 <= n < count:
            start_response("400 Bad Request", [("Content-Type", "text/plain")])
            return [f"{COOKIE}={value!r}: this peer knows citizens 0..{count - 1}\n".encode()]
        token = _current.set(n)
        try:  # the views run (and look the user up) inside this call; the body is already made
            return app(environ, start_response)
        finally:
            _current.reset(token)

    return wrapper


class RequestCitizen:
    """Stands in for the IdP's one ``IdpUser``: each attribute is that of the request's citizen (``current()``)."""

    def __init__(self, users: Sequence[IdpUser]) -> None:
        self.users = users

    @property
    def name_id(self) -> str:
        return self.users[current()].name_id

    @property
    def attributes(self) -> dict[str, list[str]]:
        return self.users[current()].attributes

    @property
    def name_id_format(self) -> str:
        return self.users[current()].name_id_format

    @property
    def authn_contexts(self) -> tuple[str, ...]:
        return self.users[current()].authn_contexts
