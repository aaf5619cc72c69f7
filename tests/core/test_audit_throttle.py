"""``broker.core.audit_throttle``: one record per key and window, the others counted into the next record, and
a bounded number of keys (issue 15, point 4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from broker.core.audit_throttle import OVERFLOW, AuditThrottle

AT = datetime(2030, 1, 1, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def test_one_record_per_key_and_window_then_the_count() -> None:
    throttle = AuditThrottle(MINUTE)
    answers = [throttle.admit("k", AT + timedelta(seconds=s)) for s in range(0, 60, 6)]  # ten in one window
    assert answers == [0] + [None] * 9
    assert throttle.admit("other", AT) == 0  # keys are counted apart
    assert throttle.admit("k", AT + MINUTE) == 9  # the next window's first record tells the nine left out
    assert throttle.admit("k", AT + 3 * MINUTE) == 0


def test_keys_are_bounded() -> None:
    throttle = AuditThrottle(MINUTE, max_keys=3)
    assert [throttle.admit(f"k{n}", AT) for n in range(3)] == [0, 0, 0]
    assert throttle.admit("k3", AT) == 0  # counted under the one overflow key from here on
    assert [throttle.admit(f"k{n}", AT) for n in range(4, 100)] == [None] * 96
    assert set(throttle._windows) == {"k0", "k1", "k2", OVERFLOW}
    assert throttle.admit("k4", AT + MINUTE) == 0  # closed windows that left nothing out are forgotten
