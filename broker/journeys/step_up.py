"""Step-up (issue 17): when an app needs a level of assurance the upstream did not give, and a second factor the
citizen enrolled at the broker would reach it (``AssurancePolicy.step_up_helps``), the sign-in stops at a page
that asks for that factor before the app is answered; the answer then carries the level really reached and what
was used (``acr``; ``amr`` per RFC 8176: ``otp``, ``hwk``, ``user``, with ``mfa``).

The waiting sign-in is a pending record bound to this browser; every code entered takes it once and, when wrong,
puts it back under a new handle with one more attempt counted, so a code can neither be replayed against an old
page nor guessed without limit (``MAX_ATTEMPTS`` per sign-in; then the app hears that the level was not met).
An account with no enrolled factor, or a first sign-in (no account yet), is not stepped up: the app hears
``NoAuthnContext`` / ``unmet_authentication_requirements`` as before.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime

from broker.core import errors
from broker.core.audit import AuditKind
from broker.core.factors import AMR, TOTP_CODE, Authenticator, Authenticators, FactorKind
from broker.core.model import LoginRequest
from broker.core.outcomes import Outcome, Page
from broker.core.pending_records import StepUp, put_record
from broker.core.protocol_ports import VerifiedAnswer
from broker.journeys import risk_check
from broker.journeys.context import Browser, DownstreamFailure, Journeys
from broker.journeys.handles import take_bound

log = logging.getLogger(__name__)
#: wrong codes one waiting sign-in may take before the app is told the level was not met
MAX_ATTEMPTS = 5
#: wrong answers of one account, over all its sign-ins, within the risk window (``[risk] window_minutes``) that
#: lock its step-up until the oldest of them leaves the window: guessing across many sign-ins (and addresses)
#: gains nothing either
ACCOUNT_LOCK = 10
#: the factors a code entered on the step-up page can be
CODE_FACTORS = frozenset({FactorKind.TOTP, FactorKind.RECOVERY})
#: the factors the step-up page can ask for
STEP_UP_FACTORS = CODE_FACTORS | {FactorKind.PASSKEY}


def _factors(j: Journeys) -> Authenticators | None:
    return j.authenticators


def challenge(j: Journeys, browser: Browser, login: LoginRequest, verified: VerifiedAnswer, account_id: str | None,
              now: datetime, *, forced: bool = False) -> Page | None:
    """The step-up page, when the request is not met by the upstream's level but would be with a second factor
    the person's account has, or when the risk rules ask for one (``forced``); None otherwise (the sign-in goes
    on and fails or succeeds as it would have)."""
    identity = verified.identity
    factors = _factors(j)
    if factors is None or "mfa" in identity.amr:
        return None
    if not forced and not j.settings.assurance.step_up_helps(identity.acr, login.acr_values,
                                                             login.acr_comparison):
        return None
    usable = [a for a in factors.of(account_id) if a.kind in _askable(j)] if account_id else []
    if account_id is None or not usable:
        return None
    flat = tuple(item for pair in verified.upstream_state for item in pair)
    waiting = StepUp(login=login, identity=identity, account=account_id, upstream_state=flat, attempts=0,
                     passkey_state="")
    return _page(j, browser, waiting, usable, now, wrong=False)


def _askable(j: Journeys) -> frozenset[FactorKind]:
    return STEP_UP_FACTORS if j.passkeys is not None else CODE_FACTORS


def _page(j: Journeys, browser: Browser, waiting: StepUp, usable: list[Authenticator], now: datetime,
          wrong: bool) -> Page:
    passkey_options = ""
    if j.passkeys is not None and any(a.kind is FactorKind.PASSKEY for a in usable):
        ceremony = j.passkeys.authentication_options(waiting.account, now)  # a new challenge for every page
        waiting, passkey_options = replace(waiting, passkey_state=ceremony.state), ceremony.options_json
    handle = put_record(j.pending, waiting, now + j.settings.pending_login_lifetime)
    browser.bind(handle)
    party = j.registry.downstream(waiting.login.downstream)
    return Page("step_up.html", {
        "handle": handle, "wrong": wrong, "app_name": party.display_name if party else None,
        "kinds": sorted({a.kind.value for a in usable}), "attempts_left": MAX_ATTEMPTS - waiting.attempts,
        "passkey_options": passkey_options,
    }, no_store=True)


def verify(j: Journeys, browser: Browser, handle: str, code: str, credential: str = "") -> Outcome:
    """What the person gave: a passkey's assertion (``credential``, WebAuthn JSON), an authenticator app's code
    (six digits) or a recovery code. Right: the sign-in goes on at the stepped-up level. Wrong: the page again,
    until ``MAX_ATTEMPTS``."""
    from broker.journeys import login  # login imports this module (``challenge``): import at call time

    now = j.now()
    waiting = take_bound(j, browser, StepUp, handle, "second factor page")
    factors = _factors(j)
    if factors is None:
        raise DownstreamFailure(errors.InsufficientAssurance(detail="second factors are not wired"), waiting.login)
    if _locked(j, browser, waiting.account, now):
        j.audit(AuditKind.SECOND_FACTOR, account_id=waiting.account, downstream=waiting.login.downstream,
                reason="locked: too many wrong answers for this account")
        raise DownstreamFailure(errors.LoginRefused(
            "Too many wrong codes were entered for this account. Please wait an hour and try again.",
            detail="step-up locked for the account"), waiting.login)
    entered = "".join(code.split())
    used = (_passkey(j, waiting, credential, now) if credential
            else factors.verify_totp(waiting.account, entered, now) if TOTP_CODE.fullmatch(entered)
            else factors.use_recovery_code(waiting.account, entered, now) if entered else None)
    if used is None:
        return _wrong(j, browser, waiting, factors, now)
    j.audit(AuditKind.SECOND_FACTOR, account_id=waiting.account, upstream=waiting.identity.upstream,
            downstream=waiting.login.downstream, reason=f"verified: {used.kind.value}")
    identity = waiting.identity
    stepped = replace(identity, acr=j.settings.assurance.with_second_factor(identity.acr),
                      amr=tuple(dict.fromkeys((*identity.amr, *AMR[used.kind], "mfa"))))
    pairs = waiting.upstream_state
    state = tuple((pairs[i], pairs[i + 1]) for i in range(0, len(pairs) - 1, 2))
    return login.sign_in(j, browser, waiting.login, VerifiedAnswer(stepped, state), now)


def _locked(j: Journeys, browser: Browser, account_id: str, now: datetime) -> bool:
    """Whether the account's recent wrong answers reached ``ACCOUNT_LOCK`` (checked before any code is)."""
    place = risk_check.place_of(j, browser)
    if place is None or j.login_history is None:
        return False
    recent = j.login_history.signals(account_id, place, now, j.settings.risk.window).failed_second_factors
    return recent >= ACCOUNT_LOCK


def _passkey(j: Journeys, waiting: StepUp, credential: str, now: datetime) -> Authenticator | None:
    """The passkey that signed this page's challenge, if it is one of the account's and the authenticator
    verified the person (WebAuthn §6.1 UV: what makes it a second factor of the MFA level)."""
    if j.passkeys is None or not waiting.passkey_state:
        return None
    try:
        use = j.passkeys.authenticate(credential, waiting.passkey_state, now)
    except ValueError as exc:
        log.info("step-up: passkey refused account=%s: %s", waiting.account, exc)
        return None
    return use.authenticator if use.account_id == waiting.account and use.user_verified else None


def _wrong(j: Journeys, browser: Browser, waiting: StepUp, factors: Authenticators, now: datetime) -> Outcome:
    attempts = waiting.attempts + 1
    if j.login_history is not None:
        j.login_history.record_second_factor_failure(waiting.account, now)  # a risk signal for later logins
    j.audit(AuditKind.SECOND_FACTOR, account_id=waiting.account, upstream=waiting.identity.upstream,
            downstream=waiting.login.downstream, reason=f"wrong code ({attempts} of {MAX_ATTEMPTS})")
    if attempts >= MAX_ATTEMPTS:
        log.warning("step-up: too many wrong codes account=%s", waiting.account)
        raise DownstreamFailure(errors.InsufficientAssurance(
            "Too many wrong codes. Please start again from the application.",
            detail="step-up: too many wrong codes"), waiting.login)
    usable = [a for a in factors.of(waiting.account) if a.kind in CODE_FACTORS]
    return _page(j, browser, replace(waiting, attempts=attempts), usable, now, wrong=True)
