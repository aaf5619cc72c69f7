"""The risk step of every sign-in (issue 17): the signals of this login (a device or network not seen for the
account before, velocity per account and per address, recent wrong second-factor answers, another network in
the window) go through the operator's rules (``core.risk``: ``[risk]``), which allow it, ask for a second factor
(``broker.journeys.step_up``), or refuse it (the app hears RequestDenied / ``access_denied``). Every decision
but "allow" is audited with the rule and the signals that fired; no address or device id is kept beyond the keyed
hashes of ``core.risk.login_place``.

A sign-in that already proved a second factor (``amr`` has ``mfa``) is not assessed again. A login is recorded in
the history only once it completed, so a refused or abandoned attempt never makes a device or network "known".
When the rules ask for a step-up and the account has no second factor to give, the sign-in goes on and the
audit says so: refusing would lock out every citizen who never enrolled one (the operator can write a rule that
refuses instead).
"""

from __future__ import annotations

from datetime import datetime

from broker.core import errors
from broker.core.audit import AuditKind
from broker.core.model import LoginRequest, UpstreamIdentity
from broker.core.risk import Decision, LoginPlace, RiskDecision, decide, login_place
from broker.journeys.context import Browser, DownstreamFailure, Journeys


def place_of(j: Journeys, browser: Browser) -> LoginPlace | None:
    """Where this browser signs in from, as keyed hashes; None when the broker keeps no login history."""
    if j.login_history is None or not j.settings.risk_key:
        return None
    return login_place(browser.address, browser.device_id(), j.settings.risk_key)


def address_of(j: Journeys, browser: Browser) -> str | None:
    """The keyed hash of this browser's address (``LoginPlace.address``); None when the broker keeps no history."""
    place = place_of(j, browser)
    return place.address if place is not None else None


def assess(j: Journeys, browser: Browser, login: LoginRequest, identity: UpstreamIdentity, account_id: str | None,
           now: datetime) -> RiskDecision | None:
    """The rules' decision on this sign-in of ``account_id`` (None: a first sign-in, no account yet), None when
    there is nothing to assess; a refusal is raised as the app's failure."""
    place = place_of(j, browser)
    if place is None or j.login_history is None or "mfa" in identity.amr:
        return None
    signals = j.login_history.signals(account_id or "", place, now, j.settings.risk.window)
    decision = decide(signals, j.settings.risk, login.downstream)
    if decision.decision is Decision.ALLOW:
        return decision
    j.audit(AuditKind.RISK_CHALLENGE, account_id=account_id,
            upstream=identity.upstream, downstream=login.downstream, reason=decision.reason)
    if decision.decision is Decision.REFUSE:
        raise DownstreamFailure(errors.LoginRefused(detail=decision.reason), login)
    return decision


def completed(j: Journeys, browser: Browser, account_id: str, now: datetime) -> None:
    """Record a completed sign-in in the history (the device and network are known from now on)."""
    place = place_of(j, browser)
    if place is not None and j.login_history is not None:
        j.login_history.record(account_id, place, now)
        browser.remember_device()
