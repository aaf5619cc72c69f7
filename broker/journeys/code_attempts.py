"""Limits on code entries (issue 17): every code entered on the step-up page (an authenticator app's code, a
recovery code, a passkey) is checked against the back-off of ``core.backoff``, per account (over all its
sign-ins) and per address (the keyed hash of ``core.risk.login_place``, never the address), before its code is.

The entry is recorded before the check counts (``LoginHistory.begin_code_attempt``), so two entries made at once
(two tabs, a script's parallel requests) count against each other instead of both passing on the same count; a
refused entry is withdrawn (no code was checked, so it was no guess). A wrong answer then becomes a failure
(``record_second_factor_failure`` with ``risk_check.address_of``); a right one's entry stops counting after
``core.backoff.IN_FLIGHT``. Without a login history (or its key) nothing is limited here: the per-sign-in limit
(``step_up.MAX_ATTEMPTS``) and the per-address request limit (``[limits]``) remain.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from broker.core.backoff import Refusal, in_words, refusal
from broker.journeys import risk_check
from broker.journeys.context import Browser, Journeys

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Locked:
    """Code entries of this account (or from this address) are refused until ``refusal.until``."""

    refusal: Refusal
    now: datetime

    @property
    def message(self) -> str:
        """What the person reads: when to try again, in words ("in 2 minutes"), not why in detail."""
        whose = "for this account" if self.refusal.scope == "account" else "from your network"
        return f"Too many wrong codes were entered {whose}. Please try again {in_words(self.refusal.until - self.now)}."

    @property
    def reason(self) -> str:
        """One line for the audit: which limit, and for how long (no address)."""
        wait = in_words(self.refusal.until - self.now)
        return f"locked: too many wrong answers for this {self.refusal.scope}, try again {wait}"


def check(j: Journeys, browser: Browser, account_id: str, now: datetime) -> Locked | None:
    """Record this code entry of ``account_id`` and say whether it is refused (``Locked``) or may be checked
    (None: its code must be checked now; a wrong one recorded with ``record_second_factor_failure``)."""
    place = risk_check.place_of(j, browser)
    if place is None or j.login_history is None:
        return None
    attempt = j.login_history.begin_code_attempt(account_id, place.address, now, j.settings.risk.window)
    refused = refusal(attempt.account, attempt.address, now)
    if refused is None:
        return None
    j.login_history.withdraw_code_attempt(attempt.claim)
    locked = Locked(refused, now)
    log.warning("step-up: code entry refused account=%s %s", account_id, locked.reason)
    return locked
