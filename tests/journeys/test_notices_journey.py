"""E-mail notices of second-factor changes (``broker.journeys.notices``; issue 17), over the fakes
(``fakes_support.FakeMailer``): one notice per change to a verified address, none to an unverified one, nothing
secret in it, and a mail server that refuses never breaks the change."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta, timezone

from broker.core.assurance import REFEDS_MFA
from broker.core.audit import AuditKind
from broker.core.factors import FactorKind
from broker.core.model import EmailTrust, Protocol
from broker.core.outcomes import Page
from broker.core.security_events import SecurityEvent
from broker.core.sessions import SsoSession
from broker.journeys import authenticators, login, notices, passkeys
from broker.journeys.upstream_answers import upstream_answer
from tests.journeys.fakes_support import (
    OIDC_UPSTREAM,
    FakeBrowser,
    World,
    app,
    login_request,
    registration,
    totp_code,
)


def world() -> World:
    return World([app(Protocol.OIDC, allowed=(OIDC_UPSTREAM,))])


def signed_in(w: World, email: str | None = "anna@example.org",
              trust: EmailTrust = EmailTrust.VERIFIED) -> tuple[FakeBrowser, SsoSession]:
    browser = w.browser()
    w.person(OIDC_UPSTREAM, "anna", email=email, trust=trust)
    handle, reply = w.oidc.reply(login.begin(w.journeys, browser, login_request(w.apps[0])))
    upstream_answer(w.journeys, browser, Protocol.OIDC, handle, reply, OIDC_UPSTREAM.name)
    sso = browser.sso()
    assert sso is not None
    return browser, sso


def add_app(w: World, browser: FakeBrowser, name: str = "phone") -> tuple[Page, str]:
    """Add an authenticator app; the page after, and the app's secret."""
    shown = authenticators.start_totp(w.journeys, browser, name)
    handle, secret = str(shown.data["handle"]), "".join(str(shown.data["secret"]).split())
    return authenticators.confirm_totp(w.journeys, browser, handle, totp_code(secret, w.clock.now())), secret


def test_adding_the_first_app_sends_one_notice_to_the_verified_address_without_secrets() -> None:
    w = world()
    browser, _ = signed_in(w)

    page, secret = add_app(w, browser, "Call +1 555 0100 to keep your account")

    assert page.template == authenticators.CODES
    [notice] = w.mailer.sent
    assert notice.to == "anna@example.org"
    assert notice.subject == "City sign-in: the sign-in security of your account changed"
    assert notices.added(FactorKind.TOTP) in notice.text and notices.added(FactorKind.RECOVERY) in notice.text
    assert "If this was not you" in notice.text and "contact support" in notice.text
    # neither the secret, nor a recovery code, nor the name whoever added the app chose
    assert secret not in notice.text and "Call +1" not in notice.text
    codes = [str(c) for c in page.data["codes"]]
    assert len(codes) == 10 and not any(code in notice.text for code in codes)
    assert not w.audit.of(AuditKind.NOTICE_NOT_SENT)


def test_the_notice_says_when_in_utc() -> None:
    w = world()
    browser, _ = signed_in(w)
    add_app(w, browser)
    now = w.clock.now()
    assert f"When: {now.day} {notices.MONTHS[now.month - 1]} {now.year} at {now:%H:%M} UTC" in w.mailer.sent[0].text
    local = now.astimezone(timezone(timedelta(hours=1)))  # another zone: told in UTC
    assert notices.when(local) == f"{now.day} {notices.MONTHS[now.month - 1]} {now.year} at {now:%H:%M} UTC"


def test_new_recovery_codes_a_second_app_and_each_removal_send_one_notice_each() -> None:
    w = world()
    browser, sso = signed_in(w)
    add_app(w, browser)
    browser.keep_sso(replace(sso, acr=REFEDS_MFA, factor_at=w.clock.now()))  # after a step-up
    w.mailer.sent.clear()

    assert authenticators.new_recovery_codes(w.journeys, browser).template == authenticators.CODES
    assert [n.text.splitlines()[2] for n in w.mailer.sent] == [notices.added(FactorKind.RECOVERY)]

    add_app(w, browser, "tablet")
    assert [n.text.splitlines()[2] for n in w.mailer.sent[1:]] == [notices.added(FactorKind.TOTP)]

    phone = next(f for f in w.authenticators.of(sso.account_id) if f.name == "phone")
    assert authenticators.remove(w.journeys, browser, phone.authenticator_id).data["removed"] == "phone"
    assert [n.text.splitlines()[2] for n in w.mailer.sent[2:]] == [notices.removed(FactorKind.TOTP)]
    assert len(w.mailer.sent) == 3 and {n.to for n in w.mailer.sent} == {"anna@example.org"}


def test_a_passkey_added_and_removed_is_told_too() -> None:
    w = world()
    browser, sso = signed_in(w)
    page = passkeys.start(w.journeys, browser, "laptop")
    handle, options = str(page.data["handle"]), str(page.data["options"])

    assert passkeys.confirm(w.journeys, browser, handle, registration("cred-a", options)).template == \
        authenticators.CODES
    [added] = w.mailer.sent
    assert notices.added(FactorKind.PASSKEY) in added.text and notices.added(FactorKind.RECOVERY) in added.text

    browser.keep_sso(replace(sso, acr=REFEDS_MFA, factor_at=w.clock.now()))
    key = next(f for f in w.authenticators.of(sso.account_id) if f.kind is FactorKind.PASSKEY)
    authenticators.remove(w.journeys, browser, key.authenticator_id)
    assert notices.removed(FactorKind.PASSKEY) in w.mailer.sent[1].text and len(w.mailer.sent) == 2


def test_no_notice_to_an_unverified_address_or_without_one() -> None:
    for email, trust in (("anna@example.org", EmailTrust.UNVERIFIED), (None, EmailTrust.VERIFIED)):
        w = world()
        browser, sso = signed_in(w, email, trust)
        assert add_app(w, browser)[0].template == authenticators.CODES
        [app_factor] = [f for f in w.authenticators.of(sso.account_id) if f.kind is FactorKind.TOTP]
        browser.keep_sso(replace(sso, acr=REFEDS_MFA, factor_at=w.clock.now()))
        authenticators.remove(w.journeys, browser, app_factor.authenticator_id)

        assert w.mailer.sent == []
        assert len(w.audit.of(AuditKind.AUTHENTICATOR_ADDED)) == 2  # the app and its recovery codes, audited
        assert len(w.audit.of(AuditKind.AUTHENTICATOR_REMOVED)) == 1 and not w.audit.of(AuditKind.NOTICE_NOT_SENT)


def test_a_refusing_mail_server_breaks_neither_enrolment_nor_removal_and_is_audited() -> None:
    w = world()
    browser, sso = signed_in(w)
    w.mailer.refuse = "SMTPRecipientsRefused 550"

    assert add_app(w, browser)[0].template == authenticators.CODES
    assert {f.kind for f in w.authenticators.of(sso.account_id)} == {FactorKind.TOTP, FactorKind.RECOVERY}
    browser.keep_sso(replace(sso, acr=REFEDS_MFA, factor_at=w.clock.now()))
    [app_factor] = [f for f in w.authenticators.of(sso.account_id) if f.kind is FactorKind.TOTP]
    assert authenticators.remove(w.journeys, browser, app_factor.authenticator_id).status == 200

    assert w.mailer.sent == []
    failed = w.audit.of(AuditKind.NOTICE_NOT_SENT)
    assert [e.reason for e in failed] == ["authenticator change: SMTPRecipientsRefused 550"] * 2
    assert all(e.account_id == sso.account_id and e.reference == w.observer.ref for e in failed)
    assert all("anna@example.org" not in str(e) for e in failed)


def test_without_a_mailer_nothing_is_sent_and_the_change_stands() -> None:
    w = world()
    w.journeys = replace(w.journeys, mailer=None)
    browser, sso = signed_in(w)
    assert add_app(w, browser)[0].template == authenticators.CODES
    assert notices.tell_authenticator_change(w.journeys, sso.account_id, notices.added(FactorKind.TOTP),
                                             kind=FactorKind.TOTP, change="create") is False
    assert w.mailer.sent == [] and not w.audit.of(AuditKind.NOTICE_NOT_SENT)


def test_a_factor_change_is_a_credential_change_event_for_the_apps_streams() -> None:
    """CAEP 1.0 §3.3 ``credential-change`` with its ``change_type`` and ``credential_type``, mail or no mail."""
    w = World([app(Protocol.OIDC, allowed=(OIDC_UPSTREAM,))])
    w.person(OIDC_UPSTREAM, "anna", email="anna@example.org")
    notices.tell_authenticator_change(w.journeys, "acc-1", notices.removed(FactorKind.PASSKEY),
                                      kind=FactorKind.PASSKEY, change="delete")
    [event] = w.security_events.emitted
    assert (event.event, event.account_id) == (SecurityEvent.CREDENTIAL_CHANGE, "acc-1")
    assert event.details == {"change_type": "delete", "credential_type": "fido2-platform"}
