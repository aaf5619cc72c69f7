"""When to try a failed delivery again, and when to stop (issue 18).

Exponential back-off with jitter: the n-th failed attempt waits ``FIRST_DELAY * 2**(n-1)``, at most ``MAX_DELAY``,
less a random part of up to ``JITTER`` of it, so that messages queued together for a receiver that was down do not
all return at the same second. 30 s, 1 min, 2 min, 4 min ... 1 h, 1 h: after ``MAX_ATTEMPTS`` (12: about 5½ hours)
the message is a dead letter for the operator (``broker outbox list --state dead``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta

FIRST_DELAY = timedelta(seconds=30)
MAX_DELAY = timedelta(hours=1)
MAX_ATTEMPTS = 12
#: the largest share of a delay the jitter takes off
JITTER = 0.2


def retry_delay(attempts: int, rand: Callable[[], float] = random.random) -> timedelta:
    """How long to wait after the ``attempts``-th failed attempt (1 for the first); ``rand`` gives [0, 1)."""
    if attempts < 1:
        raise ValueError("attempts counts from 1")
    nominal = min(MAX_DELAY, FIRST_DELAY * (1 << min(attempts - 1, 32)))
    return nominal * (1 - JITTER * rand())


def retry_at(attempts: int, now: datetime, rand: Callable[[], float] = random.random,
             max_attempts: int = MAX_ATTEMPTS) -> datetime | None:
    """When to try again after the ``attempts``-th attempt failed at ``now``; None: give up (dead letter)."""
    if attempts >= max_attempts:
        return None
    return now + retry_delay(attempts, rand)
