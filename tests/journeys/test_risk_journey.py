"""The risk step of the login journey (``broker.journeys.risk_check``; issue 17), over the fakes: the operator's
rules (``[risk]``, parsed as the config parses them) allow a usual login, ask a login from a new device and
network after a velocity trip for a second factor, or refuse; each challenge is audited with its signals."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from broker.core import errors
from broker.core.audit import AuditKind
from broker.core.backoff import ACCOUNT
from broker.core.model import DownstreamParty, Protocol
from broker.core.outcomes import Outcome, Page
from broker.core.risk_rules import parse_risk
from broker.journeys import login, step_up
from broker.journeys.context import DownstreamFailure
from broker.journeys.upstream_answers import upstream_answer
from tests.journeys.fakes_support import (
    OIDC_UPSTREAM,
    SETTINGS,
    FakeBrowser,
    World,
    app,
    login_request,
    totp_code,
)

SECRET = "JBSWY3DPEHPK3PXP"
#: the issue's example: a login from a new device and a new network after a velocity trip asks a second factor
VELOCITY_THEN_NEW_PLACE = {"rules": [{"when": ["logins_by_account > 5"], "then": "refuse"},
                                     {"when": ["new_device", "new_network", "logins_by_account > 2"],
                                      "then": "step-up"}]}


def world(rules: Mapping[str, Any]) -> tuple[World, DownstreamParty]:
    parsed, problems = parse_risk(rules)
    assert problems == []
    party = app(Protocol.OIDC, allowed=(OIDC_UPSTREAM,))
    return World([party], settings=replace(SETTINGS, risk=parsed, risk_key=b"k" * 32)), party


def usual_logins(w: World, party: DownstreamParty, count: int) -> FakeBrowser:
    """``count`` logins of Anna from her usual browser; the account gets an authenticator app."""
    browser = w.browser()
    w.person(OIDC_UPSTREAM, "anna", email="anna@example.org")
    for _ in range(count):
        outgoing = login.begin(w.journeys, browser, login_request(party, force_authn=True))
        handle, reply = w.oidc.reply(outgoing)
        answered = upstream_answer(w.journeys, browser, Protocol.OIDC, handle, reply, OIDC_UPSTREAM.name)
        assert not isinstance(answered, Page), answered  # a usual login is never challenged
        w.clock.advance(timedelta(minutes=1))
    account_id = w.downstream(party.protocol).answered[-1].result.account.account_id
    w.authenticators.add_totp(account_id, "phone", SECRET, w.clock.now())
    return browser


def from_elsewhere(w: World, party: DownstreamParty) -> tuple[FakeBrowser, Outcome]:
    stranger = w.browser()
    stranger.client_address = "198.51.100.7"  # another network, and no device cookie
    outgoing = login.begin(w.journeys, stranger, login_request(party, force_authn=True))
    handle, reply = w.oidc.reply(outgoing)
    return stranger, upstream_answer(w.journeys, stranger, Protocol.OIDC, handle, reply, OIDC_UPSTREAM.name)


def test_a_new_device_and_network_after_a_velocity_trip_must_show_a_second_factor() -> None:
    w, party = world(VELOCITY_THEN_NEW_PLACE)
    usual_logins(w, party, 3)

    stranger, outcome = from_elsewhere(w, party)

    assert isinstance(outcome, Page) and outcome.template == "step_up.html"
    [challenge] = w.audit.of(AuditKind.RISK_CHALLENGE)
    assert challenge.reason is not None and "new_device" in challenge.reason and "198.51" not in challenge.reason
    answered = len(w.downstream(party.protocol).answered)
    step_up.verify(w.journeys, stranger, str(outcome.data["handle"]), totp_code(SECRET, w.clock.now()))
    assert len(w.downstream(party.protocol).answered) == answered + 1
    assert stranger.device  # known from now on: the device cookie was given after the completed sign-in


def test_the_same_place_before_the_trip_and_the_usual_browser_after_it_are_not_challenged() -> None:
    w, party = world(VELOCITY_THEN_NEW_PLACE)
    usual = usual_logins(w, party, 2)
    _, outcome = from_elsewhere(w, party)  # new device and network, but no velocity trip yet
    assert not isinstance(outcome, Page)

    outgoing = login.begin(w.journeys, usual, login_request(party, force_authn=True))
    handle, reply = w.oidc.reply(outgoing)
    again = upstream_answer(w.journeys, usual, Protocol.OIDC, handle, reply, OIDC_UPSTREAM.name)

    assert not isinstance(again, Page) and not w.audit.of(AuditKind.RISK_CHALLENGE)


def test_a_refusing_rule_refuses_and_the_app_hears_it() -> None:
    w, party = world(VELOCITY_THEN_NEW_PLACE)
    usual_logins(w, party, 6)

    with pytest.raises(DownstreamFailure) as refused:
        from_elsewhere(w, party)

    assert isinstance(refused.value.error, errors.LoginRefused)
    assert len(w.audit.of(AuditKind.RISK_CHALLENGE)) == 1
    assert len(w.login_history.logins) == 6  # a refused attempt makes nothing known


def test_a_step_up_asked_of_an_account_without_factors_signs_in_and_says_so() -> None:
    w, party = world({"rules": [{"when": ["not first_login"], "then": "step-up"}]})
    browser = w.browser()
    w.person(OIDC_UPSTREAM, "anna", email="anna@example.org")
    for _ in range(2):
        outgoing = login.begin(w.journeys, browser, login_request(party, force_authn=True))
        handle, reply = w.oidc.reply(outgoing)
        upstream_answer(w.journeys, browser, Protocol.OIDC, handle, reply, OIDC_UPSTREAM.name)

    assert len(w.downstream(party.protocol).answered) == 2
    assert any("no second factor" in (e.reason or "") for e in w.audit.of(AuditKind.RISK_CHALLENGE))


def test_wrong_second_factor_answers_are_a_signal_for_the_next_login() -> None:
    w, party = world({"rules": [{"when": ["failed_second_factors > 0"], "then": "refuse"}]})
    usual_logins(w, party, 1)
    w.authenticators.entries.clear()
    account_id = w.downstream(party.protocol).answered[-1].result.account.account_id
    w.login_history.record_second_factor_failure(account_id, w.clock.now())

    with pytest.raises(DownstreamFailure):
        from_elsewhere(w, party)


def test_an_account_with_too_many_wrong_answers_is_locked_even_for_the_right_code() -> None:
    w, party = world({"rules": [{"when": ["not first_login"], "then": "step-up"}]})
    usual_logins(w, party, 1)
    account_id = w.downstream(party.protocol).answered[-1].result.account.account_id
    for _ in range(ACCOUNT.free):  # wrong answers spread over other sign-ins and addresses
        w.login_history.record_second_factor_failure(account_id, w.clock.now())
    browser = w.browser()
    outgoing = login.begin(w.journeys, browser, login_request(party, force_authn=True))
    handle, reply = w.oidc.reply(outgoing)
    page = upstream_answer(w.journeys, browser, Protocol.OIDC, handle, reply, OIDC_UPSTREAM.name)
    assert isinstance(page, Page)

    with pytest.raises(DownstreamFailure) as locked:
        step_up.verify(w.journeys, browser, str(page.data["handle"]), totp_code(SECRET, w.clock.now()))

    assert isinstance(locked.value.error, errors.LoginRefused)
    w.clock.advance(ACCOUNT.wait(ACCOUNT.free))  # the back-off is over: unlocked
    outgoing = login.begin(w.journeys, browser, login_request(party, force_authn=True))
    handle, reply = w.oidc.reply(outgoing)
    page = upstream_answer(w.journeys, browser, Protocol.OIDC, handle, reply, OIDC_UPSTREAM.name)
    assert isinstance(page, Page)
    step_up.verify(w.journeys, browser, str(page.data["handle"]), totp_code(SECRET, w.clock.now()))
    assert w.downstream(party.protocol).answered[-1].result.amr[-1] == "mfa"
