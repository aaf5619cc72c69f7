"""Security Event Tokens as the broker's SSF transmitter makes them (RFC 8417, profiled by SSF 1.0 §4).

- Header: ``typ: secevent+jwt`` (RFC 8417 §2.3, SSF 1.0 §4.1.1: explicit typing, so a SET is never taken for an
  ID token or an access token), signed with the broker's active key of the algorithm the receiving client
  registered for its ID tokens (``id_token.sign_for``); the keys are the ones published at ``jwks_uri``.
- Claims (RFC 8417 §2.2): ``iss`` (the broker's issuer, as in its ID tokens), ``iat``, a fresh ``jti``, ``aud`` (the
  stream's client), ``sub_id`` (SSF 1.0 §3, RFC 9493): for an account the ``iss_sub`` format with the very ``sub``
  the client's ID tokens carry (pairwise per sector, ``id_token.subject``), for the verification event the
  ``opaque`` stream id (§8.1.4.1); ``events`` with exactly one member (SSF 1.0 §4.1.8). No ``sub`` claim and no
  ``exp`` (SSF 1.0 §4.1.2, §4.1.7): a SET is a statement that something happened, not a credential.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from broker.downstream.oidc.id_token import sign_for
from broker.keys.keyring import KeyRing
from broker.oidc.client import OidcClient

#: RFC 8417 §2.3: the JOSE ``typ`` of a SET
SET_TYPE = "secevent+jwt"
#: RFC 8935 §2: the media type of the pushed request body
SET_CONTENT_TYPE = "application/secevent+jwt"
#: SSF 1.0 §8.1.1 / RFC 8935: the push delivery method
PUSH = "urn:ietf:rfc:8935"
#: SSF 1.0 §8.1.4.1: the verification event
VERIFICATION = "https://schemas.openid.net/secevent/ssf/event-type/verification"
#: ``OutgoingMessage.kind`` of a SET
KIND = "ssf-event"


def new_jti() -> str:
    """A SET's ``jti`` (RFC 8417 §2.2): 192 random bits, so receivers can de-duplicate and spot replays."""
    return secrets.token_urlsafe(24)


def account_subject(issuer: str, sub: str) -> dict[str, str]:
    """RFC 9493 §3.2.5 ``iss_sub``: the subject as the client knows it from its ID tokens."""
    return {"format": "iss_sub", "iss": issuer, "sub": sub}


def stream_subject(stream_id: str) -> dict[str, str]:
    """SSF 1.0 §8.1.4.1: a verification event names the stream as an ``opaque`` subject."""
    return {"format": "opaque", "id": stream_id}


def set_claims(issuer: str, audience: str, jti: str, now: datetime, sub_id: Mapping[str, str],
               event: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The claims of one SET about one event (module docstring)."""
    return {
        "iss": issuer,
        "iat": int(now.timestamp()),
        "jti": jti,
        "aud": audience,
        "sub_id": dict(sub_id),
        "events": {event: dict(payload)},
    }


def event_payload(details: Mapping[str, str] | None, now: datetime) -> dict[str, Any]:
    """The event's own members (CAEP ``change_type``, RISC ``new-value``...) and ``event_timestamp`` (CAEP 1.0 §2:
    when it happened, seconds since the epoch), which the caller cannot override."""
    return {**(details or {}), "event_timestamp": int(now.timestamp())}


def signed_set(keys: KeyRing, client: OidcClient, claims: Mapping[str, Any]) -> str:
    """``claims`` as a compact JWS for ``client``, with the SET type."""
    return sign_for(keys, client, claims, typ=SET_TYPE)
