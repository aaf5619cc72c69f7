"""Step-up of a live SSO session (issue 17, ``step_up.challenge_session``): a citizen signed in at the upstream
level opens an app that needs MFA; the factor raises the session itself, with no new upstream sign-in, and
``max_age`` / ``prompt=login`` still start over, second factor included. Fakes only (``fakes_support``)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from broker.core import errors
from broker.core.assurance import REFEDS_MFA, Comparison
from broker.core.model import DownstreamParty, LoginRequest, Protocol
from broker.core.outcomes import Outcome, Page, Redirect
from broker.journeys import login, step_up
from broker.journeys.context import DownstreamFailure
from broker.journeys.upstream_answers import upstream_answer
from tests.journeys.fakes_support import UPSTREAMS, FakeBrowser, World, app, login_request, totp_code

SECRET = "JBSWY3DPEHPK3PXP"
OIDC = Protocol.OIDC


def signed_in() -> tuple[World, DownstreamParty, FakeBrowser, str]:
    """Anna, with an authenticator app, signed in at the upstream level in ``browser``; her account id."""
    party = app(OIDC, allowed=(UPSTREAMS[OIDC],))
    w = World([party])
    w.person(UPSTREAMS[OIDC], "anna", email="anna@example.org")
    browser = w.browser()
    through_upstream(w, browser, login_request(party))
    [answered] = w.downstream(OIDC).answered
    account_id = answered.result.account.account_id
    w.authenticators.add_totp(account_id, "phone", SECRET, w.clock.now())
    w.downstream(OIDC).answered.clear()
    w.clock.advance(timedelta(seconds=31))
    return w, party, browser, account_id


def through_upstream(w: World, browser: FakeBrowser, request: LoginRequest) -> Outcome:
    outgoing = login.begin(w.journeys, browser, request)
    assert isinstance(outgoing, Redirect), outgoing
    handle, reply = w.upstream(OIDC).reply(outgoing)
    return upstream_answer(w.journeys, browser, OIDC, handle, reply, UPSTREAMS[OIDC].name)


def needs_mfa(party: DownstreamParty, **more: object) -> LoginRequest:
    return login_request(party, acr_values=(REFEDS_MFA,), acr_comparison=Comparison.MINIMUM, **more)


def step_up_handle(outcome: Outcome) -> str:
    assert isinstance(outcome, Page) and outcome.template == "step_up.html", outcome
    return str(outcome.data["handle"])


def test_the_factor_raises_the_live_session_without_a_new_upstream_sign_in() -> None:
    w, party, browser, _ = signed_in()
    before = browser.sso()
    assert before is not None and before.acr != REFEDS_MFA
    upstream_sign_ins = len(w.upstream(OIDC).begun)

    handle = step_up_handle(login.begin(w.journeys, browser, needs_mfa(party)))

    assert len(w.upstream(OIDC).begun) == upstream_sign_ins  # the page comes straight from the session
    step_up.verify(w.journeys, browser, handle, totp_code(SECRET, w.clock.now()))
    [answered] = w.downstream(OIDC).answered
    assert answered.result.acr == REFEDS_MFA and {"otp", "mfa"} <= set(answered.result.amr)
    assert answered.result.auth_time == before.auth_time  # max_age keeps counting from the upstream sign-in
    after = browser.sso()
    assert after is not None and after.sid == before.sid and after.acr == REFEDS_MFA and "mfa" in after.amr
    assert browser.renewals >= 2  # a new browser identity at the higher level

    # the next app needing MFA is answered by the raised session, and told how the person signed in
    w.downstream(OIDC).answered.clear()
    login.begin(w.journeys, browser, needs_mfa(party))
    [again] = w.downstream(OIDC).answered
    assert again.result.acr == REFEDS_MFA and {"otp", "mfa"} <= set(again.result.amr)


@pytest.mark.parametrize("fresh", [{"force_authn": True}, {"max_age": 10}])
def test_prompt_login_and_max_age_start_over_second_factor_included(fresh: dict[str, object]) -> None:
    w, party, browser, _ = signed_in()
    step_up.verify(w.journeys, browser, step_up_handle(login.begin(w.journeys, browser, needs_mfa(party))),
                   totp_code(SECRET, w.clock.now()))
    w.downstream(OIDC).answered.clear()
    w.clock.advance(timedelta(seconds=31))

    asked = through_upstream(w, browser, needs_mfa(party, **fresh))  # to the upstream again, then the factor

    handle = step_up_handle(asked)
    assert not w.downstream(OIDC).answered
    step_up.verify(w.journeys, browser, handle, totp_code(SECRET, w.clock.now()))
    [answered] = w.downstream(OIDC).answered
    assert answered.result.acr == REFEDS_MFA


def test_a_session_that_ended_meanwhile_is_not_raised() -> None:
    w, party, browser, _ = signed_in()
    handle = step_up_handle(login.begin(w.journeys, browser, needs_mfa(party)))
    session = browser.sso()
    assert session is not None
    w.sso_sessions.end(session.sid, w.clock.now())  # signed out elsewhere (single logout, the portal)

    with pytest.raises(DownstreamFailure) as refused:
        step_up.verify(w.journeys, browser, handle, totp_code(SECRET, w.clock.now()))

    assert isinstance(refused.value.error, errors.LoginStateInvalid)
    assert not w.downstream(OIDC).answered


def test_a_passive_request_is_never_shown_the_page() -> None:
    w, party, browser, _ = signed_in()
    with pytest.raises(DownstreamFailure) as refused:
        login.begin(w.journeys, browser, needs_mfa(party, passive=True))
    assert isinstance(refused.value.error, errors.NoPassive)


def test_a_wrong_code_raises_nothing() -> None:
    w, party, browser, _ = signed_in()
    handle = step_up_handle(login.begin(w.journeys, browser, needs_mfa(party)))

    wrong = step_up.verify(w.journeys, browser, handle, "000000" if totp_code(SECRET, w.clock.now()) != "000000"
                           else "111111")

    step_up_handle(wrong)
    session = browser.sso()
    assert session is not None and session.acr != REFEDS_MFA and not w.downstream(OIDC).answered
