"""Step-up (issue 17): when an app needs a level of assurance the upstream did not give, and a second factor the
citizen enrolled at the broker would reach it (``AssurancePolicy.step_up_helps``), the sign-in stops at a page
that asks for that factor before the app is answered; the answer then carries the level really reached and what
was used (``acr``; ``amr`` per RFC 8176: ``otp``, ``hwk``, ``user``, with ``mfa``).

The waiting sign-in is a pending record bound to this browser; every code entered takes it once and, when wrong,
puts it back under a new handle with one more attempt counted, so a code can neither be replayed against an old
page nor guessed without limit (``MAX_ATTEMPTS`` per sign-in; then the app hears that the level was not met).
An account with no enrolled factor, or a first sign-in (no account yet), is not stepped up: the app hears
``NoAuthnContext`` / ``unmet_authentication_requirements`` as before.

With a mail server wired, an enrolled e-mail code factor is offered too (``broker.journeys.email_codes``): the
person asks for a code (``send_code``, at most ``email_codes.MAX_SENDS`` per sign-in), whose salted hash and end
go into the waiting sign-in's record under a new handle; the code entered is checked like any other, against
that record only, and counts as a wrong answer when it is not the code or no longer valid.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime

from broker.core import errors
from broker.core.audit import AuditKind
from broker.core.factor_records import StepUp
from broker.core.factors import AMR, TOTP_CODE, Authenticator, Authenticators, FactorKind, PasskeyUse
from broker.core.model import PORTAL_PARTY, LoginRequest, Protocol, UpstreamIdentity
from broker.core.outcomes import Outcome, Page
from broker.core.pending_records import put_record
from broker.core.protocol_ports import VerifiedAnswer
from broker.core.sessions import SsoSession
from broker.core.texts import N_
from broker.journeys import code_attempts, email_codes, risk_check, step_up_enrol
from broker.journeys.context import Browser, DownstreamFailure, Journeys
from broker.journeys.handles import take_bound

log = logging.getLogger(__name__)
#: wrong codes one waiting sign-in may take before the app is told the level was not met
MAX_ATTEMPTS = 5
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
    usable = _usable(j, factors, account_id) if account_id else []
    if account_id is None or not usable:
        # no factor to ask for: the operator may let the person add one here; never when the risk rules asked
        # (whoever triggered them would enrol their own)
        return None if forced else step_up_enrol.offer(j, browser, login, verified, account_id, now)
    flat = tuple(item for pair in verified.upstream_state for item in pair)
    waiting = StepUp(login=login, identity=identity, account=account_id, upstream_state=flat, attempts=0,
                     passkey_state="")
    return _page(j, browser, waiting, usable, now, wrong=False)


def challenge_session(j: Journeys, browser: Browser, login: LoginRequest, sso: SsoSession,
                      now: datetime) -> Page | None:
    """The step-up page for a live SSO session that meets ``login`` in all but the level
    (``core.sessions.still_signed_in``) when a factor of the account would reach it: the person gives the factor
    without signing in at the upstream again, and the session itself is raised (``verify``). None otherwise."""
    factors = _factors(j)
    if factors is None or login.passive or "mfa" in sso.amr:
        return None
    if not j.settings.assurance.step_up_helps(sso.acr, login.acr_values, login.acr_comparison):
        return None
    usable = _usable(j, factors, sso.account_id)
    if not usable:
        return None
    return _page(j, browser, _in_session(login, sso), usable, now, wrong=False)


def _in_session(login: LoginRequest, sso: SsoSession) -> StepUp:
    """The waiting step-up of a live session: ``identity`` holds only how it signed in (``StepUp.sid``)."""
    how = UpstreamIdentity(upstream=sso.upstream, issuer="", subject="", claims={}, acr=sso.acr,
                           auth_time=sso.auth_time, amr=sso.amr)
    return StepUp(login=login, identity=how, account=sso.account_id, upstream_state=(), attempts=0,
                  passkey_state="", sid=sso.sid)


def reconfirm(j: Journeys, browser: Browser, return_to: str) -> Page:
    """The portal's "sign in with your second factor": the step-up page for this browser's SSO session, whatever
    its level, so that a change to the factors themselves has a fresh one
    (``broker.journeys.authenticators.reached_second_factor``); then back to ``return_to``, a portal page."""
    sso = browser.sso()
    if sso is None:
        raise errors.LoginStateInvalid(N_("Please sign in to your account again."),
                                       detail="second factor confirmation without an SSO session")
    factors = _factors(j)
    usable = _usable(j, factors, sso.account_id) if factors is not None else []
    if not usable:
        raise errors.InvalidRequest(N_("Your account has no second factor to confirm with."),
                                    detail="second factor confirmation without a factor")
    portal = LoginRequest(PORTAL_PARTY.party_id, Protocol.PORTAL, return_to, None, None, frozenset())
    return _page(j, browser, _in_session(portal, sso), usable, j.now(), wrong=False)


def _raise_session(j: Journeys, browser: Browser, waiting: StepUp, methods: tuple[str, ...],
                   now: datetime) -> Outcome:
    """The factor was right: the SSO session it was asked for reaches the second-factor level (its ``auth_time``
    stays the upstream sign-in's, so ``max_age`` still counts from the older of the two), in a new browser
    identity, and answers the app."""
    from broker.journeys import login  # login imports this module: import at call time

    sso = browser.sso()
    if sso is None or sso.sid != waiting.sid or sso.account_id != waiting.account \
            or not j.sso_sessions.is_live(sso.sid):
        raise DownstreamFailure(errors.LoginStateInvalid(
            N_("Your sign-in ended meanwhile. Please start again from the application."),
            detail="step-up of an SSO session that ended or changed"), waiting.login)
    raised = replace(sso, acr=j.settings.assurance.with_second_factor(sso.acr),
                     amr=tuple(dict.fromkeys((*sso.amr, *methods, "mfa"))), factor_at=now)
    browser.renew()  # a new browser identity for the higher level (as at every sign-in)
    browser.keep_sso(raised)
    j.observer.login_succeeded(raised.upstream, waiting.login.downstream, "step-up")
    return login.answer_from_session(j, browser, waiting.login, raised, how="step-up")


def _usable(j: Journeys, factors: Authenticators, account_id: str) -> list[Authenticator]:
    """The account's factors this broker can ask for: passkeys when wired, e-mail codes when a mailer is."""
    askable = (STEP_UP_FACTORS if j.passkeys is not None else CODE_FACTORS) \
        | ({FactorKind.EMAIL} if j.mailer is not None else set())
    return [a for a in factors.of(account_id) if a.kind in askable]


def _page(j: Journeys, browser: Browser, waiting: StepUp, usable: list[Authenticator], now: datetime,
          wrong: bool, mail_problem: str = "") -> Page:
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
        "passkey_options": passkey_options, **_email_data(j, waiting, usable, now), "mail_problem": mail_problem,
    }, no_store=True)


def _email_data(j: Journeys, waiting: StepUp, usable: list[Authenticator], now: datetime) -> dict[str, object]:
    """What the page shows of e-mail codes: each factor's masked address (never the address itself), where a
    code still valid went, and how many more may be sent."""
    factors = _factors(j)
    masked: list[tuple[str, str]] = []
    for a in usable:
        address = factors.email_address(waiting.account, a.authenticator_id) \
            if factors is not None and a.kind is FactorKind.EMAIL else None
        if address is not None:
            masked.append((a.authenticator_id, email_codes.mask(address)))
    live = waiting.email_code and not email_codes.expired(waiting.email_code_until, now)
    return {"email_factors": masked, "sends_left": email_codes.MAX_SENDS - waiting.email_sends,
            "code_sent_to": next((m for i, m in masked if live and i == waiting.email_factor), None),
            "code_minutes": int(email_codes.CODE_LIFETIME.total_seconds() // 60)}


def send_code(j: Journeys, browser: Browser, handle: str, authenticator_id: str) -> Outcome:
    """Send a code to the account's e-mail code factor ``authenticator_id`` and show the page again (a new
    handle) with the field for it; a refusal of the mail server, an unknown factor or the ``MAX_SENDS`` limit
    shows the page again with a message, the other factors still usable."""
    now = j.now()
    waiting = take_bound(j, browser, StepUp, handle, "second factor page")
    factors = _factors(j)
    if factors is None:
        raise DownstreamFailure(errors.InsufficientAssurance(detail="second factors are not wired"), waiting.login)
    usable = _usable(j, factors, waiting.account)
    address = factors.email_address(waiting.account, authenticator_id) \
        if any(a.authenticator_id == authenticator_id and a.kind is FactorKind.EMAIL for a in usable) else None
    if address is None:
        return _page(j, browser, waiting, usable, now, wrong=False, mail_problem="unknown")
    if waiting.email_sends >= email_codes.MAX_SENDS:
        return _page(j, browser, waiting, usable, now, wrong=False, mail_problem="too-many")
    party = j.registry.downstream(waiting.login.downstream)
    purpose = f"Enter it to finish signing in to {party.display_name if party else 'an application'}."
    sent = email_codes.send(j, waiting.account, address, purpose, now)
    waiting = replace(waiting, email_sends=waiting.email_sends + 1)
    if sent is None:
        return _page(j, browser, waiting, usable, now, wrong=False, mail_problem="not-sent")
    code, until = sent
    return _page(j, browser, replace(waiting, email_code=code, email_code_until=until,
                                     email_factor=authenticator_id), usable, now, wrong=False)


def _email_code(factors: Authenticators, waiting: StepUp, entered: str, now: datetime) -> Authenticator | None:
    """The e-mail code factor this sign-in's code was sent to, when ``entered`` is that code, still valid, and
    the factor still enrolled (its last use recorded)."""
    if not email_codes.matches(entered, waiting.email_code, waiting.email_code_until, now):
        return None
    factor = next((a for a in factors.of(waiting.account)
                   if a.authenticator_id == waiting.email_factor and a.kind is FactorKind.EMAIL), None)
    if factor is None:
        return None
    factors.mark_used(waiting.account, factor.authenticator_id, now)
    return replace(factor, last_used_at=now)


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
    locked = code_attempts.check(j, browser, waiting.account, now)  # recorded and counted before any code
    if locked is not None:
        j.audit(AuditKind.SECOND_FACTOR, account_id=waiting.account, downstream=waiting.login.downstream,
                reason=locked.reason)
        raise DownstreamFailure(errors.LoginRefused(locked.message, detail="step-up in back-off"), waiting.login)
    entered = "".join(code.split())
    passkey = _passkey(j, waiting, credential, now) if credential else None
    used = (passkey.authenticator if passkey is not None else None if credential
            else _email_code(factors, waiting, entered, now) if email_codes.EMAIL_CODE.fullmatch(entered)
            else factors.verify_totp(waiting.account, entered, now) if TOTP_CODE.fullmatch(entered)
            else factors.use_recovery_code(waiting.account, entered, now) if entered else None)
    if used is None:
        return _wrong(j, browser, waiting, factors, now)
    j.audit(AuditKind.SECOND_FACTOR, account_id=waiting.account, upstream=waiting.identity.upstream,
            downstream=waiting.login.downstream, reason=f"verified: {used.kind.value}")
    methods = passkey.amr if passkey is not None else AMR[used.kind]  # a synced passkey is ``swk``
    if waiting.sid:
        return _raise_session(j, browser, waiting, methods, now)
    identity = waiting.identity
    stepped = replace(identity, acr=j.settings.assurance.with_second_factor(identity.acr),
                      amr=tuple(dict.fromkeys((*identity.amr, *methods, "mfa"))))
    pairs = waiting.upstream_state
    state = tuple((pairs[i], pairs[i + 1]) for i in range(0, len(pairs) - 1, 2))
    return login.sign_in(j, browser, waiting.login, VerifiedAnswer(stepped, state), now)


def _passkey(j: Journeys, waiting: StepUp, credential: str, now: datetime) -> PasskeyUse | None:
    """The passkey that signed this page's challenge, if it is one of the account's and the authenticator
    verified the person (WebAuthn §6.1 UV: what makes it a second factor of the MFA level)."""
    if j.passkeys is None or not waiting.passkey_state:
        return None
    try:
        use = j.passkeys.authenticate(credential, waiting.passkey_state, now)
    except ValueError as exc:
        log.info("step-up: passkey refused account=%s: %s", waiting.account, exc)
        return None
    return use if use.account_id == waiting.account and use.user_verified else None


def _wrong(j: Journeys, browser: Browser, waiting: StepUp, factors: Authenticators, now: datetime) -> Outcome:
    attempts = waiting.attempts + 1
    if j.login_history is not None:
        j.login_history.record_second_factor_failure(waiting.account, now, risk_check.address_of(j, browser))
    j.audit(AuditKind.SECOND_FACTOR, account_id=waiting.account, upstream=waiting.identity.upstream,
            downstream=waiting.login.downstream, reason=f"wrong code ({attempts} of {MAX_ATTEMPTS})")
    if attempts >= MAX_ATTEMPTS:
        log.warning("step-up: too many wrong codes account=%s", waiting.account)
        raise DownstreamFailure(errors.InsufficientAssurance(
            N_("Too many wrong codes. Please start again from the application."),
            detail="step-up: too many wrong codes"), waiting.login)
    usable = _usable(j, factors, waiting.account)
    return _page(j, browser, replace(waiting, attempts=attempts), usable, now, wrong=True)
