"""Subject identifiers handed to downstreams.

A pairwise identifier is different for every downstream sector and cannot be correlated across them,
yet stable for one account: HMAC-SHA256(secret, sector || 0x00 || account id). It meets SAML 2.0 Core
§8.3.7 (persistent identifier: opaque, pairwise, not reused) and OIDC Core §8.1 (pairwise ``sub``).
The secret comes from configuration; losing it changes every identifier, so the broker refuses to start
without one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

MIN_SECRET_BYTES = 32
#: marks a per-client sector; no host, private-use scheme or entity id holds this character
_CLIENT_SECTOR = "\x01client "


def client_sector(client_id: str) -> str:
    """The pairwise sector of one client alone (OIDC Core §8.1), for a client whose redirect URIs name no host
    of its own: loopback (RFC 8252 §7.3), where any app on the device may listen on any port, so the host
    ``127.0.0.1`` is shared by every native app and is no sector. It never equals a host sector."""
    return _CLIENT_SECTOR + client_id


def pairwise_id(secret: bytes, sector: str, account_id: str) -> str:
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the pairwise secret must have at least {MIN_SECRET_BYTES} bytes")
    if "\x00" in sector or "\x00" in account_id:
        # 0x00 separates the two inputs, so neither may contain it: ("a\0b", "c") would equal ("a", "b\0c").
        raise ValueError("sector and account id must not contain NUL")
    mac = hmac.new(secret, sector.encode() + b"\x00" + account_id.encode(), hashlib.sha256).digest()
    return base64.b32encode(mac).decode("ascii").rstrip("=").lower()
