"""How claims become text and back; ``broker.storage.sealing`` then encrypts that text before it is stored."""

from __future__ import annotations

import json
from collections.abc import Mapping

from broker.core.claims import ClaimValue


def encode_claims(claims: Mapping[str, ClaimValue]) -> str:
    """Claims (vocabulary name -> value) as stored text."""
    return json.dumps({name: _plain(value) for name, value in claims.items()}, sort_keys=True)


def decode_claims(text: str) -> dict[str, ClaimValue]:
    """Stored text back to claims; values of an unexpected shape are dropped, never guessed."""
    raw = json.loads(text) if text else {}
    if not isinstance(raw, dict):
        return {}
    claims: dict[str, ClaimValue] = {}
    for name, value in raw.items():
        decoded = _claim_value(value)
        if isinstance(name, str) and decoded is not None:
            claims[name] = decoded
    return claims


def _plain(value: ClaimValue) -> str | bool | int | dict[str, str] | list[str]:
    if isinstance(value, tuple):
        return list(value)
    return dict(value) if isinstance(value, Mapping) else value


def _claim_value(value: object) -> ClaimValue | None:
    if isinstance(value, str | bool | int):
        return value
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)  # a multi-valued claim (groups)
    if isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        return {str(k): str(v) for k, v in value.items()}
    return None
