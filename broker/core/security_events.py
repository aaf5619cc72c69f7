"""Security events the broker pushes to apps (issue 18): OpenID Shared Signals Framework 1.0 (SSF) with the CAEP
and RISC event types, as Security Event Tokens (RFC 8417) pushed (RFC 8935) to the streams apps configure.

A journey says what happened to an account (``SecurityEvents.emit``); the adapter (``broker.downstream.ssf``)
finds the streams of the apps that know that account and want that event, makes one signed SET per stream with the
app's own (pairwise) subject for the account, and puts each in the outbox (``core.outbox``), which the delivery
worker sends. Nothing is sent from the request itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Protocol


class SecurityEvent(StrEnum):
    """The event types the broker emits (their URIs are the SET ``events`` members)."""

    #: CAEP 1.0 §3.1: a session of the subject was revoked (signed out, ended by the operator)
    SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
    #: CAEP 1.0 §3.3: a credential of the subject was created, changed or revoked (a second factor)
    CREDENTIAL_CHANGE = "https://schemas.openid.net/secevent/caep/event-type/credential-change"
    #: RISC 1.0 §2.2: the account was deleted
    ACCOUNT_PURGED = "https://schemas.openid.net/secevent/risc/event-type/account-purged"
    #: RISC 1.0 §2.3: the account was disabled (``reason`` ``hijacking`` or ``bulk-account`` when the operator
    #: gave one of those)
    ACCOUNT_DISABLED = "https://schemas.openid.net/secevent/risc/event-type/account-disabled"
    #: RISC 1.0 §2.4: the account was enabled again
    ACCOUNT_ENABLED = "https://schemas.openid.net/secevent/risc/event-type/account-enabled"
    #: RISC 1.0 §2.5: the subject's identifier (its e-mail address) changed; sent without ``new-value``
    IDENTIFIER_CHANGED = "https://schemas.openid.net/secevent/risc/event-type/identifier-changed"


class SecurityEvents(Protocol):
    """The SSF transmitter, as the journeys see it."""

    def emit(self, event: SecurityEvent, account_id: str, now: datetime,
             details: Mapping[str, str] | None = None) -> int:
        """Queue ``event`` about ``account_id`` for every enabled stream whose app knows the account and asked
        for that event type, and hold it for every such paused stream (SSF 1.0 §8.1.2); ``details`` are the
        event's own members (CAEP ``change_type``, ``credential_type``; RISC ``new-value``...). How many SETs were
        queued, held ones included. Call it while the account still exists (an erasure: before it), since the
        subjects are derived from it."""
        ...
