"""Bounded, aggregated audit records of events anyone can cause without credentials (issue 15, point 4).

A failed client authentication with a made-up ``client_id`` (RFC 6749 §5.2 ``invalid_client``) or a refusal
by a rate limit costs the caller nothing; recorded one by one, each would append a row to the hash chain under
its lock. ``AuditThrottle`` lets through the first event of a key per window and counts the others; the next
record of that key, in a later window, says how many were left out. Keys are the broker's own words (kind,
endpoint, a registered client id or ``unknown``), never the caller's text, and there are at most ``max_keys``
of them (beyond: one shared overflow key), so the rows written are bounded by keys x windows per process.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

OVERFLOW = "(other)"


class AuditThrottle:
    def __init__(self, window: timedelta, max_keys: int = 512) -> None:
        self.window, self.max_keys = window, max_keys
        self._lock = threading.Lock()
        #: key -> (start of its current window, events left out since the last record)
        self._windows: dict[str, tuple[datetime, int]] = {}

    def admit(self, key: str, now: datetime) -> int | None:
        """None when this event is only counted; else the number of events left out before it (record it)."""
        with self._lock:
            if key not in self._windows and len(self._windows) >= self.max_keys:
                self._drop_closed(now)
                if len(self._windows) >= self.max_keys:
                    key = OVERFLOW
            started, left_out = self._windows.get(key, (None, 0))
            if started is not None and now - started < self.window:
                self._windows[key] = (started, left_out + 1)
                return None
            self._windows[key] = (now, 0)
            return left_out

    def _drop_closed(self, now: datetime) -> None:
        """Forget keys whose window is over and that left nothing out (nothing is lost by forgetting them)."""
        for key, (started, left_out) in list(self._windows.items()):
            if now - started >= self.window and left_out == 0:
                del self._windows[key]
