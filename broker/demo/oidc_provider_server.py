"""authlib's authorization server, wired to the demo provider's store, keys and mischief.

The grant is the authorization code grant (RFC 6749 §4.1) with two extensions: PKCE, required for every client
and S256 only (RFC 7636 §4.2-4.6, as RFC 9700 §2.1.1 recommends), and OpenID Connect's ID token (OIDC Core 1.0
§3.1.3.3, ``nonce``/``auth_time``/``acr``/``amr``/``at_hash``). The server also adds ``iss`` to authorization
responses (RFC 9207 §2) and serves UserInfo to bearer tokens (OIDC Core 1.0 §5.3, RFC 6750).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector
from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant
from authlib.oauth2.rfc6750 import BearerTokenValidator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc9207 import IssuerParameter
from authlib.oidc.core import OpenIDCode, UserInfo, UserInfoEndpoint
from flask import Flask

from broker.demo.oidc_provider_config import DemoUser
from broker.demo.oidc_provider_keys import ALG
from broker.demo.oidc_provider_store import TOKEN_AUTH_METHODS, AccessToken, AuthorizationCode, DemoStore

if TYPE_CHECKING:
    from broker.demo.oidc_provider import DemoProvider


def build_authorization_server(provider: DemoProvider, app: Flask) -> AuthorizationServer:
    """The server for ``provider``, attached to ``app`` (routes are the caller's)."""
    server = _Server(provider, app)
    server.register_grant(_CodeGrant, [_S256Required(required=True), _OpenIDCode(provider)])
    server.register_extension(_IssuerParameter(provider))
    protector = ResourceProtector()
    protector.register_token_validator(_BearerTokens(provider.store))
    server.register_endpoint(_UserInfoEndpoint(provider, protector))
    return server


class _Server(AuthorizationServer):  # type: ignore[misc]  # authlib ships no type information
    def __init__(self, provider: DemoProvider, app: Flask) -> None:
        self.provider = provider
        super().__init__(app, query_client=provider.store.client, save_token=self._save)

    def _save(self, token: dict[str, Any], oauth_request: Any) -> None:
        self.provider.store.save_token(AccessToken(
            access_token=token["access_token"], client=oauth_request.client, user=oauth_request.user,
            scope=token.get("scope", ""), issued_at=time.time(), expires_in=int(token["expires_in"]),
        ))


class _CodeGrant(AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = list(TOKEN_AUTH_METHODS)

    def save_authorization_code(self, code: str, oauth_request: Any) -> None:
        provider: DemoProvider = self.server.provider
        data = oauth_request.payload.data
        now = time.time()
        provider.store.save_code(AuthorizationCode(
            code=code, client_id=oauth_request.client.client_id, redirect_uri=oauth_request.payload.redirect_uri,
            scope=oauth_request.scope, user=oauth_request.user, nonce=data.get("nonce"), auth_time=int(now),
            acr=provider.settings.acr, amr=provider.settings.amr, code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
            expires_at=now + provider.settings.code_lifetime_seconds,
        ))

    def query_authorization_code(self, code: str, client: Any) -> AuthorizationCode | None:
        store: DemoStore = self.server.provider.store
        return store.take_code(code, client.client_id)

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        """Nothing left to do: ``query_authorization_code`` already consumed the code."""

    def authenticate_user(self, authorization_code: AuthorizationCode) -> DemoUser:
        return authorization_code.user


class _S256Required(CodeChallenge):  # type: ignore[misc]
    """PKCE for every client, S256 only (RFC 7636 §4.2; OAuth 2.0 Security BCP, RFC 9700 §2.1.1)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge") or data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("PKCE with code_challenge_method=S256 is required.")
        super().validate_code_challenge(grant, redirect_uri)


class _OpenIDCode(OpenIDCode):  # type: ignore[misc]
    def __init__(self, provider: DemoProvider) -> None:
        super().__init__(require_nonce=False)
        self.provider = provider

    def exists_nonce(self, nonce: str, oauth_request: Any) -> bool:
        return self.provider.store.nonce_seen(oauth_request.payload.client_id, nonce)

    def get_client_algorithm(self, client: Any) -> str:
        return ALG

    def get_client_claims(self, client: Any) -> dict[str, Any]:
        return {"iss": self.provider.issuer, "aud": client.client_id}

    def resolve_client_private_key(self, client: Any) -> Any:
        return self.provider.keys.signing_set()

    def generate_user_info(self, user: DemoUser, scope: str) -> UserInfo:
        if self.provider.apple is not None:
            return UserInfo(self.provider.apple.id_token_claims(user, scope))
        return UserInfo(dict(user.claims)).filter(scope)

    def encode_id_token(self, token: dict[str, Any], oauth_request: Any) -> str:
        issued: str = super().encode_id_token(token, oauth_request)
        return self.provider.keys.tamper(issued, self.provider.mischief)


class _IssuerParameter(IssuerParameter):  # type: ignore[misc]
    """RFC 9207 §2: ``iss`` in every authorization response, unless mischief says otherwise."""

    def __init__(self, provider: DemoProvider) -> None:
        self.provider = provider

    def get_issuer(self) -> str | None:
        mischief = self.provider.mischief
        if mischief.omit_iss_param or self.provider.apple is not None:  # Apple sends no iss parameter
            return None
        return mischief.iss_param or self.provider.issuer


class _BearerTokens(BearerTokenValidator):  # type: ignore[misc]
    def __init__(self, store: DemoStore) -> None:
        super().__init__()
        self.store = store

    def authenticate_token(self, token_string: str) -> AccessToken | None:
        return self.store.token(token_string)


class _UserInfoEndpoint(UserInfoEndpoint):  # type: ignore[misc]
    def __init__(self, provider: DemoProvider, protector: ResourceProtector) -> None:
        super().__init__(resource_protector=protector)
        self.provider = provider

    def get_issuer(self) -> str:
        return self.provider.issuer

    def generate_user_info(self, user: DemoUser, scope: str) -> UserInfo:
        info = UserInfo(dict(user.claims)).filter(scope)
        if self.provider.mischief.userinfo_sub is not None:
            info["sub"] = self.provider.mischief.userinfo_sub
        return info
