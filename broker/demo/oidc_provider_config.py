"""Settings of the demo OpenID provider, and the misbehaviour it can be told to show.

The demo provider is a real OpenID Connect provider for local demos and tests; ``Mischief`` makes it break
the rules one at a time so tests can prove the broker notices (OIDC Core 1.0 §3.1.3.7, RFC 9207, RFC 7636).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from cryptography.hazmat.primitives.asymmetric import ec, rsa

_NO_CLAIMS: Mapping[str, object] = MappingProxyType({})
#: Sign in with Apple, "Creating a client secret": the ``aud`` of every client secret JWT
APPLE_AUDIENCE = "https://appleid.apple.com"
#: ... and ``exp`` at most 15777000 seconds (six months) after ``iat``
APPLE_MAX_SECRET_LIFETIME = 15777000


@dataclass(frozen=True)
class DemoClient:
    """A relying party registered at the demo provider (a confidential client)."""

    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]


@dataclass(frozen=True)
class DemoUser:
    """A person who can sign in at the demo provider; ``claims`` must contain ``sub``."""

    username: str
    password: str = field(repr=False)
    claims: Mapping[str, object] = field(hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.claims.get("sub"), str) or not self.claims["sub"]:
            raise ValueError(f"demo user {self.username!r} needs a string 'sub' claim")


@dataclass(frozen=True)
class AppleStyle:
    """Make the demo provider answer like Sign in with Apple, for tests of the broker's ``apple`` preset.

    With it (see ``oidc_provider_apple``): discovery lists no UserInfo endpoint, only ``client_secret_post``
    and the scopes openid/name/email; a request for name or email must say ``response_mode=form_post`` and is
    answered by a page that posts the response to the redirect URI; the ``user`` field (name and e-mail, as
    JSON) comes with a person's first authorization of a client only; ID token booleans are the strings
    "true"/"false" when ``string_booleans``; users named in ``private_relay`` get an address at
    privaterelay.appleid.com and ``is_private_email`` true. The client secret must be an ES256 JWT signed
    with one of the team's ``keys`` (key id -> public key): ``kid`` a key id, ``iss`` the ``team_id``, ``sub``
    the client id, ``aud`` https://appleid.apple.com, ``exp`` in the future and at most six months after
    ``iat``; the registered static client secret is never accepted.
    """

    team_id: str
    keys: Mapping[str, ec.EllipticCurvePublicKey] = field(hash=False)
    private_relay: frozenset[str] = frozenset()
    string_booleans: bool = True
    clock_skew_seconds: int = 60

    def __post_init__(self) -> None:
        if not self.keys or not all(isinstance(k, ec.EllipticCurvePublicKey) and isinstance(k.curve, ec.SECP256R1)
                                    for k in self.keys.values()):
            raise ValueError("an Apple-style provider needs the team's EC P-256 public keys (ES256)")


@dataclass(frozen=True)
class DemoProviderSettings:
    """``issuer`` is the provider's base URL (its path, if any, prefixes every endpoint).

    ``signing_key`` is generated (RSA 2048) when not given. With ``auto_login`` set to a username,
    ``/authorize`` signs that user in without showing the form, for scripted tests. ``acr``/``amr`` go into
    every ID token when set. ``token_auth_methods`` are the client authentications the token endpoint
    accepts (a subset of client_secret_basic and client_secret_post, RFC 6749 §2.3.1). ``apple`` makes the
    provider behave like Sign in with Apple (``AppleStyle``; ``token_auth_methods`` is then ignored).
    """

    issuer: str
    clients: tuple[DemoClient, ...]
    users: tuple[DemoUser, ...]
    signing_key: rsa.RSAPrivateKey | None = None
    auto_login: str | None = None
    acr: str | None = None
    amr: tuple[str, ...] = ()
    token_auth_methods: tuple[str, ...] = ("client_secret_basic", "client_secret_post")
    code_lifetime_seconds: int = 300
    token_lifetime_seconds: int = 3600
    apple: AppleStyle | None = None

    def __post_init__(self) -> None:
        if self.issuer.endswith("/"):
            raise ValueError("the issuer must not end with '/' (OIDC Discovery §4.1 appends the path)")
        if not self.token_auth_methods or set(self.token_auth_methods) - {"client_secret_basic", "client_secret_post"}:
            raise ValueError("token_auth_methods must be client_secret_basic and/or client_secret_post")
        if self.auto_login is not None and self.auto_login not in {u.username for u in self.users}:
            raise ValueError(f"auto_login names an unknown user {self.auto_login!r}")
        if self.apple is not None and self.apple.private_relay - {u.username for u in self.users}:
            raise ValueError("AppleStyle.private_relay names unknown users")

    @property
    def client_auth_methods(self) -> tuple[str, ...]:
        """What the token endpoint accepts: Apple's discovery lists client_secret_post only."""
        return ("client_secret_post",) if self.apple is not None else self.token_auth_methods


@dataclass(frozen=True)
class Mischief:
    """Ways to break the protocol, for negative tests; replace ``provider.mischief`` at runtime.

    - ``alg_none``: the ID token has ``alg: none`` and no signature.
    - ``foreign_key``: signed with an RSA key that is not in the JWKS, under the current ``kid``.
    - ``hs256_with_public_key``: algorithm confusion, HS256 keyed with the public key's PEM.
    - ``claim_overrides``: replace claims (``iss``, ``aud``, ``exp``, ``iat``, ``nonce``, ``azp``, ``sub``...).
    - ``drop_claims``: remove claims from the ID token.
    - ``iss_param``: a wrong ``iss`` in the authorization response; ``omit_iss_param`` leaves it out.
    - ``userinfo_sub``: the UserInfo endpoint answers with this ``sub``.
    - ``discovery_issuer``: the discovery document names this issuer.
    """

    alg_none: bool = False
    foreign_key: bool = False
    hs256_with_public_key: bool = False
    claim_overrides: Mapping[str, object] = field(default_factory=lambda: _NO_CLAIMS, hash=False)
    drop_claims: tuple[str, ...] = ()
    iss_param: str | None = None
    omit_iss_param: bool = False
    userinfo_sub: str | None = None
    discovery_issuer: str | None = None

    @property
    def tampers_id_token(self) -> bool:
        return bool(
            self.alg_none or self.foreign_key or self.hs256_with_public_key or self.claim_overrides
            or self.drop_claims
        )


NO_MISCHIEF = Mischief()
