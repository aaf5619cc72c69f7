"""In-memory, thread-safe storage of the demo provider, and the objects authlib's server asks for.

authlib's grants call duck-typed methods on clients, codes and tokens (``ClientMixin``,
``AuthorizationCodeMixin``, ``TokenMixin``); these classes provide them without a database.
"""

from __future__ import annotations

import hmac
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from broker.demo.oidc_provider_config import DemoClient, DemoProviderSettings, DemoUser

SUPPORTED_SCOPES = ("openid", "email", "profile")
APPLE_SCOPES = ("openid", "name", "email")  # Sign in with Apple's discovery document
TOKEN_AUTH_METHODS = ("client_secret_basic", "client_secret_post")
#: (client id, presented secret) -> accepted; replaces the comparison with the registered secret
SecretCheck = Callable[[str, str], bool]


@dataclass(frozen=True)
class Client:
    """A registered client as authlib's ``ClientMixin`` expects it."""

    registration: DemoClient
    auth_methods: tuple[str, ...] = TOKEN_AUTH_METHODS
    client_metadata: dict[str, str] = field(default_factory=dict)
    scopes: tuple[str, ...] = SUPPORTED_SCOPES
    secret_check: SecretCheck | None = field(default=None, compare=False)

    @property
    def client_id(self) -> str:
        return self.registration.client_id

    def get_client_id(self) -> str:
        return self.registration.client_id

    def get_default_redirect_uri(self) -> str | None:
        return None  # OIDC Core 1.0 §3.1.2.1: redirect_uri is required, never defaulted

    def get_allowed_scope(self, scope: str | None) -> str:
        return " ".join(s for s in (scope or "").split() if s in self.scopes)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.registration.redirect_uris  # exact match, RFC 6749 §3.1.2.3

    def check_client_secret(self, client_secret: str) -> bool:
        if self.secret_check is not None:
            return self.secret_check(self.client_id, client_secret)
        return hmac.compare_digest(client_secret.encode(), self.registration.client_secret.encode())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint == "token" and method in self.auth_methods

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass(frozen=True)
class AuthorizationCode:
    """An issued code, bound to client, redirect URI, PKCE challenge and nonce."""

    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: DemoUser
    nonce: str | None
    auth_time: int
    acr: str | None
    amr: tuple[str, ...]
    code_challenge: str | None
    code_challenge_method: str | None
    expires_at: float

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> str | None:
        return self.acr

    def get_amr(self) -> list[str] | None:
        return list(self.amr) or None


@dataclass(frozen=True)
class AccessToken:
    """An issued bearer token as authlib's ``TokenMixin`` expects it."""

    access_token: str
    client: Client
    user: DemoUser
    scope: str
    issued_at: float
    expires_in: int

    def get_client(self) -> Client:
        return self.client

    def get_user(self) -> DemoUser:
        return self.user

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return self.expires_in

    def check_client(self, client: Client) -> bool:
        return client.client_id == self.client.client_id

    def is_expired(self) -> bool:
        return time.time() >= self.issued_at + self.expires_in

    def is_revoked(self) -> bool:
        return False


class DemoStore:
    """Clients and users from the settings; codes, tokens and seen nonces in memory behind one lock."""

    def __init__(self, settings: DemoProviderSettings, secret_check: SecretCheck | None = None) -> None:
        self._lock = threading.Lock()
        scopes = APPLE_SCOPES if settings.apple is not None else SUPPORTED_SCOPES
        self._clients = {c.client_id: Client(c, settings.client_auth_methods, scopes=scopes, secret_check=secret_check)
                         for c in settings.clients}
        self._users = {u.username: u for u in settings.users}
        self._codes: dict[str, AuthorizationCode] = {}
        self._tokens: dict[str, AccessToken] = {}
        self._nonces: set[tuple[str, str]] = set()

    def client(self, client_id: str) -> Client | None:
        return self._clients.get(client_id)

    def user(self, username: str) -> DemoUser | None:
        return self._users.get(username)

    def replace_user(self, user: DemoUser) -> None:
        """From now on ``user.username`` is ``user``: the person's details changed at the provider (a new e-mail
        address), as the next sign-in asserts them."""
        with self._lock:
            self._users[user.username] = user

    def authenticate(self, username: str, password: str) -> DemoUser | None:
        user = self._users.get(username)
        expected = user.password if user else "\0never\0"
        matches = hmac.compare_digest(password.encode(), expected.encode())
        return user if user and matches else None

    def save_code(self, code: AuthorizationCode) -> None:
        with self._lock:
            self._codes[code.code] = code
            if code.nonce:
                self._nonces.add((code.client_id, code.nonce))

    def take_code(self, code: str, client_id: str) -> AuthorizationCode | None:
        """Remove and return the code: a code is usable once, even when the exchange then fails (RFC 6749 §4.1.2)."""
        with self._lock:
            found = self._codes.pop(code, None)
        if found is None or found.client_id != client_id or time.time() >= found.expires_at:
            return None
        return found

    def nonce_seen(self, client_id: str, nonce: str) -> bool:
        with self._lock:
            return (client_id, nonce) in self._nonces

    def save_token(self, token: AccessToken) -> None:
        with self._lock:
            self._tokens[token.access_token] = token

    def token(self, access_token: str) -> AccessToken | None:
        with self._lock:
            return self._tokens.get(access_token)
