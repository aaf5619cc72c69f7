"""Sign in with Apple: the ``apple`` preset and the quirks that make Apple work, and stay safe, with the broker.

Apple speaks OpenID Connect with a few departures, each handled in ``AppleQuirks`` and cited from Apple's
developer documentation (developer.apple.com/documentation/signinwithapple, pages named in quotes):

- No static client secret: the secret is a JWT the broker signs with the team's ES256 key ("Creating a client
  secret"; "Generate and validate tokens"), at the token endpoint with ``client_secret_post`` only.
- ``response_mode=form_post`` whenever a scope is requested ("Request an authorization to the Sign in with Apple
  server"), so the answer comes as a cross-site POST (the broker's callback bounces it same-site).
- The person's name comes once, on the first authorization, in an unsigned ``user`` form field, never in the
  ID token ("Incorporating Sign in with Apple into other platforms").
- ``email_verified`` and ``is_private_email`` are booleans or the strings "true"/"false"; a private relay
  address is unique to the team and must never be matched to another account ("Authenticating users with Sign
  in with Apple"; "Communicating using the private email relay service").
- No UserInfo endpoint: everything is in the ID token (the adapter skips UserInfo when discovery has none).
"""

from __future__ import annotations

import json
import re
import threading
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwt
from joserfc.jwk import ECKey

from broker.core.email_relay import is_relay_address
from broker.core.model import EmailTrust
from broker.upstream.preset_base import OidcPreset, OptionValue, Registration
from broker.upstream.quirks import StandardQuirks

__all__ = ["APPLE", "AppleQuirks", "build_apple_quirks", "parse_user_field"]

ISSUER = "https://appleid.apple.com"
#: "Creating a client secret": the client secret's ``aud`` is always this, whatever issuer URL is configured
JWT_AUDIENCE = "https://appleid.apple.com"
#: "Creating a client secret": ``exp`` may be at most 15777000 seconds (six months) after ``iat``
MAX_SECRET_LIFETIME = timedelta(seconds=15777000)
DEFAULT_SECRET_LIFETIME = timedelta(days=30)
DEFAULT_RENEW_BEFORE = timedelta(days=7)
#: ``iat`` is set this far back so a provider clock slightly behind ours never sees a secret from the future
SECRET_BACKDATE = timedelta(seconds=60)
#: Team ID and Key ID are both 10-character identifiers ("Creating a client secret")
_APPLE_ID_RE = re.compile(r"^[A-Z0-9]{10}$")
#: the ``user`` field is a small JSON object; anything larger is not Apple's and is ignored unread
MAX_USER_FIELD = 4096
MAX_NAME_LENGTH = 256
#: what the ``user`` field can give: the name, never an identifier, an address or a flag
NAME_CLAIMS = frozenset({"given_name", "family_name", "name"})

OPTIONS_HELP: Mapping[str, str] = MappingProxyType({
    "team_id": "required: your 10-character Apple Developer Team ID (the client secret's iss)",
    "key_id": "required: the 10-character Key ID of your Sign in with Apple private key (the client secret's kid)",
    "private_key_file": "required: the .p8 private key file (PKCS#8 PEM, EC P-256) from Apple; an absolute "
                        "path, or relative to the instance folder (like client_secret_file)",
})


@dataclass(frozen=True)
class _Issued:
    token: str
    issued_at: datetime
    expires_at: datetime


class AppleQuirks(StandardQuirks):
    """Sign in with Apple's departures from OpenID Connect. Thread-safe; one per upstream registration."""

    def __init__(self, *, team_id: str, key_id: str, client_id: str, private_key: ec.EllipticCurvePrivateKey,
                 lifetime: timedelta = DEFAULT_SECRET_LIFETIME, renew_before: timedelta = DEFAULT_RENEW_BEFORE) -> None:
        if not isinstance(private_key, ec.EllipticCurvePrivateKey) or not isinstance(private_key.curve, ec.SECP256R1):
            raise ValueError("the Apple private key must be an EC P-256 key (ES256, RFC 7518 §3.4)")
        if not timedelta(0) < lifetime <= MAX_SECRET_LIFETIME:
            raise ValueError(f"the client secret lifetime must be positive and at most {MAX_SECRET_LIFETIME}")
        if not timedelta(0) <= renew_before < lifetime:
            raise ValueError("renew_before must be at least 0 and shorter than the client secret lifetime")
        self.team_id, self.key_id, self.client_id = team_id, key_id, client_id
        self.lifetime, self.renew_before = lifetime, renew_before
        self._key = ECKey.import_key(private_key)
        self._lock = threading.Lock()
        self._issued: _Issued | None = None

    def authorization_params(self) -> Mapping[str, str]:
        """"Request an authorization to the Sign in with Apple server": with any scope requested,
        ``response_mode`` must be ``form_post`` (quirks win over the registration's own parameters)."""
        return {"response_mode": "form_post"}

    def client_secret(self, configured: str, now: datetime) -> str:
        """The ES256 JWT Apple takes as ``client_secret`` ("Creating a client secret"): header ``alg`` ES256 and
        ``kid`` the Key ID; claims ``iss`` the Team ID, ``iat``, ``exp``, ``aud`` https://appleid.apple.com and
        ``sub`` the client id (Services ID).

        ``configured`` (the registration's client secret, usually absent: the preset has ``own_client_secret``)
        is ignored: Apple has no static secret, and a long-lived one must never be sent in place of a signed,
        expiring one. Apple accepts a lifetime of at most six months; one of ``lifetime`` (30 days) is issued,
        kept, and replaced once less than ``renew_before`` (7 days) is left, or when ``now`` is before its
        ``iat`` (the clock went back).
        """
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        with self._lock:
            issued = self._issued
            if issued is None or not issued.issued_at <= now < issued.expires_at - self.renew_before:
                issued = self._issue(now)
                self._issued = issued
            return issued.token

    def _issue(self, now: datetime) -> _Issued:
        issued_at = datetime.fromtimestamp(int((now - SECRET_BACKDATE).timestamp()), now.tzinfo)
        expires_at = issued_at + self.lifetime
        claims = {"iss": self.team_id, "iat": int(issued_at.timestamp()), "exp": int(expires_at.timestamp()),
                  "aud": JWT_AUDIENCE, "sub": self.client_id}
        token = jwt.encode({"alg": "ES256", "kid": self.key_id}, claims, self._key, algorithms=["ES256"])
        return _Issued(token, issued_at, expires_at)

    def profile(self, id_claims: Mapping[str, Any], userinfo: Mapping[str, Any],
                params: Mapping[str, str]) -> dict[str, Any]:
        """The ID token's claims, plus the name from the ``user`` form field of a first authorization.

        The ``user`` field travels through the browser unsigned, so it only adds the names the person states
        about themself (``given_name``, ``family_name``, ``name``) and only where the ID token has none: its
        ``email`` is never read (the ID token's is the verified one), nor can it set ``sub`` or any flag.
        """
        merged = {**userinfo, **id_claims}
        for claim, value in parse_user_field(params.get("user")).items():
            merged.setdefault(claim, value)
        return merged

    def sent_once(self) -> frozenset[str]:
        """The name comes only with the first authorization ("Incorporating Sign in with Apple into other
        platforms": the ``user`` field is sent once): later logins that lack it keep the stored name."""
        return NAME_CLAIMS

    def email_trust(self, raw: Mapping[str, Any]) -> EmailTrust:
        """A private relay address (``is_private_email`` true, or an address at privaterelay.appleid.com) is
        ``PRIVATE_RELAY``, unique to this team and never matched to another account; otherwise the address is
        ``VERIFIED`` only when ``email_verified`` is true (boolean or string, OIDC Core 1.0 §5.1). An
        ``is_private_email`` that is neither says nothing trustworthy: ``UNVERIFIED``."""
        email = raw.get("email")
        if not isinstance(email, str) or not email:
            return EmailTrust.UNVERIFIED
        private = apple_flag(raw.get("is_private_email"))
        if private is True or is_private_relay(email):
            return EmailTrust.PRIVATE_RELAY
        if private is None and raw.get("is_private_email") is not None:
            return EmailTrust.UNVERIFIED
        return EmailTrust.VERIFIED if apple_flag(raw.get("email_verified")) is True else EmailTrust.UNVERIFIED


def apple_flag(value: object) -> bool | None:
    """A boolean claim as Apple sends it, ``true`` or ``"true"``; ``None`` when it is neither kind."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def is_private_relay(email: str) -> bool:
    """An address at privaterelay.appleid.com (``core.email_relay``, which knows the relay domains)."""
    return is_relay_address(email)


def parse_user_field(raw: str | None) -> dict[str, str]:
    """``given_name``/``family_name``/``name`` from Apple's ``user`` field (JSON ``{"name": {"firstName": ...,
    "lastName": ...}, "email": ...}``); whatever is malformed is left out, and an unreadable field gives nothing:
    a broken name must never fail a login."""
    if not isinstance(raw, str) or not raw or len(raw) > MAX_USER_FIELD:
        return {}
    try:
        user = json.loads(raw)
    except (ValueError, RecursionError):
        return {}
    name = user.get("name") if isinstance(user, dict) else None
    if not isinstance(name, dict):
        return {}
    found = {claim: text for claim, key in (("given_name", "firstName"), ("family_name", "lastName"))
             if (text := _name_part(name.get(key))) is not None}
    if found:
        found["name"] = " ".join(found[c] for c in ("given_name", "family_name") if c in found)
    return found


def _name_part(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or len(text) > MAX_NAME_LENGTH or any(unicodedata.category(c).startswith("C") for c in text):
        return None  # empty, absurdly long, or with control/format characters: not a name to show anyone
    return text


def load_private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """The team's key from its .p8 file (unencrypted PKCS#8 PEM); ``ValueError`` says what is wrong."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read private_key_file {path.absolute()}: {exc.strerror or exc}") from exc
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ValueError(f"private_key_file {path.absolute()} is not an unencrypted PEM private key "
                         "(Apple's .p8 file)") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError(f"private_key_file {path.absolute()} is not an EC P-256 key (Apple signs with ES256)")
    return key


def build_apple_quirks(options: Mapping[str, OptionValue], registration: Registration) -> AppleQuirks:
    """``AppleQuirks`` from the registration's ``options``; ``ValueError`` names what is missing or wrong.

    ``private_key_file`` arrives absolute: the registry resolves a relative one against the instance folder.
    """
    where = f"upstream {registration.name!r} (preset apple)"
    unknown = sorted(set(options) - set(OPTIONS_HELP))
    if unknown:
        raise ValueError(f"{where}: unknown options {unknown}; known: {', '.join(OPTIONS_HELP)}")
    missing = [key for key in OPTIONS_HELP if not options.get(key)]
    if missing:
        raise ValueError(f"{where}: missing options: {', '.join(missing)} (`broker upstream presets` says what "
                         "each is)")
    values: dict[str, str] = {}
    for key in OPTIONS_HELP:
        value = options[key]
        if not isinstance(value, str):
            raise ValueError(f"{where}: options.{key} must be text, not a list")
        values[key] = value
    for option in ("team_id", "key_id"):
        if not _APPLE_ID_RE.match(values[option]):
            raise ValueError(f"{where}: options.{option} {values[option]!r:.40} is not a 10-character Apple identifier "
                             "(capital letters and digits)")
    try:
        private_key = load_private_key(Path(values["private_key_file"]))
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    return AppleQuirks(team_id=values["team_id"], key_id=values["key_id"], client_id=registration.client_id,
                       private_key=private_key)


APPLE = OidcPreset(
    name="apple",
    display_name="Apple",
    issuer=ISSUER,  # exactly as in its discovery document
    scopes=("openid", "name", "email"),
    allowed_algs=("RS256",),
    build_quirks=build_apple_quirks,
    options_help=OPTIONS_HELP,
    own_client_secret=True,  # the registration needs no client secret: AppleQuirks.client_secret signs one
)
