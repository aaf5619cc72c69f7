"""Audit records for the analytics tests, written through the real audit log (``SqlAuditLog``) at times relative
to now, so that no test depends on the day it runs.

``STORY`` is a small city's week, told in the order the broker would record it (the report's range is the last
``RANGE_DAYS`` days, today included): the figures each test expects are worked out in the test from this story.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine

from broker.core.audit import AuditEvent, AuditKind
from broker.storage import SqlAuditLog

RANGE_DAYS = 7


@dataclass(frozen=True)
class Told:
    """One audit record of the story: ``days_ago`` before now."""

    days_ago: int
    kind: AuditKind
    account: str | None = None
    upstream: str | None = None
    downstream: str | None = None
    reason: str | None = None


K = AuditKind
STORY: tuple[Told, ...] = (
    Told(30, K.LOGIN_SUCCEEDED, "dormant", "google", "app-c", "upstream; 1000 ms"),
    Told(20, K.LOGIN_SUCCEEDED, "old", "google", "app-a", "upstream"),
    Told(20, K.AUTHENTICATOR_ADDED, "old", reason="totp t-old"),
    Told(20, K.AUTHENTICATOR_ADDED, "old", reason="recovery-code: first set"),
    Told(10, K.LOGIN_FAILED, downstream="app-a", reason="UnknownParty"),
    Told(4, K.LOGIN_FAILED, downstream="app-a", reason="LoginStateInvalid"),
    Told(4, K.LOGIN_FAILED, downstream="app-b", reason="LoginStateInvalid"),
    Told(3, K.LOGIN_SUCCEEDED, "old", "google", "app-a", "upstream; 2400 ms"),
    Told(3, K.LOGIN_SUCCEEDED, "old", "google", "app-b", "sso; 3 ms"),
    Told(2, K.LOGIN_SUCCEEDED, "new1", "city", "app-a", "upstream; 6100 ms"),
    Told(2, K.CONSENT_DECLINED, "new1", downstream="app-b", reason="declined: email name"),
    Told(2, K.ACCOUNT_DELETED, "undone", "passkey", reason="passkey sign-up undone: the passkey could not be stored"),
    Told(2, K.ACCOUNT_CREATED, "new2", "passkey", reason="passkey sign-up"),
    Told(2, K.AUTHENTICATOR_ADDED, "new2", reason="passkey p-2; sign-up"),
    Told(2, K.LOGIN_SUCCEEDED, "new2", "passkey", "broker-portal", "upstream; 900 ms"),
    Told(1, K.LINKED, "old", "city", reason="link offer proven with google and confirmed"),
    Told(1, K.SECOND_FACTOR, "old", "city", "app-a", "verified: totp"),
    Told(1, K.LOGIN_SUCCEEDED, "old", "city", "app-a", "step-up; 14000 ms"),
    Told(1, K.ACCOUNT_DELETED, "new2", reason="portal"),
    Told(0, K.SECOND_FACTOR, "new3", "google", "app-c", "wrong code (1 of 5)"),
    Told(0, K.SECOND_FACTOR, "new3", downstream="app-c", reason="locked: too many wrong answers for this account, "
                                                                  "try again in 2 minutes"),
    Told(0, K.LOGIN_SUCCEEDED, "new3", "google", "app-c", "upstream"),
    Told(0, K.LOGIN_FAILED, downstream="app-b", reason="ConsentDeclined"),
    Told(0, K.AUTHENTICATOR_ADDED, "new3", reason="totp t-3"),
    Told(0, K.AUTHENTICATOR_REMOVED, "new3", reason="totp t-3"),
    Told(0, K.CONSENT_GIVEN, "new1", downstream="app-a", reason="page; declined: name"),  # not a sign-in
)


def now_utc() -> datetime:
    return datetime.now(UTC)


def tell(engine: Engine, now: datetime, story: tuple[Told, ...] = STORY, chains: tuple[int, ...] = (1,)) -> None:
    """Write ``story`` through the audit log, round the audit ``chains`` in turn; records of one day keep their
    order, a second apart, and stay on their day whatever the time of day."""
    logs = [SqlAuditLog(engine, chain) for chain in chains]
    for n, told in enumerate(story):
        log = logs[n % len(logs)]
        at = now - timedelta(days=told.days_ago) - timedelta(seconds=len(story) - n)
        at = max(at, (now - timedelta(days=told.days_ago)).replace(hour=0, minute=0, second=0, microsecond=0))
        log.record(AuditEvent(told.kind, at, account_id=told.account, upstream=told.upstream,
                              downstream=told.downstream, reason=told.reason))


def report_range(now: datetime) -> tuple[date, date]:
    """The last ``RANGE_DAYS`` days, today included."""
    return now.date() - timedelta(days=RANGE_DAYS - 1), now.date()


def day(now: datetime, days_ago: int) -> date:
    return now.date() - timedelta(days=days_ago)
