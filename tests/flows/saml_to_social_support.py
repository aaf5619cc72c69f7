"""Social upstream stand-ins (GitHub, Microsoft Entra ID) and the Entra tenant, shared by the social flow tests and
the account attack tests.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from broker.demo.oidc_provider import DemoClient, DemoProvider, DemoProviderSettings, DemoUser, create_demo_provider
from broker.demo.oidc_provider_config import Mischief
from broker.keys.keyring import write_private
from tests.peers.entra import TEMPLATE_PATH, PathRouter
from tests.peers.github_sim import GitHubEmail, GitHubSim, GitHubUser
from tests.peers.servers import WsgiApp

TENANT, OTHER_TENANT = "aaaaaaaa-1111-4111-8111-aaaaaaaaaaaa", "bbbbbbbb-2222-4222-8222-bbbbbbbbbbbb"


OID = "cccccccc-3333-4333-8333-cccccccccccc"


def _secret(folder: Path, name: str) -> str:
    value = secrets.token_urlsafe(24)
    write_private(folder / "certs" / f"{name}.secret", value.encode())
    return value


class GitHubUpstream:
    sim: GitHubSim

    def build(self, base_url: str, redirect_uri: str, folder: Path) -> tuple[WsgiApp, dict[str, Any]]:
        self.sim = GitHubSim(client_id="gh-client", client_secret=_secret(folder, "github"),
                             redirect_uris=(redirect_uri,), users=(GitHubUser(
                                 id=583231, login="octocat", name="Mona Octocat", email="public@example.org",
                                 emails=(GitHubEmail("old@example.org", verified=True),
                                         GitHubEmail("mona@example.org", primary=True, verified=True))),))
        return self.sim.app, {
            "protocol": "oauth2", "preset": "github", "client_id": "gh-client",
            "client_secret_file": "certs/github.secret",
            "options": {"authorize_url": base_url + "/login/oauth/authorize",
                        "token_url": base_url + "/login/oauth/access_token", "api_url": base_url + "/api/v3"},
        }


class EntraUpstream:
    provider: DemoProvider
    authority: str

    def build(self, base_url: str, redirect_uri: str, folder: Path) -> tuple[WsgiApp, dict[str, Any]]:
        self.authority = base_url
        self.provider = create_demo_provider(DemoProviderSettings(
            issuer=f"{base_url}/common/v2.0",
            clients=(DemoClient("entra-client", _secret(folder, "entra"), (redirect_uri,)),),
            users=(DemoUser("meri", "pw", {"sub": "pairwise-for-app-1", "email": "meri@contoso.example",
                                           "email_verified": True, "given_name": "Meri", "name": "Meri M"}),),
            auto_login="meri",
        ))
        self.sign_in(TENANT, sub="pairwise-for-app-1")
        router = PathRouter()
        router.routes["/common/v2.0"] = self.provider.app
        return router, {
            "protocol": "oidc", "preset": "microsoft", "client_id": "entra-client",
            "client_secret_file": "certs/entra.secret",
            "options": {"tenant": "common", "allowed_tenants": [TENANT], "authority": base_url},
        }

    def sign_in(self, tid: str, *, sub: str) -> None:
        """Entra issues the next ID tokens for this tenant (and this app's pairwise ``sub``)."""
        issuer = f"{self.authority}/{tid}/v2.0"
        self.provider.mischief = Mischief(
            discovery_issuer=self.authority + TEMPLATE_PATH,
            claim_overrides={"iss": issuer, "tid": tid, "oid": OID, "sub": sub},
            iss_param=issuer, userinfo_sub=sub,
        )
