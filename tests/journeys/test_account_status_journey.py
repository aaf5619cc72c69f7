"""Disabling and enabling an account (``broker.journeys.account_status``; issue 18) and RISC identifier-changed,
over the fakes (``fakes_support``): the disabled account's sessions end and it signs in nowhere (not through an
upstream, not from a session, not with a passkey, not even to a second-factor step), the events and audit
records say so without the operator's free text; a sign-in with a changed verified address emits
identifier-changed without the address."""

from __future__ import annotations

from datetime import timedelta

import pytest

from broker.core import errors
from broker.core.assurance import REFEDS_MFA
from broker.core.audit import AuditKind
from broker.core.grants import Grant
from broker.core.model import DownstreamParty, EmailTrust, Protocol
from broker.core.outcomes import Outcome, Page, Redirect
from broker.core.security_events import SecurityEvent
from broker.journeys import account_status, login, passwordless
from broker.journeys.context import DownstreamFailure
from broker.journeys.upstream_answers import upstream_answer
from tests.journeys.fakes_support import (
    OIDC_APP_ID,
    OIDC_UPSTREAM,
    FakeBrowser,
    World,
    app,
    assertion,
    login_request,
)

OPERATOR = "cli test"


def world() -> World:
    return World([app(Protocol.OIDC)])


def sign_in(w: World, browser: FakeBrowser | None = None, party: DownstreamParty | None = None) -> Outcome:
    browser = browser or w.browser()
    asked = login_request(party or w.apps[0], upstream_hints=(OIDC_UPSTREAM.name,))
    outgoing = login.begin(w.journeys, browser, asked)
    handle, reply = w.oidc.reply(outgoing)
    return upstream_answer(w.journeys, browser, Protocol.OIDC, handle, reply, OIDC_UPSTREAM.name)


def anna(w: World) -> tuple[str, FakeBrowser]:
    """Anna signed in once at the app; her account and the browser holding her live session."""
    w.person(OIDC_UPSTREAM, "anna", email="anna@example.org")
    browser = w.browser()
    sign_in(w, browser)
    return w.oidc_answers.answered.pop().result.account.account_id, browser


def events(w: World) -> list[tuple[SecurityEvent, dict[str, str]]]:
    return [(e.event, dict(e.details)) for e in w.security_events.emitted]


def test_disabling_ends_the_sessions_revokes_the_grants_and_tells_the_apps() -> None:
    w = world()
    account_id, browser = anna(w)
    w.grants.create_grant(Grant("old-grant", OIDC_APP_ID, account_id, ("openid",), frozenset(),
                                "https://oidc-app.city.example/callback", None, None, w.clock.now(), None, (),
                                "an-ended-session", OIDC_UPSTREAM.name, w.clock.now()))
    w.security_events.streams_of[account_id] = 1

    change = account_status.disable(w.journeys, account_id, "hijacking", OPERATOR)

    assert change == account_status.StatusChange(account_id, True, sessions_ended=1, events_queued=1)
    assert browser.sso() is None and w.sso_sessions.active(account_id, w.clock.now()) == []
    assert "old-grant" in w.grants.revoked  # a refresh token outlives its session
    assert (SecurityEvent.SESSION_REVOKED, {}) in events(w)
    assert events(w)[-1] == (SecurityEvent.ACCOUNT_DISABLED, {"reason": "hijacking"})  # RISC 1.0 §2.3
    [audited] = w.audit.of(AuditKind.ACCOUNT_DISABLED)
    assert audited.account_id == account_id and audited.reason is not None
    assert audited.reason.startswith(f"by {OPERATOR}; reason hijacking; 1 sessions ended")
    disabled = w.accounts.get(account_id)
    assert disabled is not None and disabled.disabled_at == w.clock.now() and disabled.disabled_reason == "hijacking"
    # once is enough: disabling again changes nothing and tells nobody
    assert account_status.disable(w.journeys, account_id, None, OPERATOR).changed is False
    assert len(w.audit.of(AuditKind.ACCOUNT_DISABLED)) == 1


@pytest.mark.parametrize("reason", [None, "the citizen phoned the help desk", "bulk-account"])
def test_only_a_risc_reason_reaches_the_apps_and_the_audit_log(reason: str | None) -> None:
    w = world()
    account_id, _ = anna(w)

    account_status.disable(w.journeys, account_id, reason, OPERATOR)

    expected = {"reason": reason} if reason == "bulk-account" else {}
    assert events(w)[-1] == (SecurityEvent.ACCOUNT_DISABLED, expected)
    [audited] = w.audit.of(AuditKind.ACCOUNT_DISABLED)
    assert audited.reason is not None and "phoned" not in audited.reason
    stored = w.accounts.get(account_id)
    assert stored is not None and stored.disabled_reason == reason  # kept for the operators only


def test_a_disabled_account_signs_in_nowhere_until_it_is_enabled() -> None:
    w = world()
    account_id, _ = anna(w)
    account_status.disable(w.journeys, account_id, None, OPERATOR)

    with pytest.raises(DownstreamFailure) as refused:
        sign_in(w)
    assert isinstance(refused.value.error, errors.AccountDisabled)
    assert refused.value.error.oidc_error == "access_denied"
    assert w.oidc_answers.answered == [] and w.sso_sessions.active(account_id, w.clock.now()) == []
    failed = w.audit.of(AuditKind.LOGIN_FAILED)[-1]
    assert (failed.account_id, failed.reason, failed.downstream) == (account_id, "account disabled", OIDC_APP_ID)

    assert account_status.enable(w.journeys, account_id, OPERATOR).changed
    assert events(w)[-1] == (SecurityEvent.ACCOUNT_ENABLED, {})  # RISC 1.0 §2.4
    assert [e.account_id for e in w.audit.of(AuditKind.ACCOUNT_ENABLED)] == [account_id]
    sign_in(w)
    [answered] = w.oidc_answers.answered
    assert answered.result.account.account_id == account_id
    assert account_status.enable(w.journeys, account_id, OPERATOR).changed is False


def test_a_session_the_disabling_missed_answers_no_app() -> None:
    """A session registered after the disabling ended the others (a login that raced it) is refused too."""
    w = world()
    account_id, browser = anna(w)
    w.accounts.set_disabled(account_id, w.clock.now(), None)  # as if the sessions had not been ended

    with pytest.raises(DownstreamFailure) as refused:
        login.begin(w.journeys, browser, login_request(w.apps[0]))
    assert isinstance(refused.value.error, errors.AccountDisabled) and w.oidc_answers.answered == []


def test_a_disabled_account_is_refused_before_its_second_factor_is_asked_for() -> None:
    strict = app(Protocol.OIDC, party_id="strict-app", required_acr=REFEDS_MFA)
    w = World([app(Protocol.OIDC), strict])
    account_id, _ = anna(w)
    w.authenticators.add_totp(account_id, "phone", "JBSWY3DPEHPK3PXP", w.clock.now())
    assert isinstance(sign_in(w, party=strict), Page)  # enabled: the step-up page
    account_status.disable(w.journeys, account_id, None, OPERATOR)

    with pytest.raises(DownstreamFailure) as refused:
        sign_in(w, party=strict)  # without the check, the step-up page again
    assert isinstance(refused.value.error, errors.AccountDisabled)


def test_a_disabled_accounts_passkey_signs_in_no_one() -> None:
    party = app(Protocol.OIDC)
    w = World([party])
    account_id, _ = anna(w)
    credential = w.passkeys.enrol(account_id, "laptop", w.clock.now())
    account_status.disable(w.journeys, account_id, None, OPERATOR)
    browser = w.browser()
    outgoing = login.begin(w.journeys, browser, login_request(party))
    assert isinstance(outgoing, Redirect)
    [discovery] = browser.handles
    page = passwordless.begin(w.journeys, browser, discovery)

    with pytest.raises(DownstreamFailure) as refused:
        passwordless.finish(w.journeys, browser, str(page.data["handle"]),
                            assertion(credential, str(page.data["options"])))
    assert isinstance(refused.value.error, errors.AccountDisabled) and w.oidc_answers.answered == []


def test_unknown_accounts_and_unusable_reasons_are_refused() -> None:
    w = world()
    account_id, _ = anna(w)
    with pytest.raises(account_status.UnknownAccount):
        account_status.disable(w.journeys, "no-such-account", None, OPERATOR)
    with pytest.raises(account_status.UnknownAccount):
        account_status.enable(w.journeys, "", OPERATOR)
    for bad in ("x" * (account_status.MAX_REASON + 1), "line\nbreak"):
        with pytest.raises(ValueError):
            account_status.disable(w.journeys, account_id, bad, OPERATOR)
    assert w.audit.of(AuditKind.ACCOUNT_DISABLED) == []


def test_status_names_the_sign_in_methods_and_counts_live_sessions() -> None:
    w = world()
    account_id, _ = anna(w)
    shown = account_status.status(w.journeys, account_id)
    assert shown.sign_in_methods == (OIDC_UPSTREAM.display_name,) and shown.live_sessions == 1
    assert shown.disabled_at is None
    account_status.disable(w.journeys, account_id, "lost phone", OPERATOR)
    shown = account_status.status(w.journeys, account_id)
    assert (shown.live_sessions, shown.disabled_reason) == (0, "lost phone") and shown.disabled_at is not None


def test_a_new_verified_address_emits_identifier_changed_without_it() -> None:
    w = world()
    account_id, _ = anna(w)
    w.security_events.emitted.clear()
    w.clock.advance(timedelta(days=1))

    w.person(OIDC_UPSTREAM, "anna", email="ANNA@example.org")  # the same address
    sign_in(w)
    w.person(OIDC_UPSTREAM, "anna", email="anna.unsure@example.org", trust=EmailTrust.UNVERIFIED)
    sign_in(w)
    assert events(w) == []  # only a verified address is an identifier
    w.person(OIDC_UPSTREAM, "anna", email="anna.new@example.org")
    sign_in(w)
    sign_in(w)  # changed once, told once

    assert events(w) == [(SecurityEvent.IDENTIFIER_CHANGED, {})]  # no new-value
    assert w.security_events.emitted[0].account_id == account_id
