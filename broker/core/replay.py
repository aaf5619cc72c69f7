"""Messages accepted once: a sender's message ID is recorded in the shared pending store until the message
expires, so a replay is refused on every instance (RFC 7523 §3 item 7 for client assertions; SAML Profiles
§4.4.3.2 for logout messages)."""

from __future__ import annotations

import hashlib
from datetime import datetime

from broker.core.pending_kinds import Kind
from broker.core.ports import HandleInUse, PendingStore


def first_use(pending: PendingStore, sender: str, message_id: str, until: datetime, *,
              kind: Kind = Kind.CLIENT_ASSERTION, prefix: str = "jti:") -> bool:
    """Whether this is the first time ``sender`` used ``message_id`` (False: a replay). ``kind`` and ``prefix``
    name what is remembered (stored data: a SAML assertion ID is kept as ``SAML_ASSERTION`` under ``saml:``)."""
    handle = prefix + hashlib.sha256(f"{sender}\x00{message_id}".encode()).hexdigest()
    try:
        pending.put_with_handle(kind, handle, "", until)
    except HandleInUse:
        return False
    return True
