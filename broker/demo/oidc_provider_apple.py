"""What makes the demo provider answer like Sign in with Apple (``AppleStyle``), for tests of the ``apple`` preset.

Each behaviour follows Apple's developer documentation (developer.apple.com/documentation/signinwithapple,
pages named in quotes):

- the client secret is an ES256 JWT from the team's key, checked claim by claim ("Creating a client secret");
- with a name or email scope the request must ask for ``response_mode=form_post`` ("Request an authorization to
  the Sign in with Apple server"), and the answer is a page whose form posts it to the redirect URI
  (OAuth 2.0 Form Post Response Mode §2);
- the ``user`` field (JSON name and e-mail) comes with the first authorization of a client only
  ("Incorporating Sign in with Apple into other platforms");
- the ID token carries ``email``, ``email_verified``, ``is_private_email`` (strings "true"/"false" when told
  to) and never a name; a private relay address is at privaterelay.appleid.com and unique per team
  ("Authenticating users with Sign in with Apple"; "Communicating using the private email relay service").
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from typing import Any
from urllib.parse import parse_qsl

from cryptography.hazmat.primitives import serialization
from flask import Response, render_template_string
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey
from joserfc.jws import extract_compact
from werkzeug.datastructures import MultiDict

from broker.demo.oidc_provider_config import APPLE_AUDIENCE, APPLE_MAX_SECRET_LIFETIME, AppleStyle, DemoUser

RELAY_DOMAIN = "privaterelay.appleid.com"
#: scopes whose data Apple only returns through form_post
_FORM_POST_SCOPES = frozenset({"name", "email"})

FORM_POST_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>DEMO sign-in provider (not a real identity provider)</title></head>
<body onload="document.forms[0].submit()">
<p><strong>DEMO sign-in provider, Apple style: not a real identity provider.</strong></p>
<form method="post" action="{{ action }}">
{% for name, value in fields %}<input type="hidden" name="{{ name }}" value="{{ value }}">
{% endfor %}<noscript><button type="submit">Continue</button></noscript>
</form>
</body>
</html>
"""


class AppleBehaviour:
    """The Apple-style parts of one demo provider; thread-safe."""

    def __init__(self, style: AppleStyle) -> None:
        self.style = style
        self._lock = threading.Lock()
        self._authorized: set[tuple[str, str]] = set()
        self._refusals: list[str] = []
        self._keys = {kid: ECKey.import_key(key.public_bytes(serialization.Encoding.PEM,
                                                              serialization.PublicFormat.SubjectPublicKeyInfo))
                      for kid, key in style.keys.items()}

    # -- the token endpoint: the client secret ---------------------------------------------------------

    def check_client_secret(self, client_id: str, secret: str) -> bool:
        """Accept ``secret`` only as a valid client secret JWT of ``client_id``; the reason for a refusal is
        kept for ``refusals``."""
        reason = self.secret_refusal(client_id, secret, time.time())
        if reason is not None:
            with self._lock:
                self._refusals.append(reason)
        return reason is None

    def refusals(self) -> list[str]:
        """Why each refused client secret was refused, oldest first."""
        with self._lock:
            return list(self._refusals)

    def secret_refusal(self, client_id: str, secret: str, now: float) -> str | None:
        """"Creating a client secret": header ``alg`` ES256 and ``kid`` a key of the team; ``iss`` the Team ID,
        ``sub`` the client id, ``aud`` https://appleid.apple.com, ``iat`` not in the future, ``exp`` in the
        future and at most 15777000 s after ``iat``. ``None`` when all hold, else what does not."""
        try:
            header = extract_compact(secret.encode("ascii")).headers()
        except (JoseError, ValueError, TypeError, UnicodeEncodeError):
            return "not a signed JWT"
        if header.get("alg") != "ES256":
            return f"alg {header.get('alg')!r} is not ES256"
        kid = header.get("kid")
        key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            return f"kid {kid!r} is not a key of team {self.style.team_id}"
        try:
            claims: dict[str, Any] = dict(jwt.decode(secret, key, algorithms=["ES256"]).claims)
        except (JoseError, ValueError, TypeError):
            return "signature does not verify with the registered key"
        aud = claims.get("aud")
        checks = (
            (claims.get("iss") == self.style.team_id, f"iss {claims.get('iss')!r} is not the team id"),
            (claims.get("sub") == client_id, f"sub {claims.get('sub')!r} is not the client id"),
            (aud == APPLE_AUDIENCE or (isinstance(aud, list) and APPLE_AUDIENCE in aud), f"aud {aud!r} is wrong"),
        )
        failed = next((reason for ok, reason in checks if not ok), None)
        if failed is not None:
            return failed
        iat, exp = claims.get("iat"), claims.get("exp")
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (iat, exp)):
            return "iat or exp is missing or not a number"
        assert isinstance(iat, int | float) and isinstance(exp, int | float)
        if iat > now + self.style.clock_skew_seconds:
            return "iat is in the future"
        if exp <= now:
            return "expired"
        if exp - iat > APPLE_MAX_SECRET_LIFETIME:
            return f"exp is {exp - iat:.0f} s after iat, more than {APPLE_MAX_SECRET_LIFETIME}"
        return None

    # -- the authorization endpoint --------------------------------------------------------------------

    @staticmethod
    def request_problem(values: MultiDict[str, str]) -> str | None:
        """Why Apple would not accept this authorization request's response mode, or ``None``."""
        mode = values.get("response_mode", "query")
        if mode not in ("query", "form_post"):
            return f"response_mode {mode!r} is not supported"
        if mode != "form_post" and _FORM_POST_SCOPES & set(values.get("scope", "").split()):
            return "response_mode must be form_post when name or email is requested"
        return None

    def deliver(self, response: Response, user: DemoUser | None, client_id: str, scope: str) -> Response:
        """authlib's redirect back to the client, as a page that posts the same fields (Form Post Response
        Mode §2); with the ``user`` field when ``user`` authorizes this client for the first time."""
        location = response.headers.get("Location") if response.status_code == 302 else None
        if location is None:
            return response  # not an answer to the client (an error page about the request itself)
        action, _, query = location.partition("?")
        fields = parse_qsl(query, keep_blank_values=True)
        if user is not None and any(name == "code" for name, _ in fields) and self._first(user, client_id):
            requested = set(scope.split())
            if requested & _FORM_POST_SCOPES:
                fields.append(("user", json.dumps(self.user_field(user, requested))))
        page = render_template_string(FORM_POST_PAGE, action=action, fields=fields)
        return Response(page, 200, {
            "Content-Type": "text/html; charset=utf-8",
            "Cache-Control": "no-store",
            "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; frame-ancestors 'none'",
        })

    def _first(self, user: DemoUser, client_id: str) -> bool:
        with self._lock:
            first = (user.username, client_id) not in self._authorized
            self._authorized.add((user.username, client_id))
            return first

    def forget(self, username: str) -> None:
        """The person stops using Sign in with Apple with every client: the next authorization is a first."""
        with self._lock:
            self._authorized = {pair for pair in self._authorized if pair[0] != username}

    def user_field(self, user: DemoUser, requested: set[str]) -> dict[str, Any]:
        field: dict[str, Any] = {}
        if "name" in requested:
            field["name"] = {"firstName": user.claims.get("given_name", ""),
                             "lastName": user.claims.get("family_name", "")}
        if "email" in requested:
            field["email"] = self.email_of(user)[0]
        return field

    # -- the ID token ------------------------------------------------------------------------------------

    def email_of(self, user: DemoUser) -> tuple[str, bool]:
        """(the address this team sees, whether it is a private relay address)."""
        if user.username in self.style.private_relay:
            digest = hashlib.sha256(f"{self.style.team_id}/{user.claims['sub']}".encode()).hexdigest()
            return f"{digest[:12]}@{RELAY_DOMAIN}", True
        return str(user.claims.get("email", "")), False

    def id_token_claims(self, user: DemoUser, scope: str) -> dict[str, Any]:
        """The person's claims in Apple's ID token: never a name (that comes only in the ``user`` field)."""
        claims: dict[str, Any] = {"sub": user.claims["sub"], "nonce_supported": True, "real_user_status": 2}
        if "email" in scope.split():
            email, private = self.email_of(user)
            verified = private or user.claims.get("email_verified") is True
            claims |= {"email": email, "email_verified": self._flag(verified), "is_private_email": self._flag(private)}
        return claims

    def _flag(self, value: bool) -> bool | str:
        if self.style.string_booleans:
            return "true" if value else "false"
        return value

