"""Pending login state at rest: the handle stored as a hash, the payload sealed (issue 15, point 2).

What a login in progress keeps server-side (a pending login, an upstream authorization, a link offer with the
name and e-mail address an upstream asserted) is sealed like the claims (``broker.storage.sealing``:
AES-256-GCM, NIST SP 800-38D, under the claims key ring), with associated data (SP 800-38D §5.2.1.1) naming
the kind and the stored handle, so a value copied under another handle or kind does not open.

The handle is stored as its SHA-256 (FIPS 180-4) in hex: handles the broker makes are 256 random bits, so the
hash cannot be turned back into a handle, and a copy of the database or of Redis cannot complete anyone's
login. Handles chosen elsewhere (an assertion or message ID in a replay cache) are found by their hash as well.

A stored value that does not open (changed, moved, sealed under a key no longer configured, or plain text
written before this change) is treated as absent: the login step answers "login state invalid", never a 500.
"""

from __future__ import annotations

import hashlib
import logging

from broker.core.pending_kinds import Kind
from broker.storage.sealing import VERSION, Sealer, UnreadableValue

log = logging.getLogger(__name__)


def handle_digest(handle: str) -> str:
    """How a handle is stored: SHA-256 of its UTF-8 bytes, in hex (64 characters)."""
    return hashlib.sha256(handle.encode("utf-8")).hexdigest()


class PendingSeal:
    """Seals and opens the payloads of one pending store (``where``: ``"pending_states"`` or ``"redis"``)."""

    def __init__(self, sealer: Sealer, where: str) -> None:
        self._sealer = sealer
        self._where = where

    def _context(self, kind: Kind, digest: str) -> tuple[str, ...]:
        return ("pending", self._where, kind.value, digest)

    def seal(self, kind: Kind, digest: str, payload: str) -> str:
        return self._sealer.seal(payload, self._context(kind, digest))

    def open(self, kind: Kind, digest: str, stored: str | None) -> str | None:
        """The payload, or None when there is none or it cannot be trusted. Unlike claims, no plain value is
        accepted: the broker writes pending state sealed, so a plain one is older than this (at most minutes
        old, and useless: its handle was stored in clear) or was written by someone else."""
        if stored is None:
            return None
        if not stored.startswith(VERSION + "."):
            log.warning("pending state of kind %s is not sealed: ignored", kind)
            return None
        try:
            return self._sealer.open(stored, self._context(kind, digest))
        except UnreadableValue as exc:
            log.warning("pending state of kind %s unreadable: %s", kind, exc)
            return None
