"""Enrolling a second factor at the step-up (issue 17: "or offers to enrol one when the operator allows").

When an app needs the second-factor level and the account has no factor yet (or it is the person's first sign-in,
with no account yet), an operator who sets ``[assurance] enrol_at_step_up`` lets the person add an authenticator
app right there, instead of the app hearing ``NoAuthnContext`` / ``unmet_authentication_requirements``. It is
trust on first use, as every first enrolment is: whoever holds the upstream sign-in of an account without a
factor could enrol their own, which is why the offer is off by default and never made to an account that has a
factor (that one must be given, ``broker.journeys.step_up``), checked again when the code is entered (a factor
added meanwhile in another tab ends the offer).

1. ``offer``: a new secret (as the portal's, ``broker.journeys.authenticators``) in a ``StepUpEnrolment`` record
   bound to this browser; the page shows its QR code and asks for the first code.
2. ``confirm``: the record taken once; the code checked against that secret by the store and spent at once
   (RFC 6238 §5.2), so it can never serve again. A first sign-in's account is made only now. Then ten recovery
   codes, shown once, with a button that goes on to the app (``StepUpEnrolled``, bound too).
3. ``resume``: the sign-in goes on at the level reached, ``amr`` ``otp`` and ``mfa`` (RFC 8176 §2).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime

from broker.core import errors
from broker.core.audit import AuditKind
from broker.core.factor_records import StepUpEnrolled, StepUpEnrolment
from broker.core.factors import AMR, TOTP_CODE, FactorKind
from broker.core.model import LoginRequest, UpstreamIdentity
from broker.core.outcomes import Outcome, Page
from broker.core.pending_records import put_record
from broker.core.protocol_ports import VerifiedAnswer
from broker.core.texts import N_
from broker.journeys import authenticators, notices
from broker.journeys.context import Browser, DownstreamFailure, Journeys
from broker.journeys.handles import take_bound

log = logging.getLogger(__name__)
ENROL = "step_up_enrol.html"
CODES = "step_up_codes.html"
#: wrong first codes before the app is told the level was not met
MAX_ATTEMPTS = 5
#: the name the new authenticator app gets (the person may rename it... by removing and adding it in the portal)
APP_NAME = "Authenticator app"


def offer(j: Journeys, browser: Browser, login: LoginRequest, verified: VerifiedAnswer, account_id: str | None,
          now: datetime) -> Page | None:
    """The enrolment page, when the operator allows it and the account (if any) has no second factor; None
    otherwise."""
    factors = j.authenticators
    if not j.settings.assurance.enrol_at_step_up or factors is None or login.passive:
        return None
    if account_id is not None and factors.of(account_id):
        return None
    flat = tuple(item for pair in verified.upstream_state for item in pair)
    record = StepUpEnrolment(login=login, identity=verified.identity, account=account_id or "",
                             upstream_state=flat, secret=authenticators.new_secret(), attempts=0)
    return _page(j, browser, record, now, wrong=False)


def _page(j: Journeys, browser: Browser, record: StepUpEnrolment, now: datetime, *, wrong: bool) -> Page:
    handle = put_record(j.pending, record, now + j.settings.pending_login_lifetime)
    browser.bind(handle)
    party = j.registry.downstream(record.login.downstream)
    label = _label(record.identity)
    return Page(ENROL, {
        "handle": handle, "wrong": wrong, "attempts_left": MAX_ATTEMPTS - record.attempts,
        "app_name": party.display_name if party else None, "issuer": j.settings.brand_name,
        "secret": authenticators.grouped(record.secret),
        "otpauth_uri": authenticators.otpauth_uri(record.secret, label, j.settings.brand_name),
    }, no_store=True)


def _label(identity: UpstreamIdentity) -> str:
    email = identity.claims.get("email")
    return email if isinstance(email, str) and email else "account"


def confirm(j: Journeys, browser: Browser, handle: str, code: str) -> Outcome:
    """The new app's first code: right, the app is enrolled and the recovery codes shown; wrong, the page again
    with the same secret, until ``MAX_ATTEMPTS``."""
    record = take_bound(j, browser, StepUpEnrolment, handle, "second factor enrolment")
    factors = j.authenticators
    if factors is None:
        raise DownstreamFailure(errors.InsufficientAssurance(detail="second factors are not wired"), record.login)
    now = j.now()
    entered = "".join(code.split())
    added = None
    if TOTP_CODE.fullmatch(entered):
        account_id = record.account or _account_for(j, record.identity, now)
        if factors.of(account_id):  # a factor was added meanwhile (another tab): that one must be given instead
            raise DownstreamFailure(errors.InsufficientAssurance(
                N_("A second factor was added to your account meanwhile. Please start again from the application."),
                detail="step-up enrolment: the account has a factor now"), record.login)
        record = replace(record, account=account_id)
        added = factors.add_totp(account_id, APP_NAME, record.secret, now)
        spent = factors.verify_totp(account_id, entered, now)  # the first code is checked and spent at once
        if spent is None or spent.authenticator_id != added.authenticator_id:
            factors.remove(account_id, added.authenticator_id)
            added = None
    if added is None:
        attempts = record.attempts + 1
        if attempts >= MAX_ATTEMPTS:
            raise DownstreamFailure(errors.InsufficientAssurance(
                N_("Too many wrong codes. Please start again from the application."),
                detail="step-up enrolment: too many wrong codes"), record.login)
        return _page(j, browser, replace(record, attempts=attempts), now, wrong=True)
    account_id = record.account
    codes = authenticators.make_recovery_codes()
    factors.replace_recovery_codes(account_id, codes, now)
    for what in (f"{FactorKind.TOTP.value} {added.authenticator_id}", f"{FactorKind.RECOVERY.value}: first set"):
        j.audit(AuditKind.AUTHENTICATOR_ADDED, account_id=account_id, upstream=record.identity.upstream,
                downstream=record.login.downstream, reason=f"{what} (at step-up)")
    notices.tell_authenticator_change(j, account_id, notices.added(FactorKind.TOTP) + "\n"
                                      + notices.added(FactorKind.RECOVERY),
                                      kind=FactorKind.TOTP, change="create")
    identity = record.identity
    stepped = replace(identity, acr=j.settings.assurance.with_second_factor(identity.acr),
                      amr=tuple(dict.fromkeys((*identity.amr, *AMR[FactorKind.TOTP], "mfa"))))
    waiting = StepUpEnrolled(login=record.login, identity=stepped, upstream_state=record.upstream_state)
    next_handle = put_record(j.pending, waiting, now + j.settings.pending_login_lifetime)
    browser.bind(next_handle)
    party = j.registry.downstream(record.login.downstream)
    return Page(CODES, {"handle": next_handle, "codes": codes,
                        "app_name": party.display_name if party else None}, no_store=True)


def _account_for(j: Journeys, identity: UpstreamIdentity, now: datetime) -> str:
    """A first sign-in's account, made when the first code of its first factor is entered
    (``AccountStore.create_with_identity``: the one the identity already has, if another request made it
    meanwhile); the sign-in itself completes it, as any first sign-in."""
    account, _ = j.accounts.create_with_identity(identity, now)
    return account.account_id


def resume(j: Journeys, browser: Browser, handle: str) -> Outcome:
    """The recovery codes were seen: the sign-in goes on at the level the new factor reached."""
    from broker.journeys import login  # login imports step_up, which imports this module: at call time

    record = take_bound(j, browser, StepUpEnrolled, handle, "second factor enrolment")
    pairs = record.upstream_state
    state = tuple((pairs[i], pairs[i + 1]) for i in range(0, len(pairs) - 1, 2))
    return login.sign_in(j, browser, record.login, VerifiedAnswer(record.identity, state), j.now())
