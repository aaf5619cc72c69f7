"""Back-off after wrong answers to a code (issue 17): how long further answers are refused, per account and per
address, from the wrong answers recent enough to count. Pure: no clock, no storage; the caller passes the time.

NIST SP 800-63B §5.2.2 (rate limiting, throttling) asks the verifier to limit failed attempts on an account and
names the remedy used here: "Requiring the claimant to wait following a failed attempt for a period of time that
increases as the account approaches its maximum allowance for consecutive failed attempts (e.g., 30 seconds up to
an hour)". The numbers:

- ``ACCOUNT``: 5 wrong answers within the window are free (a person fumbling a code, or two sign-ins each with a
  couple of typos: ``step_up.MAX_ATTEMPTS`` is 5 per sign-in too); after the 5th every further wrong answer must
  wait 30 s, then 1 min, 2, 4, 8, 16, 32 min, capped at 1 hour. With the default 60-minute window a script
  guessing as fast as allowed gets 11 guesses in its first hour and about 7 or 8 an hour after (``tests/core/
  test_backoff.py`` measures it): against a 6-digit code, with every guess also costing a sign-in at the upstream
  (the step-up follows the first factor) and ``MAX_ATTEMPTS`` per sign-in.
- ``ADDRESS`` (the keyed hash of the client address, never the address): 20 are free, then the same doubling
  (26 in the first hour, about 18 an hour after). An address is shared (a household, an office, carrier-grade
  NAT), so it is given more room than an account; its limit is what stops one guess sprayed over many accounts
  (each account staying under its own limit). The cost: while a shared address is in back-off, every code entry
  from it waits, right or wrong, so an attacker there delays the others too (at most the cap).

§5.2.2 also caps the consecutive failures of an account at 100 in total; a window bounds the rate, not the total
(about 180 a day), so a lock that only account recovery lifts is not part of this policy.

Only answers within the window count (the ``[risk]`` window, ``window_minutes``): once a wrong answer is older it
no longer makes anyone wait, so a citizen who mistyped yesterday starts afresh today.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

#: how long an attempt being checked (recorded before its code is checked) counts as a wrong answer for others
#: asking at the same time: a code check takes milliseconds; after this a right answer's claim stops counting
IN_FLIGHT = timedelta(seconds=15)


@dataclass(frozen=True)
class Failures:
    """The wrong answers (and attempts in flight) that count now for one account or one address: how many, and
    when the latest was (None: none)."""

    count: int = 0
    latest: datetime | None = None

    @classmethod
    def of(cls, times: Iterable[datetime], now: datetime, window: timedelta) -> Failures:
        """The wrong answers among ``times`` within ``window`` before ``now``."""
        recent = [at for at in times if now - window <= at <= now]
        return cls(len(recent), max(recent) if recent else None)


@dataclass(frozen=True)
class Backoff:
    """``free`` wrong answers cost nothing; after the ``free``-th each further one waits ``first``, doubling, up to
    ``cap`` (counted from the latest wrong answer)."""

    free: int
    first: timedelta = timedelta(seconds=30)
    cap: timedelta = timedelta(hours=1)

    def wait(self, failures: int) -> timedelta:
        """The wait after ``failures`` wrong answers: 0 below ``free``, then ``first`` * 2 ** (failures - free), at
        most ``cap``."""
        if failures < self.free:
            return timedelta(0)
        doublings = min(failures - self.free, 1000)  # compared as floats: no overflow, however many failures
        if self.first.total_seconds() * 2.0**doublings >= self.cap.total_seconds():
            return self.cap
        return self.first * (1 << doublings)

    def refused_until(self, failures: Failures) -> datetime | None:
        """Until when a further answer is refused, None when it is not (no wait, or no wrong answer at all)."""
        wait = self.wait(failures.count)
        if failures.latest is None or wait <= timedelta(0):
            return None
        return failures.latest + wait


#: per account, over all its sign-ins (see the module docstring for the numbers)
ACCOUNT = Backoff(free=5)
#: per address (keyed hash): shared by many people behind one NAT, so more are free
ADDRESS = Backoff(free=20)


@dataclass(frozen=True)
class Refusal:
    """Further answers are refused until ``until`` because of the ``scope``'s wrong answers."""

    scope: str  # "account" or "address"
    until: datetime


def refusal(account: Failures, address: Failures, now: datetime, *, per_account: Backoff = ACCOUNT,
            per_address: Backoff = ADDRESS) -> Refusal | None:
    """Whether an answer at ``now`` is refused, and until when (the later of the two limits); None: it may be
    checked."""
    waits = [Refusal(scope, until) for scope, until in (("account", per_account.refused_until(account)),
                                                         ("address", per_address.refused_until(address)))
             if until is not None and until > now]
    return max(waits, key=lambda r: r.until) if waits else None


def in_words(wait: timedelta) -> str:
    """``wait`` as a person reads it, rounded up: "in 30 seconds", "in 1 minute", "in 2 minutes", "in 1 hour"."""
    seconds = max(1, math.ceil(wait.total_seconds()))
    if seconds < 60:
        return f"in {seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    if minutes < 60 or minutes % 60:
        return f"in {minutes} minute{'s' if minutes != 1 else ''}"
    hours = minutes // 60
    return f"in {hours} hour{'s' if hours != 1 else ''}"


@dataclass(frozen=True)
class CodeAttempt:
    """A code entry recorded before its code is checked (``LoginHistory.begin_code_attempt``): its ``claim`` (to
    withdraw it when refused) and what counted against it when it was recorded, itself not counted."""

    claim: int
    account: Failures
    address: Failures
