"""Adding e-mail codes in the portal (``broker.journeys.email_enrolment``; issue 17), over the fakes: the address is
added only once the code sent there is entered, with the rules of every factor (a fresh second factor to add
another, attempts limited, audited, told by e-mail), a limit on codes sent, and the removal rules."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from broker.core import errors
from broker.core.assurance import REFEDS_MFA
from broker.core.audit import AuditKind
from broker.core.factors import FactorKind
from broker.core.model import Protocol
from broker.core.outcomes import Page
from broker.core.sessions import SsoSession
from broker.journeys import authenticators, email_codes, email_enrolment, login, notices
from broker.journeys.upstream_answers import upstream_answer
from tests.journeys.fakes_support import OIDC_UPSTREAM, FakeBrowser, World, app, login_request

ADDRESS = "anna.backup@example.net"


def signed_in(w: World) -> tuple[FakeBrowser, SsoSession]:
    browser = w.browser()
    w.person(OIDC_UPSTREAM, "anna", email="anna@example.org")
    handle, reply = w.oidc.reply(login.begin(w.journeys, browser, login_request(w.apps[0])))
    upstream_answer(w.journeys, browser, Protocol.OIDC, handle, reply, OIDC_UPSTREAM.name)
    sso = browser.sso()
    assert sso is not None and sso.acr != REFEDS_MFA
    return browser, sso


def world() -> tuple[World, FakeBrowser, SsoSession]:
    w = World([app(Protocol.OIDC, allowed=(OIDC_UPSTREAM,))])
    return (w, *signed_in(w))


def code_in(w: World) -> str:
    found = re.search(r"code is: ([0-9]{8})", w.mailer.sent[-1].text)
    assert found is not None
    return found.group(1)


def started(w: World, browser: FakeBrowser, address: str = ADDRESS) -> str:
    shown = email_enrolment.start(w.journeys, browser, "backup", address)
    assert shown.template == email_enrolment.ENROL_EMAIL and shown.no_store, shown
    assert address not in repr(shown.data)  # masked on the page
    return str(shown.data["handle"])


def test_the_form_is_offered_with_the_verified_address_only_when_mail_is_wired() -> None:
    w, browser, _ = world()
    listed = authenticators.page(w.journeys, browser)
    assert listed.data["email_codes"] and listed.data["email_address"] == "anna@example.org"

    without = replace(w.journeys, mailer=None)
    assert not authenticators.page(without, browser).data["email_codes"]
    with pytest.raises(errors.InvalidRequest):
        email_enrolment.start(without, browser, "backup", ADDRESS)


def test_the_address_is_added_only_once_its_code_is_entered() -> None:
    w, browser, sso = world()
    handle = started(w, browser)

    [mail] = w.mailer.sent
    assert mail.to == ADDRESS and not w.authenticators.of(sso.account_id)  # nothing added before the code
    code = code_in(w)
    done = email_enrolment.confirm(w.journeys, browser, handle, code)

    assert done.template == authenticators.SECURITY and done.data["added"] == "backup"
    [factor] = w.authenticators.of(sso.account_id)
    assert factor.kind is FactorKind.EMAIL
    assert w.authenticators.email_address(sso.account_id, factor.authenticator_id) == ADDRESS
    assert [e.reason for e in w.audit.of(AuditKind.AUTHENTICATOR_ADDED)] == [f"email-code {factor.authenticator_id}"]
    notice = w.mailer.sent[-1]
    assert notice.to == "anna@example.org" and notices.added(FactorKind.EMAIL) in notice.text
    browser.bind(handle)
    with pytest.raises(errors.LoginStateInvalid):  # the enrolment's handle is spent
        email_enrolment.confirm(w.journeys, browser, handle, code)


def test_a_wrong_code_adds_nothing_and_attempts_are_limited() -> None:
    w, browser, sso = world()
    handle = started(w, browser)
    wrong_code = f"{(int(code_in(w)) + 1) % 10 ** 8:08d}"
    for left in range(authenticators.MAX_ATTEMPTS - 1, 0, -1):
        again = email_enrolment.confirm(w.journeys, browser, handle, wrong_code)
        assert again.data["wrong"] and again.data["attempts_left"] == left
        handle = str(again.data["handle"])

    ended = email_enrolment.confirm(w.journeys, browser, handle, wrong_code)

    assert ended.data["too_many"] and not w.authenticators.of(sso.account_id)


def test_an_expired_code_adds_nothing() -> None:
    w = World([app(Protocol.OIDC, allowed=(OIDC_UPSTREAM,))],
              settings=replace(World([]).settings, pending_login_lifetime=email_codes.CODE_LIFETIME * 2))
    browser, sso = signed_in(w)
    handle = started(w, browser)
    w.clock.advance(email_codes.CODE_LIFETIME)

    late = email_enrolment.confirm(w.journeys, browser, handle, code_in(w))

    assert late.data["email_expired"] and not w.authenticators.of(sso.account_id)


def test_another_sso_session_cannot_finish_it() -> None:
    w, browser, sso = world()
    handle = started(w, browser)
    browser.keep_sso(replace(sso, sid="another-session"))

    with pytest.raises(errors.LoginStateInvalid):
        email_enrolment.confirm(w.journeys, browser, handle, code_in(w))
    assert not w.authenticators.of(sso.account_id)


def test_adding_it_beside_another_factor_needs_a_fresh_second_factor() -> None:
    w, browser, sso = world()
    w.authenticators.add_totp(sso.account_id, "phone", "JBSWY3DPEHPK3PXP", w.clock.now())

    refused = email_enrolment.start(w.journeys, browser, "backup", ADDRESS)

    assert refused.status == 403 and refused.data["needs_second_factor"] == "add" and not w.mailer.sent
    browser.keep_sso(replace(sso, acr=REFEDS_MFA, factor_at=w.clock.now()))
    started(w, browser)


@pytest.mark.parametrize("address", ["", "no-at-sign", "two\nlines@example.org", "a@b", "x@y.org, z@y.org"])
def test_an_address_that_cannot_be_one_is_refused_before_any_mail(address: str) -> None:
    w, browser, _ = world()
    refused = email_enrolment.start(w.journeys, browser, "backup", address)
    assert refused.status == 400 and refused.data["email_invalid"] and not w.mailer.sent


def test_codes_sent_for_enrolments_are_limited_per_hour() -> None:
    w, browser, _ = world()
    for _ in range(email_enrolment.MAX_STARTS_PER_HOUR):
        started(w, browser)

    refused = email_enrolment.start(w.journeys, browser, "backup", "someone@example.net")

    assert refused.status == 429 and len(w.mailer.sent) == email_enrolment.MAX_STARTS_PER_HOUR
    w.clock.advance(email_codes.CODE_LIFETIME * 7)  # an hour later
    started(w, browser)


def test_a_mail_server_refusal_is_a_message() -> None:
    w, browser, sso = world()
    w.mailer.refuse = "451 try later"
    refused = email_enrolment.start(w.journeys, browser, "backup", ADDRESS)
    assert refused.status == 503 and refused.data["email_not_sent"] and not w.authenticators.of(sso.account_id)


def test_removing_the_last_second_factor_needs_a_fresh_one_but_not_beside_an_app() -> None:
    w, browser, sso = world()
    mail = w.authenticators.add_email(sso.account_id, "backup", ADDRESS, w.clock.now())
    w.authenticators.replace_recovery_codes(sso.account_id, ["k7m2-9xq4-p3vd"], w.clock.now())

    refused = authenticators.remove(w.journeys, browser, mail.authenticator_id)
    assert refused.status == 403 and refused.data["needs_second_factor"] == "remove"

    w.authenticators.add_totp(sso.account_id, "phone", "JBSWY3DPEHPK3PXP", w.clock.now())
    done = authenticators.remove(w.journeys, browser, mail.authenticator_id)
    assert done.data["removed"] == "backup"
    assert notices.removed(FactorKind.EMAIL) in w.mailer.sent[-1].text
    assert [e.reason for e in w.audit.of(AuditKind.AUTHENTICATOR_REMOVED)] == [f"email-code {mail.authenticator_id}"]


def test_the_last_one_goes_with_a_fresh_second_factor() -> None:
    w, browser, sso = world()
    mail = w.authenticators.add_email(sso.account_id, "backup", ADDRESS, w.clock.now())
    browser.keep_sso(replace(sso, acr=REFEDS_MFA, factor_at=w.clock.now()))
    done = authenticators.remove(w.journeys, browser, mail.authenticator_id)
    assert isinstance(done, Page) and done.data["removed"] == "backup" and not w.authenticators.of(sso.account_id)
