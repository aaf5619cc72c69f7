"""Enrolling a second factor at the step-up (issue 17, ``broker.journeys.step_up_enrol``): an app needs MFA, the
account has no factor, and the operator allows adding one there. No Flask, no database (``fakes_support``)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from broker.core import errors
from broker.core.assurance import DEFAULT_POLICY, REFEDS_MFA, Comparison
from broker.core.audit import AuditKind
from broker.core.factors import FactorKind
from broker.core.model import DownstreamParty, LoginRequest, Protocol
from broker.core.outcomes import Outcome, Page, Redirect
from broker.journeys import login, step_up_enrol
from broker.journeys.context import DownstreamFailure
from broker.journeys.upstream_answers import upstream_answer
from tests.journeys.fakes_support import SETTINGS, UPSTREAMS, FakeBrowser, World, app, login_request, totp_code

ENROLLING = replace(DEFAULT_POLICY, enrol_at_step_up=True)


def world(*, allowed: bool = True) -> tuple[World, DownstreamParty]:
    party = app(Protocol.OIDC, allowed=(UPSTREAMS[Protocol.OIDC],))
    settings = replace(SETTINGS, assurance=ENROLLING if allowed else DEFAULT_POLICY)
    w = World([party], settings=settings)
    w.person(UPSTREAMS[Protocol.OIDC], "anna", email="anna@example.org")
    return w, party


def needs_mfa(party: DownstreamParty) -> LoginRequest:
    return login_request(party, acr_values=(REFEDS_MFA,), acr_comparison=Comparison.MINIMUM)


def through_upstream(w: World, browser: FakeBrowser, request: LoginRequest) -> Outcome:
    outgoing = login.begin(w.journeys, browser, request)
    assert isinstance(outgoing, Redirect)
    handle, reply = w.upstream(Protocol.OIDC).reply(outgoing)
    return upstream_answer(w.journeys, browser, Protocol.OIDC, handle, reply, UPSTREAMS[Protocol.OIDC].name)


def enrol_page(outcome: Outcome) -> tuple[str, str]:
    """The enrolment page's handle and secret (as the person would type it)."""
    assert isinstance(outcome, Page) and outcome.template == step_up_enrol.ENROL and outcome.no_store, outcome
    return str(outcome.data["handle"]), str(outcome.data["secret"]).replace(" ", "")


def test_a_first_sign_in_adds_an_app_and_reaches_the_level_the_app_needs() -> None:
    w, party = world()
    browser = w.browser()
    handle, secret = enrol_page(through_upstream(w, browser, needs_mfa(party)))
    assert not w.downstream(party.protocol).answered and browser.holds(handle)

    codes = step_up_enrol.confirm(w.journeys, browser, handle, totp_code(secret, w.clock.now()))

    assert isinstance(codes, Page) and codes.template == step_up_enrol.CODES and codes.no_store
    assert len(codes.data["codes"]) == 10 and not w.downstream(party.protocol).answered
    step_up_enrol.resume(w.journeys, browser, str(codes.data["handle"]))
    [answered] = w.downstream(party.protocol).answered
    assert answered.result.acr == REFEDS_MFA and {"otp", "mfa"} <= set(answered.result.amr)
    account_id = answered.result.account.account_id
    assert {f.kind for f in w.authenticators.of(account_id)} == {FactorKind.TOTP, FactorKind.RECOVERY}
    assert len(w.audit.of(AuditKind.AUTHENTICATOR_ADDED)) == 2
    session = browser.sso()
    assert session is not None and session.acr == REFEDS_MFA and "mfa" in session.amr


def test_without_the_operators_leave_the_app_hears_the_level_was_not_met() -> None:
    w, party = world(allowed=False)
    with pytest.raises(DownstreamFailure) as refused:
        through_upstream(w, w.browser(), needs_mfa(party))
    assert isinstance(refused.value.error, errors.InsufficientAssurance)


def test_an_account_with_a_factor_is_asked_for_it_never_offered_a_new_one() -> None:
    w, party = world()
    through_upstream(w, w.browser(), login_request(party))  # a first sign-in with no level asked
    [answered] = w.downstream(party.protocol).answered
    w.authenticators.add_totp(answered.result.account.account_id, "phone", "JBSWY3DPEHPK3PXP", w.clock.now())

    asked = through_upstream(w, w.browser(), needs_mfa(party))

    assert isinstance(asked, Page) and asked.template == "step_up.html"


def test_a_factor_added_meanwhile_in_another_tab_ends_the_offer() -> None:
    w, party = world()
    through_upstream(w, w.browser(), login_request(party))
    [answered] = w.downstream(party.protocol).answered
    account_id = answered.result.account.account_id
    browser = w.browser()
    handle, secret = enrol_page(through_upstream(w, browser, needs_mfa(party)))
    w.authenticators.add_totp(account_id, "attacker's phone", "JBSWY3DPEHPK3PXP", w.clock.now())

    with pytest.raises(DownstreamFailure) as ended:
        step_up_enrol.confirm(w.journeys, browser, handle, totp_code(secret, w.clock.now()))

    assert isinstance(ended.value.error, errors.InsufficientAssurance)
    assert [f.name for f in w.authenticators.of(account_id)] == ["attacker's phone"]  # nothing of this offer added


def test_wrong_codes_show_the_same_secret_and_end_the_sign_in_after_the_limit() -> None:
    w, party = world()
    browser = w.browser()
    handle, secret = enrol_page(through_upstream(w, browser, needs_mfa(party)))
    for left in range(step_up_enrol.MAX_ATTEMPTS - 1, 0, -1):
        page = step_up_enrol.confirm(w.journeys, browser, handle, "000000")
        handle, again = enrol_page(page)
        assert again == secret and isinstance(page, Page) and page.data["wrong"] and page.data["attempts_left"] == left

    with pytest.raises(DownstreamFailure) as ended:
        step_up_enrol.confirm(w.journeys, browser, handle, "000000")

    assert isinstance(ended.value.error, errors.InsufficientAssurance)
    assert not w.downstream(party.protocol).answered


def test_the_pages_are_bound_to_their_browser_and_used_once() -> None:
    w, party = world()
    browser = w.browser()
    handle, secret = enrol_page(through_upstream(w, browser, needs_mfa(party)))
    with pytest.raises(errors.LoginStateInvalid):
        step_up_enrol.confirm(w.journeys, w.browser(), handle, totp_code(secret, w.clock.now()))

    codes = step_up_enrol.confirm(w.journeys, browser, handle, totp_code(secret, w.clock.now()))
    assert isinstance(codes, Page)
    with pytest.raises(errors.LoginStateInvalid):  # the enrolment's handle is spent
        step_up_enrol.confirm(w.journeys, browser, handle, totp_code(secret, w.clock.now()))
    resume = str(codes.data["handle"])
    with pytest.raises(errors.LoginStateInvalid):
        step_up_enrol.resume(w.journeys, w.browser(), resume)
    step_up_enrol.resume(w.journeys, browser, resume)
    with pytest.raises(errors.LoginStateInvalid):
        step_up_enrol.resume(w.journeys, browser, resume)
    assert len(w.downstream(party.protocol).answered) == 1


def test_the_first_code_is_spent_at_enrolment() -> None:
    w, party = world()
    browser = w.browser()
    handle, secret = enrol_page(through_upstream(w, browser, needs_mfa(party)))
    code = totp_code(secret, w.clock.now())
    codes = step_up_enrol.confirm(w.journeys, browser, handle, code)
    assert isinstance(codes, Page)
    step_up_enrol.resume(w.journeys, browser, str(codes.data["handle"]))
    account_id = w.downstream(party.protocol).answered[0].result.account.account_id
    w.clock.advance(timedelta(seconds=1))  # the same time step

    assert w.authenticators.verify_totp(account_id, code, w.clock.now()) is None
