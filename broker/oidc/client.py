"""A registered OpenID Connect client as the registry and the OpenID provider both see it.

Clients are described in RFC 7591 §2 client-metadata form (files in ``metadata/oidc-clients/``, ``broker
client add``, or Dynamic Client Registration); ``broker.oidc.client_metadata`` validates that form into
this type.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from broker.core.display import readable_name
from broker.core.model import DownstreamParty, Protocol
from broker.oidc.client_secret import hash_generated, verify_secret

AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
SIGNING_ALGS = ("RS256", "ES256")
#: ``roles`` (the broker's own, ``core.claims``) asks for the person's roles in the app (``core.app_roles``)
SCOPES = ("openid", "profile", "email", "address", "phone", "offline_access", "roles")
#: ``OidcClient.source`` of a client registered through Dynamic Client Registration (RFC 7591)
DYNAMIC_SOURCE = "dynamic"


def hash_secret(secret: str) -> str:
    """The stored form of a secret the broker generated (``broker.oidc.client_secret.hash_generated``: 256
    random bits, so a plain SHA-256 is enough); secrets an operator brings are hashed with scrypt instead."""
    return hash_generated(secret)


@dataclass(frozen=True)
class OidcClient:
    client_id: str
    client_name: str
    redirect_uris: tuple[str, ...]
    token_endpoint_auth_method: str  # one of AUTH_METHODS
    client_secret_hash: str | None = field(default=None, repr=False)
    post_logout_redirect_uris: tuple[str, ...] = ()
    #: the client's public keys for private_key_jwt (RFC 7591 ``jwks``), as JSON text
    jwks: str | None = None
    #: scopes this client may ask for
    scope: tuple[str, ...] = ("openid", "profile", "email")
    subject_type: str = "pairwise"  # or "public" (OIDC Core §8)
    #: the pairwise sector (OIDC Core §8.1): the host of the redirect URIs, or the sector_identifier_uri's;
    #: for loopback redirect URIs the client alone (``core.identifiers.client_sector``)
    sector: str = ""
    id_token_signed_response_alg: str = "RS256"  # noqa: S105 - an algorithm name, not a password
    grant_types: tuple[str, ...] = ("authorization_code",)
    allowed_upstreams: tuple[str, ...] = ()
    #: a resource server that may call the introspection endpoint (RFC 7662 §2.1)
    may_introspect: bool = False
    #: where it came from: "metadata/oidc-clients/<file>" or "dynamic"
    source: str = ""
    #: the registered sector_identifier_uri (OIDC Core §8.1) whose host is ``sector``; None: the redirect URIs' host
    sector_identifier_uri: str | None = None
    #: RFC 7591 §2 ``logo_uri`` and ``policy_uri``, shown to citizens (checked by ``core.display``)
    logo_uri: str | None = None
    policy_uri: str | None = None
    #: the broker's extension: the upstream used when a request names none (one of ``allowed_upstreams``)
    default_upstream: str | None = None
    #: where the broker POSTs a logout token when the citizen's SSO session ends (Back-Channel Logout 1.0 §2.2),
    #: and whether the token must carry ``sid`` (the broker always sends it)
    backchannel_logout_uri: str | None = None
    backchannel_logout_session_required: bool = False
    #: what the signed-out page loads in an iframe (Front-Channel Logout 1.0 §2), with ``iss`` and ``sid`` added
    #: when ``frontchannel_logout_session_required`` (§3)
    frontchannel_logout_uri: str | None = None
    frontchannel_logout_session_required: bool = False

    @property
    def is_automation(self) -> bool:
        """An automation client (``broker.oidc.client_grants``): client credentials and admin scopes only."""
        return "client_credentials" in self.grant_types

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == "none"  # noqa: S105 - a method name, not a password

    def check_secret(self, secret: str) -> bool:
        """Whether ``secret`` (from a token request, RFC 6749 §2.3.1) matches the stored hash, in constant time
        (either stored form, see ``broker.oidc.client_secret``)."""
        return verify_secret(secret, self.client_secret_hash)

    @property
    def display_name(self) -> str:
        """What citizens see: ``client_name``, never a URL (a client_id that is one shows as its host)."""
        return readable_name((self.client_name,), self.client_id)

    def party(self) -> DownstreamParty:
        """How the core sees the client; what a dynamically registered one (RFC 7591 §2) calls itself is
        marked as its own claim (``self_described``), what the operator wrote in a file is not."""
        return DownstreamParty(self.client_id, Protocol.OIDC, self.display_name, frozenset(),
                               self.allowed_upstreams, default_upstream=self.default_upstream,
                               logo_uri=self.logo_uri, policy_uri=self.policy_uri,
                               self_described=self.source == DYNAMIC_SOURCE)
