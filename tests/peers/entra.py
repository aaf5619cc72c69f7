"""A Microsoft Entra ID look-alike on 127.0.0.1, made of demo providers, for the Microsoft quirks' tests.

Entra serves every tenant from one login host: ``{authority}/common/v2.0`` (multi-tenant) and
``{authority}/{tenant id}/v2.0`` (one tenant), each with its discovery document under its own path. The
``common`` document names the issuer template ``{authority}/{tenantid}/v2.0`` and each ID token names the
issuer of the tenant the person signed in to, with ``tid`` (tenant id) and ``oid`` (object id) claims.

``EntraHost`` runs one demo provider per path behind one server, so all share one authority, and
``sign_in_as`` sets the chosen endpoint's ``Mischief`` to issue exactly such tokens. Nothing in the demo
provider changes: its ``discovery_issuer``, ``claim_overrides``, ``iss_param`` and ``userinfo_sub`` knobs
suffice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from broker.demo.oidc_provider import (
    DemoClient,
    DemoProvider,
    DemoProviderSettings,
    DemoUser,
    Mischief,
    create_demo_provider,
)
from tests.peers.servers import LateApp, RunningServer, WsgiApp, serve

TEMPLATE_PATH = "/{tenantid}/v2.0"


class PathRouter:
    """WSGI: each request goes to the app registered for the longest matching path prefix (kept, not stripped)."""

    def __init__(self) -> None:
        self.routes: dict[str, WsgiApp] = {}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        for prefix in sorted(self.routes, key=len, reverse=True):
            if path == prefix or path.startswith(prefix + "/"):
                return self.routes[prefix](environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"no such tenant endpoint"]


@dataclass
class EntraHost:
    """One login host; ``endpoints`` maps "common" or a tenant id to the demo provider at that path."""

    server: RunningServer
    endpoints: dict[str, DemoProvider] = field(default_factory=dict)

    @property
    def authority(self) -> str:
        return self.server.url

    def tenant_issuer(self, tid: str) -> str:
        return f"{self.authority}/{tid}/v2.0"

    def sign_in_as(self, endpoint: str, *, tid: str | None, oid: str | None, sub: str | None = None,
                   iss: str | None = None, iss_param: str | None = None, **claims: object) -> None:
        """From now on ``endpoint`` issues ID tokens for this person, as Entra would.

        ``iss`` defaults to the issuer of ``tid`` and is also sent as the RFC 9207 ``iss`` parameter unless
        ``iss_param`` says otherwise; ``tid``/``oid`` None leave the claim out; ``sub`` replaces the demo
        user's subject in the ID token and in UserInfo (a pairwise subject of another application).
        """
        issuer = iss or (self.tenant_issuer(tid) if tid is not None else self.endpoints[endpoint].issuer)
        overrides: dict[str, object] = {"iss": issuer, **claims}
        if tid is not None:
            overrides["tid"] = tid
        if oid is not None:
            overrides["oid"] = oid
        if sub is not None:
            overrides["sub"] = sub
        self.endpoints[endpoint].mischief = Mischief(
            discovery_issuer=self.authority + TEMPLATE_PATH if endpoint in ("common", "organizations") else None,
            claim_overrides=overrides,
            iss_param=iss_param or issuer,
            userinfo_sub=sub,
        )

    def stop(self) -> None:
        self.server.stop()


def start_entra(endpoints: Iterable[str], clients: tuple[DemoClient, ...], users: tuple[DemoUser, ...],
                signing_key: rsa.RSAPrivateKey, auto_login: str) -> EntraHost:
    """A login host on 127.0.0.1 serving each of ``endpoints`` ("common", "organizations", tenant ids)."""
    router = PathRouter()
    late = LateApp()
    host = EntraHost(serve(late))
    for name in endpoints:
        provider = create_demo_provider(DemoProviderSettings(
            issuer=f"{host.authority}/{name}/v2.0", clients=clients, users=users, signing_key=signing_key,
            auto_login=auto_login,
        ))
        router.routes[f"/{name}/v2.0"] = provider.app
        host.endpoints[name] = provider
    late.target = router
    return host
