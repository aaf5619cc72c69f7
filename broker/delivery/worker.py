"""The delivery worker: one pass over the due messages (``deliver_due``) and the loop that repeats it
(``run_worker``; ``broker worker``). Issue 18.

A pass claims up to ``BATCH`` due messages for ``LEASE`` (``Outbox.claim``: another worker never gets them
meanwhile), POSTs each once and records the outcome: delivered, to retry at back-off (``schedule``), or dead
(refused with a 4xx, or ``MAX_ATTEMPTS`` reached). ``LEASE`` exceeds a whole batch of the slowest POSTs
(``BATCH * http.MAX_SECONDS``), so a lease never ends while its worker is still sending; a worker that dies
leaves its batch to be claimed again when the lease ends (the receiver may then see a message twice, and
de-duplicates by ``jti``).

Logs name the receiver, the kind, the ``jti``, the status and the outcome of each attempt; never the body (a
signed token) nor the URL. The loop runs until ``stop`` is set (``broker worker`` sets it on SIGTERM and SIGINT),
sleeping at most ``POLL_SECONDS`` between passes (``Event.wait``: a stop ends the sleep at once), and goes on
after a database outage (logged) instead of exiting. Every few minutes a pass also rolls the audit trail up into
the analytics aggregates (``broker.analytics.rollup.PeriodicRollup``: bounded in time, never stops delivery).
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError

from broker.analytics.rollup import PeriodicRollup
from broker.config.settings import Settings
from broker.core.model import utcnow
from broker.core.outbox import Outbox, QueuedMessage
from broker.delivery.http import HttpPost, Unreachable, Verdict, requests_post, verdict
from broker.delivery.schedule import MAX_ATTEMPTS, retry_at
from broker.storage import SqlOutbox, create_engine_for
from broker.storage.migrate import current_revision, head_revision
from broker.storage.sealing import Sealer

log = logging.getLogger(__name__)

#: messages claimed per pass
BATCH = 10
#: how long a claimed batch is held by its worker
LEASE = timedelta(minutes=5)
#: seconds between passes that found less than a full batch
POLL_SECONDS = 5.0


class WorkerError(RuntimeError):
    """The worker cannot start (e.g. the database is not at the current schema)."""


@dataclass(frozen=True)
class PassReport:
    """What one or more passes did."""

    claimed: int = 0
    delivered: int = 0
    retried: int = 0
    dead: int = 0
    purged: int = 0

    def __add__(self, other: PassReport) -> PassReport:
        return PassReport(*(a + b for a, b in zip(self.counts(), other.counts(), strict=True)))

    def counts(self) -> tuple[int, int, int, int, int]:
        return self.claimed, self.delivered, self.retried, self.dead, self.purged


def deliver_due(outbox: Outbox, http_post: HttpPost, now: datetime, *, batch: int = BATCH,
                lease: timedelta = LEASE, rand: Callable[[], float] = random.random,
                max_attempts: int = MAX_ATTEMPTS) -> PassReport:
    """One pass: claim up to ``batch`` messages due at ``now`` and send each once (module docstring)."""
    claimed = outbox.claim(now, batch, lease)
    report = PassReport(claimed=len(claimed))
    for queued in claimed:
        outcome = _send(outbox, http_post, queued, now, rand, max_attempts)
        report = replace(report, **{outcome: getattr(report, outcome) + 1})
    return report


def _send(outbox: Outbox, http_post: HttpPost, queued: QueuedMessage, now: datetime,
          rand: Callable[[], float], max_attempts: int) -> str:
    """Send ``queued`` and record the outcome; which ``PassReport`` count it adds to."""
    message, status = queued.message, None
    try:
        status = http_post(message.url, message.body, message.content_type, message.authorization)
    except Unreachable as exc:
        error = str(exc)
    except Exception as exc:  # a bug must not stop the batch; the type only: the message may quote the URL
        log.error("outbox: sending %s jti=%s to %s failed: %s", message.kind, message.jti, message.receiver,
                  type(exc).__name__)
        error = f"internal error ({type(exc).__name__})"
    if status is not None:
        kind = verdict(status)
        if kind is Verdict.DELIVERED:
            outbox.delivered(queued.message_id, now)
            _log(logging.INFO, queued, status, "delivered", "delivered")
            return "delivered"
        if kind is Verdict.REFUSED:
            outbox.failed(queued.message_id, now, f"HTTP {status}: refused by the receiver", None)
            _log(logging.WARNING, queued, status, "dead", "refused by the receiver: dead letter")
            return "dead"
        error = f"HTTP {status}"
    again = retry_at(queued.attempts, now, rand, max_attempts)
    outbox.failed(queued.message_id, now, error, again)
    if again is None:
        _log(logging.WARNING, queued, status, "dead", f"{error}; dead letter after {queued.attempts} attempts")
        return "dead"
    _log(logging.INFO, queued, status, "retried", f"{error}; attempt {queued.attempts}, next at {again.isoformat()}")
    return "retried"


def _log(level: int, queued: QueuedMessage, status: int | None, outcome: str, detail: str) -> None:
    """One line per attempt; ``outcome``: delivered, retried or dead (a JSON line's ``outcome``)."""
    message = queued.message
    extra: dict[str, object] = {"downstream": message.receiver, "outcome": outcome}
    if status is not None:
        extra["status"] = status
    log.log(level, "outbox: %s jti=%s to %s: %s", message.kind, message.jti, message.receiver, detail, extra=extra)


def run_worker(settings: Settings, stop: threading.Event, *, once: bool = False, http_post: HttpPost | None = None,
               clock: Callable[[], datetime] = utcnow, poll_seconds: float = POLL_SECONDS,
               max_passes: int | None = None) -> PassReport:
    """Deliver until ``stop`` is set (or one pass with ``once``, or ``max_passes``); the totals.

    The worker's own engine, from ``settings.database_url``: it shares nothing in memory with the web workers.
    With ``once`` a database error propagates; in the loop it is logged and the next pass tries again."""
    if current_revision(settings.database_url) != head_revision():
        raise WorkerError("the database is not at the current schema: run 'broker migrate' first")
    engine = create_engine_for(settings.database_url)
    outbox, post = SqlOutbox(engine, sealer=Sealer(settings.claims_keys)), http_post or requests_post()
    total, passes, analytics = PassReport(), 0, PeriodicRollup()
    try:
        while not stop.is_set() and (max_passes is None or passes < max_passes):
            passes += 1
            try:
                now = clock()
                report = deliver_due(outbox, post, now)
                report = replace(report, purged=outbox.purge_delivered(now))
                analytics.run_if_due(engine, now)
            except SQLAlchemyError as exc:
                if once:
                    raise
                log.warning("outbox: database unavailable (%s); next pass in %g s", type(exc).__name__,
                            poll_seconds)
                report = PassReport()
            total += report
            if once:
                break
            if report.claimed < BATCH:  # a full batch: more may be due, go on at once
                stop.wait(poll_seconds)
    finally:
        engine.dispose()
    return total
