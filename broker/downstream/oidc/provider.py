"""The OpenID provider's back-channel endpoints, protocol logic only (Flask lives in ``broker.web``).

- token: ``authorization_code`` (RFC 6749 §4.1.3, OIDC Core §3.1.3) and ``refresh_token`` (RFC 6749 §6,
  OIDC Core §12) grants, and ``client_credentials`` (RFC 6749 §4.4) for automation clients calling the admin API
  (``client_credentials``); responses are never cached (RFC 6749 §5.1).
- UserInfo (OIDC Core §5.3): the bearer's released claims, those its grant released at the sign-in.

Claims (issue 21): the values a sign-in released travel with its grant (``Grant.released``, sealed at rest), so the
code's ID token and UserInfo answer from them without reading the account's identities again. A refresh
re-reads the unified profile for its ID token (OIDC Core §12.2: it may carry current claims); a grant that kept
no values (stored before, or its sealed values do not open) is answered from the profile as it is now. Either
way the account is read first: a disabled or erased account's tokens are refused.
- revocation (RFC 7009) and introspection (RFC 7662, for clients registered as resource servers).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from broker.core.app_roles import ROLES_CLAIM, AppRoleStore, roles_for, with_roles
from broker.core.claims import ClaimValue
from broker.core.grants import Grant, TokenKind, TokenRecord
from broker.core.model import LoginResult
from broker.core.ports import AccountStore, GrantStore
from broker.core.profile import MergeRules, merge
from broker.core.release import release
from broker.downstream.oidc import client_credentials, grants
from broker.downstream.oidc.client_auth import ClientCredentials, authenticate
from broker.downstream.oidc.errors import OAuthError, invalid_grant
from broker.downstream.oidc.grants import Lifetimes
from broker.downstream.oidc.id_token import id_token, oidc_claims, subject
from broker.keys.keyring import KeyRing
from broker.oidc.client import OidcClient

GRANT_TYPES = ("authorization_code", "refresh_token", client_credentials.GRANT_TYPE)
MAX_TOKEN = 512


@dataclass(frozen=True)
class ProviderSettings:
    issuer: str
    token_endpoint: str
    lifetimes: Lifetimes
    release_unverified_email: bool
    pairwise_secret: bytes = field(repr=False)
    #: how the unified profile is merged (``[profile]``; ``core.profile``)
    merge_rules: MergeRules = field(default_factory=MergeRules)


def bearer_challenge(error: str, description: str) -> str:
    """RFC 6750 §3: the WWW-Authenticate value of a refused bearer token."""
    return f'Bearer realm="broker", error="{error}", error_description="{description}"'


class OidcProvider:
    def __init__(self, settings: ProviderSettings, keys: KeyRing, store: GrantStore, accounts: AccountStore,
                 clients: Callable[[str], OidcClient | None],
                 first_use_of: Callable[[str, str, datetime], bool], roles: AppRoleStore | None = None) -> None:
        """``first_use_of(client_id, jti, expires_at)`` records a client assertion id, False when seen before;
        ``roles``: the operator's roles for apps (``core.app_roles``), None when the broker keeps none."""
        self.settings, self.keys, self.store, self.accounts = settings, keys, store, accounts
        self.clients, self._first_use_of, self.roles = clients, first_use_of, roles

    # -- the front channel hands over here -------------------------------------------------------------
    def authorization_code(self, result: LoginResult, claims: frozenset[str], sid: str, now: datetime) -> str:
        """The code for a completed sign-in (RFC 6749 §4.1.2); its grant keeps the values ``result`` released."""
        return grants.issue_code(self.store, result, claims, sid, now, self.settings.lifetimes)[1]

    def subject(self, client: OidcClient, account_id: str) -> str:
        return subject(self.settings.pairwise_secret, client, account_id)

    # -- token endpoint --------------------------------------------------------------------------------
    def authenticate(self, credentials: ClientCredentials, now: datetime) -> OidcClient:
        audiences = (self.settings.token_endpoint, self.settings.issuer)
        return authenticate(credentials, self.clients, audiences, now, self._first_use_of)

    def token(self, credentials: ClientCredentials, now: datetime) -> dict[str, Any]:
        form = credentials.form
        grant_type = form.get("grant_type")
        if grant_type not in GRANT_TYPES:
            raise OAuthError("unsupported_grant_type", f"grant_type must be one of {', '.join(GRANT_TYPES)}")
        client = self.authenticate(credentials, now)
        if grant_type not in client.grant_types:
            raise OAuthError("unauthorized_client", f"the client is not registered for {grant_type}")
        if grant_type == client_credentials.GRANT_TYPE:
            return client_credentials.grant(self.keys, self.settings.issuer, client, form.get("scope"), now)
        if grant_type == "authorization_code":
            code = form.get("code")
            if not code or len(code) > MAX_TOKEN:
                raise OAuthError("invalid_request", "code missing")
            grant = grants.redeem_code(self.store, client, code, form.get("redirect_uri"),
                                       form.get("code_verifier"), now)
            return self._tokens(client, grant, now, with_nonce=True)
        token = form.get("refresh_token")
        if not token or len(token) > MAX_TOKEN:
            raise OAuthError("invalid_request", "refresh_token missing")
        grant = grants.rotate_refresh_token(self.store, client, token, form.get("scope"), now)
        return self._tokens(client, grant, now, with_nonce=False, current=True)

    def _tokens(self, client: OidcClient, grant: Grant, now: datetime, with_nonce: bool,
                current: bool = False) -> dict[str, Any]:
        """The token response; none for an account erased or disabled (``broker.journeys.account_status``) since
        the grant was made: ``invalid_grant`` (RFC 6749 §5.2; ``access_denied`` is an authorization endpoint
        error, §4.1.2.1), the same words as for any refused grant."""
        account = self.accounts.get(grant.account_id)
        if account is None or account.disabled_at is not None:
            raise invalid_grant(f"the grant's account is {'gone' if account is None else 'disabled'}")
        lifetimes = self.settings.lifetimes
        issued = grants.issue_tokens(self.store, client, grant, now, lifetimes)
        released = self._released(grant, current)
        body: dict[str, Any] = {
            "access_token": issued.access_token,
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
            "scope": " ".join(grant.scope),
            "id_token": id_token(self.keys, self.settings.issuer, client, grant,
                                 self.subject(client, grant.account_id), released, now, lifetimes.id_token,
                                 issued.access_token, with_nonce),
        }
        if issued.refresh_token is not None:
            body["refresh_token"] = issued.refresh_token
        return body

    def _released(self, grant: Grant, current: bool = False) -> Mapping[str, ClaimValue]:
        """The grant's claims: those its sign-in released (``Grant.released``) unless ``current`` (a refresh) or
        the grant kept none; else from the unified profile as it is now, through the release step SAML uses too,
        with the client's own ``roles`` (those of this client only, for the grant's sign-in) when the grant has
        them."""
        if grant.released is not None and not current:
            return {name: value for name, value in grant.released.items() if name in grant.claims}
        identities = self.accounts.identity_claims(grant.account_id)
        profile = merge(identities, self.settings.merge_rules).claims()
        if self.roles is not None and ROLES_CLAIM in grant.claims:
            profile = with_roles(profile, roles_for(self.roles, grant.client_id, grant.account_id, grant.upstream,
                                                    identities))
        return release(profile, grant.claims, self.settings.release_unverified_email)

    # -- UserInfo --------------------------------------------------------------------------------------
    def userinfo(self, access_token: str | None, now: datetime,
                 admit: Callable[[str], None] | None = None) -> dict[str, Any]:
        """OIDC Core §5.3.2; a refused token is ``OAuthError`` with the RFC 6750 §3.1 challenge. ``admit`` is
        told the client a valid token was issued to before anything is answered (its rate limit may refuse)."""
        if not access_token:
            raise OAuthError("invalid_request", "no access token", 401,
                             www_authenticate='Bearer realm="broker"')
        record = self.store.find(TokenKind.ACCESS, access_token, now) if len(access_token) <= MAX_TOKEN else None
        if record is None:
            raise OAuthError("invalid_token", "the access token is invalid or expired", 401,
                             www_authenticate=bearer_challenge("invalid_token", "the access token is invalid"))
        client = self.clients(record.grant.client_id)
        account = self.accounts.get(record.grant.account_id)
        if client is None or account is None or account.disabled_at is not None:
            raise OAuthError("invalid_token", "the access token's client or account is gone or disabled", 401,
                             www_authenticate=bearer_challenge("invalid_token", "the access token is invalid"))
        if admit is not None:
            admit(client.client_id)
        return {"sub": self.subject(client, record.grant.account_id), **oidc_claims(self._released(record.grant))}

    # -- revocation and introspection ------------------------------------------------------------------
    def _find_any(self, token: str, hint: str | None, now: datetime) -> TokenRecord | None:
        kinds = [TokenKind.ACCESS, TokenKind.REFRESH]
        if hint == "refresh_token":
            kinds.reverse()
        for kind in kinds:
            record = self.store.find(kind, token, now)
            if record is not None:
                return record
        return None

    def revoke(self, credentials: ClientCredentials, now: datetime) -> None:
        """RFC 7009 §2.1: only the client the token was issued to may revoke it; unknown tokens are no error
        (§2.2), so a client cannot probe another's tokens."""
        client = self.authenticate(credentials, now)
        token = credentials.form.get("token")
        if not token:
            raise OAuthError("invalid_request", "token missing")
        if len(token) > MAX_TOKEN:
            return
        record = self._find_any(token, credentials.form.get("token_type_hint"), now)
        if record is not None and record.grant.client_id == client.client_id:
            self.store.revoke_token(record.kind, token, now)

    def introspect(self, credentials: ClientCredentials, now: datetime) -> dict[str, Any]:
        """RFC 7662 §2: for resource servers only; any token not live is just ``{"active": false}``."""
        caller = self.authenticate(credentials, now)
        if not caller.may_introspect:
            raise OAuthError("unauthorized_client", "the client is not registered as a resource server", 403)
        token = credentials.form.get("token")
        if not token:
            raise OAuthError("invalid_request", "token missing")
        record = self._find_any(token, credentials.form.get("token_type_hint"), now) \
            if len(token) <= MAX_TOKEN else None
        client = self.clients(record.grant.client_id) if record is not None else None
        if record is None or client is None:
            return {"active": False}
        answer = {
            "active": True,
            "scope": " ".join(record.grant.scope),
            "client_id": client.client_id,
            "token_type": "Bearer" if record.kind is TokenKind.ACCESS else "refresh_token",
            "exp": int(record.expires_at.timestamp()),
            "iat": int(record.issued_at.timestamp()),
            "sub": self.subject(client, record.grant.account_id),
            "aud": client.client_id,
            "iss": self.settings.issuer,
            "acr": record.grant.acr,
            "auth_time": int(record.grant.auth_time.timestamp()),
        }
        return {name: value for name, value in answer.items() if value is not None}
