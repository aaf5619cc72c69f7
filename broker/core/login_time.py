"""How long a login took, as its ``login-succeeded`` audit record says (issue 19: p50/p95 login time).

A login's clock starts when the broker first reads the app's request (``LoginRequest.started_at``, set by
``broker.journeys.login.begin``) and stops when the app's answer is sent: the discovery page, the upstream's
sign-in, a second factor, the consent page, all the citizen waited through. The record's ``reason`` keeps saying
*how* the login was answered (``sso``, ``upstream``, ``consent``, ``step-up``), with the duration after it:
``upstream; 5230 ms``. Records written before the duration was kept, or of a login that did not start at an
app's request (an upstream's unsolicited answer), have none.
"""

from __future__ import annotations

import re
from datetime import datetime

#: the longest duration written; a login waits at most its pending lifetime (an hour is far beyond it)
MAX_MS = 3_600_000
_TIMED = re.compile(r"^(?P<how>[^;]*); (?P<ms>\d{1,7}) ms$")


def with_duration(how: str, started_at: datetime | None, now: datetime) -> str:
    """``how`` followed by the milliseconds since ``started_at`` (none when it is unknown)."""
    if started_at is None:
        return how
    elapsed = int((now - started_at).total_seconds() * 1000)
    return f"{how}; {min(max(elapsed, 0), MAX_MS)} ms"


def read(reason: str | None) -> tuple[str, int | None]:
    """A ``login-succeeded`` reason as (how, milliseconds or None)."""
    found = _TIMED.match(reason or "")
    if found is None:
        return reason or "", None
    return found.group("how"), int(found.group("ms"))
