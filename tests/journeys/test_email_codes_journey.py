"""E-mail codes at step-up (``broker.journeys.step_up``, ``broker.journeys.email_codes``; issue 17), over the
fakes: a code sent on request to the enrolled address (masked on the page), accepted once, in time, for the sign-in
it was sent for only; a limited number of sends; a mail server's refusal leaves the other factors usable."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta

import pytest

from broker.core import errors
from broker.core.assurance import REFEDS_MFA, Comparison
from broker.core.audit import AuditKind
from broker.core.factors import FactorKind
from broker.core.model import DownstreamParty, Protocol
from broker.core.outcomes import Outcome, Page, Redirect
from broker.journeys import email_codes, login, step_up
from broker.journeys.context import DownstreamFailure
from broker.journeys.upstream_answers import upstream_answer
from tests.journeys.fakes_support import SETTINGS, UPSTREAMS, FakeBrowser, World, app, login_request, totp_code

ADDRESS = "anna.jansen@example.org"
SECRET = "JBSWY3DPEHPK3PXP"


def setup(*, mailer: bool = True, pending: timedelta = SETTINGS.pending_login_lifetime,
          ) -> tuple[World, DownstreamParty, str, str]:
    """Anna's account with an e-mail code factor; the world, the app, her account id and the factor's id."""
    party = app(Protocol.OIDC, allowed=(UPSTREAMS[Protocol.OIDC],))
    w = World([party], settings=replace(SETTINGS, pending_login_lifetime=pending))
    if not mailer:
        w.journeys = replace(w.journeys, mailer=None)
    w.person(UPSTREAMS[Protocol.OIDC], "anna", email="anna@upstream.example")
    through(w, w.browser(), party, mfa=False)
    account_id = w.downstream(party.protocol).answered.pop().result.account.account_id
    factor = w.authenticators.add_email(account_id, "mail", ADDRESS, w.clock.now())
    return w, party, account_id, factor.authenticator_id


def through(w: World, browser: FakeBrowser, party: DownstreamParty, *, mfa: bool = True) -> Outcome:
    request = login_request(party, acr_values=(REFEDS_MFA,), acr_comparison=Comparison.MINIMUM) if mfa \
        else login_request(party)
    outgoing = login.begin(w.journeys, browser, request)
    assert isinstance(outgoing, Redirect)
    handle, reply = w.oidc.reply(outgoing)
    return upstream_answer(w.journeys, browser, Protocol.OIDC, handle, reply, UPSTREAMS[Protocol.OIDC].name)


def page(outcome: Outcome) -> Page:
    assert isinstance(outcome, Page) and outcome.template == "step_up.html", outcome
    return outcome


def sent_code(w: World) -> str:
    found = re.search(r"code is: ([0-9]{8})", w.mailer.sent[-1].text)
    assert found is not None, w.mailer.sent[-1].text
    return found.group(1)


def asked(w: World, party: DownstreamParty, factor: str) -> tuple[FakeBrowser, Page]:
    """A sign-in needing MFA, stopped at the step-up page, and a code sent: the browser and the page."""
    browser = w.browser()
    first = page(through(w, browser, party))
    return browser, page(step_up.send_code(w.journeys, browser, str(first.data["handle"]), factor))


def test_the_page_offers_a_code_to_the_masked_address_and_the_code_steps_the_sign_in_up() -> None:
    w, party, account_id, factor = setup()
    browser = w.browser()
    first = page(through(w, browser, party))
    assert first.data["email_factors"] == [(factor, "a\u2022\u2022\u2022@example.org")]
    assert ADDRESS not in repr(first.data) and not w.mailer.sent  # nothing sent until asked

    shown = page(step_up.send_code(w.journeys, browser, str(first.data["handle"]), factor))

    [mail] = w.mailer.sent
    code = sent_code(w)
    assert mail.to == ADDRESS and shown.data["code_sent_to"] == "a\u2022\u2022\u2022@example.org"
    assert "10 minutes" in mail.text and "did not ask" in mail.text
    assert code not in repr(w.pending.rows) and ADDRESS not in repr(shown.data)  # only its salted hash is kept
    step_up.verify(w.journeys, browser, str(shown.data["handle"]), f"{code[:4]} {code[4:]}")

    [answered] = w.downstream(party.protocol).answered
    assert answered.result.acr == REFEDS_MFA and {"otp", "mfa"} <= set(answered.result.amr)
    assert [e.reason for e in w.audit.of(AuditKind.SECOND_FACTOR)] == ["email-code sent", "verified: email-code"]
    [entry] = w.authenticators.of(account_id)
    assert entry.kind is FactorKind.EMAIL and entry.last_used_at == w.clock.now()


def test_a_wrong_code_counts_and_the_right_one_still_works_after_it() -> None:
    w, party, _, factor = setup()
    browser, shown = asked(w, party, factor)
    code = sent_code(w)
    wrong_code = f"{(int(code) + 1) % 10 ** 8:08d}"

    wrong = page(step_up.verify(w.journeys, browser, str(shown.data["handle"]), wrong_code))

    assert wrong.data["wrong"] and wrong.data["attempts_left"] == step_up.MAX_ATTEMPTS - 1
    assert wrong.data["code_sent_to"] and not w.downstream(party.protocol).answered
    assert "wrong code (1 of 5)" in [e.reason for e in w.audit.of(AuditKind.SECOND_FACTOR)]
    step_up.verify(w.journeys, browser, str(wrong.data["handle"]), code)
    assert len(w.downstream(party.protocol).answered) == 1


def test_an_expired_code_is_refused() -> None:
    w, party, _, factor = setup(pending=timedelta(hours=1))  # the page outlives the code
    browser, shown = asked(w, party, factor)
    code = sent_code(w)
    w.clock.advance(email_codes.CODE_LIFETIME)

    late = page(step_up.verify(w.journeys, browser, str(shown.data["handle"]), code))

    assert late.data["wrong"] and late.data["code_sent_to"] is None  # the page offers to send a new one
    assert not w.downstream(party.protocol).answered


def test_a_used_code_cannot_be_replayed_with_an_old_page() -> None:
    w, party, _, factor = setup()
    browser, shown = asked(w, party, factor)
    code = sent_code(w)
    step_up.verify(w.journeys, browser, str(shown.data["handle"]), code)

    browser.bind(str(shown.data["handle"]))  # even a browser that kept the handle
    with pytest.raises(errors.LoginStateInvalid):
        step_up.verify(w.journeys, browser, str(shown.data["handle"]), code)
    assert len(w.downstream(party.protocol).answered) == 1


def test_a_code_works_only_for_the_sign_in_it_was_sent_for() -> None:
    w, party, _, factor = setup()
    _, _ = asked(w, party, factor)
    first_code = sent_code(w)
    other, shown = asked(w, party, factor)

    refused = page(step_up.verify(w.journeys, other, str(shown.data["handle"]), first_code))

    assert refused.data["wrong"] and not w.downstream(party.protocol).answered


def test_at_most_three_codes_are_sent_for_one_sign_in() -> None:
    w, party, _, factor = setup()
    browser = w.browser()
    shown = page(through(w, browser, party))
    for _ in range(email_codes.MAX_SENDS):
        shown = page(step_up.send_code(w.journeys, browser, str(shown.data["handle"]), factor))

    refused = page(step_up.send_code(w.journeys, browser, str(shown.data["handle"]), factor))

    assert refused.data["mail_problem"] == "too-many" and refused.data["sends_left"] == 0
    assert len(w.mailer.sent) == email_codes.MAX_SENDS
    step_up.verify(w.journeys, browser, str(refused.data["handle"]), sent_code(w))  # the last code still works
    assert len(w.downstream(party.protocol).answered) == 1


def test_another_accounts_factor_is_not_sent_to() -> None:
    w, party, _, _ = setup()
    stranger = w.authenticators.add_email("someone-else", "theirs", "victim@example.net", w.clock.now())
    browser = w.browser()
    first = page(through(w, browser, party))

    refused = page(step_up.send_code(w.journeys, browser, str(first.data["handle"]), stranger.authenticator_id))

    assert refused.data["mail_problem"] == "unknown" and not w.mailer.sent


def test_a_mail_server_refusal_is_a_message_and_the_app_still_works() -> None:
    w, party, account_id, factor = setup()
    w.authenticators.add_totp(account_id, "phone", SECRET, w.clock.now())
    w.mailer.refuse = "451 try later"
    browser = w.browser()
    first = page(through(w, browser, party))

    shown = page(step_up.send_code(w.journeys, browser, str(first.data["handle"]), factor))

    assert shown.data["mail_problem"] == "not-sent" and shown.data["code_sent_to"] is None
    assert [e.reason for e in w.audit.of(AuditKind.NOTICE_NOT_SENT)] == ["email code: 451 try later"]
    step_up.verify(w.journeys, browser, str(shown.data["handle"]), totp_code(SECRET, w.clock.now()))
    assert len(w.downstream(party.protocol).answered) == 1


def test_without_a_mail_server_an_email_factor_alone_is_not_asked_for() -> None:
    w, party, _, _ = setup(mailer=False)
    with pytest.raises(DownstreamFailure) as refused:
        through(w, w.browser(), party)
    assert isinstance(refused.value.error, errors.InsufficientAssurance) and not w.mailer.sent


def test_a_removed_factor_no_longer_takes_its_code() -> None:
    w, party, account_id, factor = setup()
    browser, shown = asked(w, party, factor)
    w.authenticators.remove(account_id, factor)

    refused = page(step_up.verify(w.journeys, browser, str(shown.data["handle"]), sent_code(w)))

    assert refused.data["wrong"] and not w.downstream(party.protocol).answered


@pytest.mark.parametrize(("entered", "ok"), [("12345678", True), ("12345679", False), ("1234567", False),
                                             ("١٢٣٤٥٦٧٨", False)])
def test_matches_only_the_code_in_time(entered: str, ok: bool) -> None:
    w = World([])
    now = w.clock.now()
    stored = email_codes.hashed("12345678")
    assert email_codes.matches(entered, stored, email_codes.until_of(now), now) is ok
    assert not email_codes.matches("12345678", stored, email_codes.until_of(now), now + timedelta(minutes=10))
    assert stored.count("$") == 1 and "12345678" not in stored
    assert email_codes.hashed("12345678") != stored  # a fresh salt each time
