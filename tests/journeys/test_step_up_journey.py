"""Step-up on its own (issue 17): an app needs more assurance than the upstream gave, and the person's second
factor enrolled at the broker reaches it. No Flask, no database: every port is a fake (``fakes_support``)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from broker.core import errors
from broker.core.assurance import DEFAULT_POLICY, REFEDS_MFA, Comparison
from broker.core.audit import AuditKind
from broker.core.model import DownstreamParty, LoginRequest, Protocol
from broker.core.outcomes import Outcome, Page, Redirect
from broker.journeys import login, step_up
from broker.journeys.context import DownstreamFailure
from broker.journeys.upstream_answers import upstream_answer
from tests.journeys.fakes_support import (
    SETTINGS,
    UPSTREAMS,
    FakeBrowser,
    World,
    app,
    assertion,
    login_request,
    totp_code,
)

BOTH = [Protocol.OIDC, Protocol.SAML]
SECRET = "JBSWY3DPEHPK3PXP"


def world_for(up: Protocol, down: Protocol = Protocol.OIDC, **settings: object) -> tuple[World, DownstreamParty]:
    party = app(down, allowed=(UPSTREAMS[up],))
    return World([party], settings=replace(SETTINGS, **settings)), party  # type: ignore[arg-type]


def needs_mfa(party: DownstreamParty) -> LoginRequest:
    return login_request(party, acr_values=(REFEDS_MFA,), acr_comparison=Comparison.MINIMUM)


def through_upstream(w: World, browser: FakeBrowser, up: Protocol, request: LoginRequest) -> Outcome:
    outgoing = login.begin(w.journeys, browser, request)
    handle, reply = w.upstream(Protocol.OIDC if isinstance(outgoing, Redirect) else Protocol.SAML).reply(outgoing)
    return upstream_answer(w.journeys, browser, up, handle, reply, UPSTREAMS[up].name if up is Protocol.OIDC else None)


def enrolled(w: World, up: Protocol, party: DownstreamParty) -> str:
    """Anna has an account (a first sign-in with no acr asked) and an authenticator app; her account id."""
    w.person(UPSTREAMS[up], "anna", email="anna@example.org")
    through_upstream(w, w.browser(), up, login_request(party))
    [answered] = w.downstream(party.protocol).answered
    account_id = answered.result.account.account_id
    w.authenticators.add_totp(account_id, "phone", SECRET, w.clock.now())
    w.downstream(party.protocol).answered.clear()
    return account_id


def page_handle(outcome: Outcome) -> str:
    assert isinstance(outcome, Page) and outcome.template == "step_up.html", outcome
    return str(outcome.data["handle"])


@pytest.mark.parametrize("up", BOTH)
def test_an_app_needing_mfa_gets_a_second_factor_step_and_the_level_it_reached(up: Protocol) -> None:
    w, party = world_for(up)
    account_id = enrolled(w, up, party)
    browser = w.browser()

    asked = through_upstream(w, browser, up, needs_mfa(party))

    handle = page_handle(asked)
    assert browser.holds(handle) and not w.downstream(party.protocol).answered  # nothing answered yet
    assert not w.sso_sessions.active(account_id, w.clock.now())[1:]  # no new SSO session before the factor
    w.clock.advance(timedelta(seconds=31))  # a fresh time step: the first sign-in's code is not reused
    outgoing = step_up.verify(w.journeys, browser, handle, totp_code(SECRET, w.clock.now()))

    [answered] = w.downstream(party.protocol).answered
    assert answered.result.acr == REFEDS_MFA  # what was reached, not what the upstream said
    assert {"otp", "mfa"} <= set(answered.result.amr)
    assert outgoing == w.downstream(party.protocol).outgoing_for(answered.result, answered.sid)
    assert [e.reason for e in w.audit.of(AuditKind.SECOND_FACTOR)] == ["verified: totp"]
    session = browser.sso()
    assert session is not None and session.acr == REFEDS_MFA  # the SSO session remembers the level reached


def test_a_code_is_accepted_once_and_a_wrong_one_counts_against_the_sign_in() -> None:
    w, party = world_for(Protocol.OIDC)
    enrolled(w, Protocol.OIDC, party)
    browser = w.browser()
    handle = page_handle(through_upstream(w, browser, Protocol.OIDC, needs_mfa(party)))
    code = totp_code(SECRET, w.clock.now())
    step_up.verify(w.journeys, browser, handle, code)
    assert len(w.downstream(party.protocol).answered) == 1

    again = w.browser()
    second = page_handle(through_upstream(w, again, Protocol.OIDC, needs_mfa(party)))
    wrong = step_up.verify(w.journeys, again, second, code)  # the same code, same time step: a replay

    assert isinstance(wrong, Page) and wrong.data["wrong"] and wrong.data["attempts_left"] == step_up.MAX_ATTEMPTS - 1
    assert len(w.downstream(party.protocol).answered) == 1
    with pytest.raises(errors.LoginStateInvalid):  # the page's old handle is used up: a new one per attempt
        step_up.verify(w.journeys, again, second, code)


def test_too_many_wrong_codes_end_the_sign_in_with_the_level_not_met() -> None:
    w, party = world_for(Protocol.SAML, Protocol.SAML)
    enrolled(w, Protocol.SAML, party)
    browser = w.browser()
    handle = page_handle(through_upstream(w, browser, Protocol.SAML, needs_mfa(party)))
    for _ in range(step_up.MAX_ATTEMPTS - 1):
        handle = page_handle(step_up.verify(w.journeys, browser, handle, "000000"))

    with pytest.raises(DownstreamFailure) as ended:
        step_up.verify(w.journeys, browser, handle, "000000")

    assert isinstance(ended.value.error, errors.InsufficientAssurance)
    assert not w.downstream(party.protocol).answered and not browser.handles
    assert len(w.audit.of(AuditKind.SECOND_FACTOR)) == step_up.MAX_ATTEMPTS


def test_a_page_from_another_browser_is_refused() -> None:
    w, party = world_for(Protocol.OIDC)
    enrolled(w, Protocol.OIDC, party)
    handle = page_handle(through_upstream(w, w.browser(), Protocol.OIDC, needs_mfa(party)))

    with pytest.raises(errors.LoginStateInvalid):
        step_up.verify(w.journeys, w.browser(), handle, totp_code(SECRET, w.clock.now()))
    assert not w.downstream(party.protocol).answered


def test_a_recovery_code_works_once() -> None:
    w, party = world_for(Protocol.OIDC)
    account_id = enrolled(w, Protocol.OIDC, party)
    w.authenticators.replace_recovery_codes(account_id, ["k7m2-9xq4-p3", "a1b2-c3d4-e5"], w.clock.now())
    first, second = w.browser(), w.browser()

    step_up.verify(w.journeys, first, page_handle(through_upstream(w, first, Protocol.OIDC, needs_mfa(party))),
                   "k7m2-9xq4-p3")
    again = step_up.verify(w.journeys, second,
                           page_handle(through_upstream(w, second, Protocol.OIDC, needs_mfa(party))), "k7m2-9xq4-p3")

    assert len(w.downstream(party.protocol).answered) == 1 and isinstance(again, Page) and again.data["wrong"]
    assert [e.reason for e in w.audit.of(AuditKind.SECOND_FACTOR)] == ["verified: recovery-code", "wrong code (1 of 5)"]


def test_without_an_enrolled_factor_the_app_hears_the_level_was_not_met() -> None:
    w, party = world_for(Protocol.OIDC)
    w.person(UPSTREAMS[Protocol.OIDC], "anna", email="anna@example.org")

    with pytest.raises(DownstreamFailure) as refused:
        through_upstream(w, w.browser(), Protocol.OIDC, needs_mfa(party))
    assert isinstance(refused.value.error, errors.InsufficientAssurance)


def test_an_operator_without_step_up_never_asks() -> None:
    w, party = world_for(Protocol.OIDC, assurance=replace(DEFAULT_POLICY, second_factor_level=None))
    enrolled(w, Protocol.OIDC, party)

    with pytest.raises(DownstreamFailure) as refused:
        through_upstream(w, w.browser(), Protocol.OIDC, needs_mfa(party))
    assert isinstance(refused.value.error, errors.InsufficientAssurance)


def test_a_request_the_upstream_already_meets_is_not_stepped_up() -> None:
    w, party = world_for(Protocol.OIDC)
    enrolled(w, Protocol.OIDC, party)
    strong = w.person(UPSTREAMS[Protocol.OIDC], "anna", email="anna@example.org")
    w.oidc.answers_as(replace(strong, acr=REFEDS_MFA))  # the upstream itself did multi-factor

    outgoing = through_upstream(w, w.browser(), Protocol.OIDC, needs_mfa(party))

    assert not isinstance(outgoing, Page) and not w.audit.of(AuditKind.SECOND_FACTOR)
    [answered] = w.downstream(party.protocol).answered
    assert answered.result.acr == REFEDS_MFA and "mfa" not in answered.result.amr


# --- passkeys ---------------------------------------------------------------------------------------------------

def passkey_page(w: World, browser: FakeBrowser, party: DownstreamParty) -> tuple[str, str]:
    """A sign-in that needs MFA stopped at the step-up page offering a passkey: its handle and options."""
    page = through_upstream(w, browser, Protocol.OIDC, needs_mfa(party))
    assert isinstance(page, Page) and page.data["kinds"] == ["passkey"] and page.data["passkey_options"]
    return page_handle(page), str(page.data["passkey_options"])


def test_a_passkey_that_verified_the_person_steps_the_sign_in_up() -> None:
    w, party = world_for(Protocol.OIDC)
    w.person(UPSTREAMS[Protocol.OIDC], "anna", email="anna@example.org")
    through_upstream(w, w.browser(), Protocol.OIDC, login_request(party))
    account_id = w.downstream(party.protocol).answered.pop().result.account.account_id
    credential = w.passkeys.enrol(account_id, "laptop", w.clock.now())
    browser = w.browser()
    handle, options = passkey_page(w, browser, party)

    step_up.verify(w.journeys, browser, handle, "", assertion(credential, options))

    [answered] = w.downstream(party.protocol).answered
    assert answered.result.acr == REFEDS_MFA and {"hwk", "user", "mfa"} <= set(answered.result.amr)
    assert [e.reason for e in w.audit.of(AuditKind.SECOND_FACTOR)] == ["verified: passkey"]


@pytest.mark.parametrize("misuse", ["stale challenge", "no user verification", "another account's passkey"])
def test_a_passkey_assertion_that_does_not_fit_this_page_is_a_wrong_answer(misuse: str) -> None:
    w, party = world_for(Protocol.OIDC)
    w.person(UPSTREAMS[Protocol.OIDC], "anna", email="anna@example.org")
    through_upstream(w, w.browser(), Protocol.OIDC, login_request(party))
    account_id = w.downstream(party.protocol).answered.pop().result.account.account_id
    credential = w.passkeys.enrol(account_id, "laptop", w.clock.now())
    stranger = w.passkeys.enrol("someone-else", "their key", w.clock.now())
    browser = w.browser()
    handle, options = passkey_page(w, browser, party)
    older = w.passkeys.authentication_options(account_id, w.clock.now()).options_json

    given = {"stale challenge": assertion(credential, older),
             "no user verification": assertion(credential, options, user_verified=False),
             "another account's passkey": assertion(stranger, options)}[misuse]
    again = step_up.verify(w.journeys, browser, handle, "", given)

    assert isinstance(again, Page) and again.data["wrong"] and not w.downstream(party.protocol).answered
    assert again.data["passkey_options"] != options  # every page asks a new challenge
