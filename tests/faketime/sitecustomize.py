"""Loaded at start-up by every Python process of a test run under Debian's ``faketime`` (``make test-future``
puts this folder on PYTHONPATH): the clock is moved two years ahead, so a test that only passes on the day it
was written fails today instead of on that day.

libfaketime 0.9.10 is run with ``FAKETIME_DONT_FAKE_MONOTONIC=1``: faking the monotonic clock makes every timed
lock wait (``threading.Event.wait``, ``queue.get(timeout=...)``) sleep for the two years. The real monotonic
clock in turn breaks one call: ``time.sleep`` (an absolute ``clock_nanosleep`` on CLOCK_MONOTONIC, which
libfaketime shifts into the past: EINVAL). It is replaced here by a timed wait on an event, which sleeps the same
way without that call. Nothing else is changed: wall-clock time, certificates, tokens and metadata all see the
faked date.
"""

from __future__ import annotations

import operator
import os
import threading
import time
from typing import SupportsIndex

if os.environ.get("FAKETIME") and os.environ.get("FAKETIME_DONT_FAKE_MONOTONIC") == "1":

    def _sleep(secs: float | SupportsIndex, /) -> None:  # time.sleep's own signature
        seconds = secs if isinstance(secs, int | float) else operator.index(secs)  # TypeError as time.sleep's
        if seconds < 0:
            raise ValueError("sleep length must be non-negative")
        threading.Event().wait(seconds)

    time.sleep = _sleep
