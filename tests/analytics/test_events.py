"""What one audit record contributes (``broker.analytics.events``), from the reasons the journeys write."""

from __future__ import annotations

from datetime import date

import pytest

from broker.analytics.events import Facts, cut, factor_kind, facts_of, second_factor_outcome
from broker.analytics.model import DailyKey, Metric

DAY = date(2026, 1, 15)  # any day: nothing here depends on it


@pytest.mark.parametrize(("reason", "outcome"), [
    ("verified: totp", "verified: totp"),
    ("verified: passkey", "verified: passkey"),
    ("verified: something-new", "verified: other"),
    ("wrong code (2 of 5)", "wrong code"),
    ("locked: too many wrong answers for this network, try again in 3 minutes", "locked"),
    ("email-code sent", "email-code sent"),
    ("email-code enrolment started", "email-code enrolment started"),
    ("anything else", "other"),
    (None, "other"),
])
def test_second_factor_outcomes_come_from_a_short_fixed_list(reason: str | None, outcome: str) -> None:
    assert second_factor_outcome(reason) == outcome


@pytest.mark.parametrize(("reason", "kind"), [
    ("totp 3f2a", "totp"), ("recovery-code: first set (at step-up)", "recovery-code"),
    ("passkey 9b; sign-up", "passkey"), ("email-code 12", "email-code"), ("sms 1", "other"), (None, "other"),
])
def test_the_factor_kind_is_the_first_word_of_the_reason(reason: str | None, kind: str) -> None:
    assert factor_kind(reason) == kind


def test_recovery_codes_are_counted_as_events_but_not_as_a_second_factor() -> None:
    added = facts_of("authenticator-added", DAY, None, None, "recovery-code: replaced")
    removed = facts_of("authenticator-removed", DAY, None, None, "totp 1")
    assert added == Facts((DailyKey(Metric.AUTHENTICATOR_ADDED, DAY, detail="recovery-code"),), authenticators=0)
    assert removed.authenticators == -1


def test_a_portal_sign_in_is_a_sign_in_but_not_an_app_used() -> None:
    portal = facts_of("login-succeeded", DAY, "google", "broker-portal", "upstream")
    app = facts_of("login-succeeded", DAY, "google", "https://app.example.org/sp", "sso")
    assert portal.counts == (DailyKey(Metric.SIGN_IN, DAY, "google", "broker-portal", "upstream"),)
    assert (portal.signed_in, portal.app_used, app.app_used) == (True, "", "https://app.example.org/sp")
    console = facts_of("login-succeeded", DAY, "city-idp", "broker-console", "upstream")
    assert console.signed_in and console.app_used == ""  # the operator console is the broker's own, too


def test_records_the_analytics_do_not_count_contribute_nothing() -> None:
    assert facts_of("rate-limited", DAY, None, None, "login.callback") == Facts()
    assert facts_of("a-kind-added-later", DAY, "x", "y", "z") == Facts()


def test_dimension_values_are_cut_to_their_column_in_bytes_never_inside_a_character() -> None:
    assert cut("é" * 200, 255) == "é" * 127
    assert cut("short", 255) == "short" and cut(None, 10) == ""
    long_app = "https://app.example.org/" + "x" * 2000
    failed = facts_of("login-failed", DAY, None, long_app, None)
    assert failed.counts == (DailyKey(Metric.LOGIN_FAILED, DAY, "", long_app[:1024], "unknown"),)


def test_a_timed_sign_in_adds_to_its_login_time_bucket_and_keeps_how_as_the_detail() -> None:
    timed = facts_of("login-succeeded", DAY, "google", "app", "upstream; 2400 ms")
    assert timed.counts == (DailyKey(Metric.SIGN_IN, DAY, "google", "app", "upstream"),
                            DailyKey(Metric.LOGIN_TIME, DAY, "google", "app", "0003000"))
    # an answer from the SSO session is not timed; a record from before durations were kept has none
    assert facts_of("login-succeeded", DAY, "google", "app", "sso; 4 ms").counts == (
        DailyKey(Metric.SIGN_IN, DAY, "google", "app", "sso"),)
    assert facts_of("login-succeeded", DAY, "google", "app", "step-up").counts == (
        DailyKey(Metric.SIGN_IN, DAY, "google", "app", "step-up"),)


def test_declined_claims_are_counted_per_app_from_declined_pages_and_unticked_items() -> None:
    declined = facts_of("consent-declined", DAY, None, "app", "declined: email name")
    assert declined.counts == (DailyKey(Metric.CONSENT_DECLINED, DAY, "", "app"),
                               DailyKey(Metric.CLAIM_DECLINED, DAY, "", "app", "email"),
                               DailyKey(Metric.CLAIM_DECLINED, DAY, "", "app", "name"))
    assert facts_of("consent-given", DAY, None, "app", "page; declined: phone_number").counts == (
        DailyKey(Metric.CLAIM_DECLINED, DAY, "", "app", "phone_number"),)
    assert facts_of("consent-given", DAY, None, "app", "page") == Facts()
    assert facts_of("consent-given", DAY, None, "app", "exempt") == Facts()
    # a record from before the claims were named still counts the declined page
    assert facts_of("consent-declined", DAY, None, "app", None).counts == (
        DailyKey(Metric.CONSENT_DECLINED, DAY, "", "app"),)
