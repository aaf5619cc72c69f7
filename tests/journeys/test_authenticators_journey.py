"""The portal's "Sign-in security" page as a journey (``broker.journeys.authenticators``; issue 17), over the
fakes (``fakes_support``): enrolling an authenticator app with its first code (checked and spent), wrong codes,
handles bound to the browser and SSO session, recovery codes shown once, and what needs a fresh second factor."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from broker.core import errors
from broker.core.assurance import REFEDS_MFA
from broker.core.audit import AuditKind
from broker.core.factors import FactorKind
from broker.core.model import Protocol
from broker.core.outcomes import Page, Redirect
from broker.core.sessions import SsoSession
from broker.journeys import authenticators, login, step_up
from broker.journeys.upstream_answers import upstream_answer
from tests.journeys.fakes_support import OIDC_UPSTREAM, FakeBrowser, World, app, login_request, totp_code

CODE_FORMAT = re.compile(r"[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}")


def world() -> World:
    return World([app(Protocol.OIDC, allowed=(OIDC_UPSTREAM,))])


def signed_in(w: World) -> tuple[FakeBrowser, SsoSession]:
    browser = w.browser()
    w.person(OIDC_UPSTREAM, "anna", email="anna@example.org")
    handle, reply = w.oidc.reply(login.begin(w.journeys, browser, login_request(w.apps[0])))
    upstream_answer(w.journeys, browser, Protocol.OIDC, handle, reply, OIDC_UPSTREAM.name)
    sso = browser.sso()
    assert sso is not None and sso.acr != REFEDS_MFA
    return browser, sso


def with_second_factor(w: World, browser: FakeBrowser, sso: SsoSession) -> None:
    """The browser's SSO session as after a step-up just now (its acr at the second-factor level)."""
    browser.keep_sso(replace(sso, acr=REFEDS_MFA, factor_at=w.clock.now()))


def started(w: World, browser: FakeBrowser, name: str = "phone") -> tuple[str, str]:
    """Start adding an app; its handle and secret (as typed: no spaces)."""
    shown = authenticators.start_totp(w.journeys, browser, name)
    assert shown.template == authenticators.ENROL and shown.no_store, shown
    return str(shown.data["handle"]), "".join(str(shown.data["secret"]).split())


def enrolled(w: World, browser: FakeBrowser) -> tuple[str, Page]:
    handle, secret = started(w, browser)
    return secret, authenticators.confirm_totp(w.journeys, browser, handle, totp_code(secret, w.clock.now()))


def test_signed_out_the_page_offers_the_sign_in() -> None:
    w = world()
    assert authenticators.page(w.journeys, w.browser()) == Page(authenticators.SIGN_IN)
    with pytest.raises(errors.LoginStateInvalid):
        authenticators.start_totp(w.journeys, w.browser(), "phone")


def test_an_app_is_enrolled_with_its_first_code_and_ten_recovery_codes_are_shown_once() -> None:
    w = world()
    browser, sso = signed_in(w)
    assert authenticators.page(w.journeys, browser).data["factors"] == []

    shown = authenticators.start_totp(w.journeys, browser, "  my   phone ")
    handle, secret = str(shown.data["handle"]), "".join(str(shown.data["secret"]).split())
    assert browser.holds(handle) and shown.no_store and shown.data["name"] == "my phone"
    assert len(secret) == 32 and re.fullmatch(r"[A-Z2-7]+", secret)  # 160 bits of base32
    assert str(shown.data["secret"]).split() == [secret[i:i + 4] for i in range(0, 32, 4)]  # grouped for typing
    uri = urlsplit(str(shown.data["otpauth_uri"]))
    assert (uri.scheme, uri.netloc, uri.path) == ("otpauth", "totp", "/City%20sign-in:anna%40example.org")
    assert parse_qs(uri.query) == {"secret": [secret], "issuer": ["City sign-in"], "algorithm": ["SHA1"],
                                   "digits": ["6"], "period": ["30"]}
    assert not w.authenticators.of(sso.account_id)  # nothing stored before the first code

    codes_page = authenticators.confirm_totp(w.journeys, browser, handle, totp_code(secret, w.clock.now()))

    assert codes_page.template == authenticators.CODES and codes_page.no_store
    codes = codes_page.data["codes"]
    assert len(codes) == 10 and len(set(codes)) == 10 and all(CODE_FORMAT.fullmatch(c) for c in codes)
    factors = w.authenticators.of(sso.account_id)
    assert [(f.kind, f.name) for f in factors] == [(FactorKind.TOTP, "my phone"),
                                                   (FactorKind.RECOVERY, "recovery codes")]
    assert w.authenticators.secrets[factors[0].authenticator_id] == secret
    assert len(w.audit.of(AuditKind.AUTHENTICATOR_ADDED)) == 2
    listed = authenticators.page(w.journeys, browser)  # the codes are not shown again
    assert "codes" not in listed.data and not listed.no_store
    assert [f.name for f in listed.data["factors"]] == ["my phone", "recovery codes"]
    assert w.authenticators.use_recovery_code(sso.account_id, codes[0], w.clock.now()) is not None
    with pytest.raises(errors.LoginStateInvalid):  # the enrolment's handle was taken once
        authenticators.confirm_totp(w.journeys, browser, handle, totp_code(secret, w.clock.now()))


def test_the_first_code_is_spent_and_cannot_be_replayed_for_a_step_up() -> None:
    w = world()
    browser, sso = signed_in(w)
    handle, secret = started(w, browser)
    code = totp_code(secret, w.clock.now())
    authenticators.confirm_totp(w.journeys, browser, handle, code)

    assert w.authenticators.verify_totp(sso.account_id, code, w.clock.now()) is None  # what step-up asks
    assert w.authenticators.last_step  # its time step recorded at enrolment


def test_a_wrong_code_removes_the_app_and_shows_the_same_secret_under_a_new_handle_five_times() -> None:
    w = world()
    browser, sso = signed_in(w)
    handle, secret = started(w, browser)
    wrong = "000000" if totp_code(secret, w.clock.now()) != "000000" else "111111"

    for attempt in range(1, authenticators.MAX_ATTEMPTS):
        again = authenticators.confirm_totp(w.journeys, browser, handle, wrong)
        assert again.template == authenticators.ENROL and again.data["wrong"] is True and again.no_store
        assert "".join(str(again.data["secret"]).split()) == secret
        assert again.data["attempts_left"] == authenticators.MAX_ATTEMPTS - attempt
        assert again.data["handle"] != handle and not browser.holds(handle)
        handle = str(again.data["handle"])
        assert not w.authenticators.of(sso.account_id)  # the just-added app is gone again
    last = authenticators.confirm_totp(w.journeys, browser, handle, wrong)

    assert last.template == authenticators.SECURITY and last.data["too_many"] is True
    assert not w.authenticators.of(sso.account_id) and not w.audit.of(AuditKind.AUTHENTICATOR_ADDED)
    with pytest.raises(errors.LoginStateInvalid):
        authenticators.confirm_totp(w.journeys, browser, handle, totp_code(secret, w.clock.now()))


def test_a_right_code_after_a_wrong_one_enrols_the_app() -> None:
    w = world()
    browser, sso = signed_in(w)
    handle, secret = started(w, browser)
    again = authenticators.confirm_totp(w.journeys, browser, handle, "not a code")
    done = authenticators.confirm_totp(w.journeys, browser, str(again.data["handle"]),
                                       totp_code(secret, w.clock.now()))
    assert done.template == authenticators.CODES
    assert [f.kind for f in w.authenticators.of(sso.account_id)] == [FactorKind.TOTP, FactorKind.RECOVERY]


def test_another_browsers_handle_or_another_sso_session_is_refused() -> None:
    w = world()
    browser, sso = signed_in(w)
    handle, secret = started(w, browser)
    thief = w.browser()
    thief.keep_sso(sso)
    with pytest.raises(errors.LoginStateInvalid):
        authenticators.confirm_totp(w.journeys, thief, handle, totp_code(secret, w.clock.now()))
    assert browser.holds(handle)  # a handle from another browser is never even looked up

    browser.keep_sso(replace(sso, sid="another-session"))
    w.sso_sessions.records["another-session"] = w.sso_sessions.records[sso.sid]
    with pytest.raises(errors.LoginStateInvalid):
        authenticators.confirm_totp(w.journeys, browser, handle, totp_code(secret, w.clock.now()))
    assert not w.authenticators.of(sso.account_id)


def test_new_recovery_codes_replace_the_old_and_need_a_fresh_second_factor() -> None:
    w = world()
    browser, sso = signed_in(w)
    _, first = enrolled(w, browser)
    old = first.data["codes"]

    refused = authenticators.new_recovery_codes(w.journeys, browser)
    assert refused.template == authenticators.SECURITY and refused.status == 403
    assert refused.data["needs_second_factor"] == "recovery-codes" and "codes" not in refused.data

    with_second_factor(w, browser, sso)
    shown = authenticators.new_recovery_codes(w.journeys, browser)

    assert shown.template == authenticators.CODES and shown.no_store and shown.data["first"] is False
    new = shown.data["codes"]
    assert len(new) == 10 and not set(new) & set(old)
    now = w.clock.now()
    assert w.authenticators.use_recovery_code(sso.account_id, old[0], now) is None
    assert w.authenticators.use_recovery_code(sso.account_id, new[0], now) is not None
    assert [e.reason for e in w.audit.of(AuditKind.AUTHENTICATOR_ADDED)][-1] == "recovery-code: replaced"


def test_adding_another_factor_needs_a_fresh_second_factor() -> None:
    w = world()
    browser, sso = signed_in(w)
    enrolled(w, browser)
    refused = authenticators.start_totp(w.journeys, browser, "tablet")
    assert refused.status == 403 and refused.data["needs_second_factor"] == "add"
    with_second_factor(w, browser, sso)
    handle, secret = started(w, browser, "tablet")
    w.clock.advance(w.settings.pending_login_lifetime / 20)
    added = authenticators.confirm_totp(w.journeys, browser, handle, totp_code(secret, w.clock.now()))
    assert added.template == authenticators.SECURITY and added.data["added"] == "tablet"  # codes exist already
    assert [f.name for f in w.authenticators.of(sso.account_id)] == ["phone", "recovery codes", "tablet"]


def test_removing_the_last_app_needs_a_session_with_the_second_factor() -> None:
    w = world()
    browser, sso = signed_in(w)
    enrolled(w, browser)
    [app_factor] = [f for f in w.authenticators.of(sso.account_id) if f.kind is FactorKind.TOTP]

    refused = authenticators.remove(w.journeys, browser, app_factor.authenticator_id)

    assert refused.template == authenticators.SECURITY and refused.status == 403
    assert refused.data["needs_second_factor"] == "remove"
    assert app_factor in w.authenticators.of(sso.account_id) and not w.audit.of(AuditKind.AUTHENTICATOR_REMOVED)
    with pytest.raises(errors.InvalidRequest):
        authenticators.remove(w.journeys, browser, "totp-of-someone-else")

    with_second_factor(w, browser, sso)
    done = authenticators.remove(w.journeys, browser, app_factor.authenticator_id)
    assert done.data["removed"] == "phone"
    assert [f.kind for f in w.authenticators.of(sso.account_id)] == [FactorKind.RECOVERY]
    [event] = w.audit.of(AuditKind.AUTHENTICATOR_REMOVED)
    assert event.reason == f"totp {app_factor.authenticator_id}" and event.account_id == sso.account_id


def test_one_of_two_apps_and_the_recovery_codes_can_be_removed_without_it() -> None:
    w = world()
    browser, sso = signed_in(w)
    enrolled(w, browser)
    w.authenticators.add_totp(sso.account_id, "tablet", "JBSWY3DPEHPK3PXPJBSWY3DP", w.clock.now())
    phone, recovery, _ = w.authenticators.of(sso.account_id)

    assert authenticators.remove(w.journeys, browser, phone.authenticator_id).data["removed"] == "phone"
    assert authenticators.remove(w.journeys, browser, recovery.authenticator_id).status == 200
    assert [f.name for f in w.authenticators.of(sso.account_id)] == ["tablet"]
    assert len(w.audit.of(AuditKind.AUTHENTICATOR_REMOVED)) == 2


def test_a_second_factor_given_too_long_ago_is_not_fresh_and_is_confirmed_again() -> None:
    """Removing the last app needs a fresh second factor: a session stepped up more than ``FRESH_FACTOR`` ago
    (a computer left signed in) gives it again on the step-up page, and comes back to this page."""
    w = world()
    browser, sso = signed_in(w)
    secret, _ = enrolled(w, browser)
    [app_factor] = [f for f in w.authenticators.of(sso.account_id) if f.kind is FactorKind.TOTP]
    with_second_factor(w, browser, sso)
    w.clock.advance(authenticators.FRESH_FACTOR + timedelta(seconds=1))
    stale = browser.sso()
    assert stale is not None and stale.acr == REFEDS_MFA

    refused = authenticators.remove(w.journeys, browser, app_factor.authenticator_id)
    assert refused.status == 403 and refused.data["needs_second_factor"] == "remove"

    page = step_up.reconfirm(w.journeys, browser, "https://broker.example/account/security/")
    assert page.template == "step_up.html" and browser.holds(str(page.data["handle"]))
    back = step_up.verify(w.journeys, browser, str(page.data["handle"]), totp_code(secret, w.clock.now()))
    assert back == Redirect("https://broker.example/account/security/", 303)
    fresh = browser.sso()
    assert fresh is not None and fresh.sid == sso.sid and fresh.factor_at == w.clock.now()
    assert authenticators.remove(w.journeys, browser, app_factor.authenticator_id).data["removed"] == "phone"


def test_confirming_needs_a_session_and_a_factor() -> None:
    w = world()
    with pytest.raises(errors.LoginStateInvalid):
        step_up.reconfirm(w.journeys, w.browser(), "https://broker.example/account/security/")
    browser, _ = signed_in(w)
    with pytest.raises(errors.InvalidRequest):
        step_up.reconfirm(w.journeys, browser, "https://broker.example/account/security/")
