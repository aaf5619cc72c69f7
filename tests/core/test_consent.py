"""``broker.core.consent``: when the consent page is shown and what a login may release."""

from __future__ import annotations

from datetime import timedelta

import pytest

from broker.core.consent import (
    Consent,
    ConsentHow,
    ConsentQuestion,
    PartyPolicy,
    ReleasePolicy,
    answer,
    bundle,
    exemption,
    exemption_to_record,
    granted_claims,
    needs_asking,
    with_flags,
)
from tests.core.builders import NOW

APP, FIRST_PARTY = "https://sp.city.example/", "intranet"
POLICY = ReleasePolicy(version="v1", parties={FIRST_PARTY: PartyPolicy(consent_exempt=True)})
QUESTION = ConsentQuestion(wanted=frozenset({"email", "email_verified", "given_name", "family_name"}),
                           required=frozenset({"email", "email_verified"}))


def page(granted: set[str], declined: set[str] = set(), version: str = "v1") -> Consent:  # noqa: B006
    return Consent("acc-1", APP, frozenset(granted), frozenset(declined), version, NOW, ConsentHow.PAGE)


def test_first_login_asks() -> None:
    assert needs_asking(APP, None, QUESTION, POLICY)


def test_an_answer_covering_the_question_is_not_asked_again() -> None:
    given = answer("acc-1", APP, QUESTION, frozenset({"given_name"}), POLICY, NOW)

    assert given.granted == {"email", "given_name"}  # required always, optional as ticked
    assert given.declined == {"family_name"}
    assert not needs_asking(APP, given, QUESTION, POLICY)


def test_a_declined_optional_claim_is_not_released_and_not_asked_again() -> None:
    given = answer("acc-1", APP, QUESTION, frozenset(), POLICY, NOW)

    assert granted_claims(given, QUESTION) == {"email", "email_verified"}
    assert not needs_asking(APP, given, QUESTION, POLICY)


@pytest.mark.parametrize(("consent", "question", "policy", "why"), [
    (page({"email", "given_name"}, {"family_name"}),
     ConsentQuestion(QUESTION.wanted | {"birthdate"}, QUESTION.required), POLICY, "the app asks for more"),
    (page({"email", "given_name", "family_name"}), QUESTION, ReleasePolicy(version="v2"), "a new policy version"),
    (page({"given_name"}, {"email", "family_name"}),
     ConsentQuestion(QUESTION.wanted, frozenset({"email", "email_verified"})), POLICY,
     "a declined claim is required now"),
    (Consent("acc-1", APP, frozenset(), frozenset(), "v1", NOW, ConsentHow.WITHDRAWN), QUESTION, POLICY, "withdrawn"),
    (Consent("acc-1", APP, bundle(QUESTION.wanted), frozenset(), "v1", NOW, ConsentHow.EXEMPT), QUESTION, POLICY,
     "the exemption was removed from the policy"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_asked_again_when(consent: Consent, question: ConsentQuestion, policy: ReleasePolicy, why: str) -> None:
    assert needs_asking(APP, consent, question, policy), why


def test_the_app_can_force_the_page() -> None:
    assert needs_asking(APP, page({"email", "given_name", "family_name"}), QUESTION, POLICY, forced=True)
    assert needs_asking(FIRST_PARTY, None, QUESTION, POLICY, forced=True)


def test_an_exempt_app_is_never_asked_and_the_exemption_is_recorded_once() -> None:
    assert not needs_asking(FIRST_PARTY, None, QUESTION, POLICY)
    assert exemption_to_record(FIRST_PARTY, None, QUESTION, POLICY)
    recorded = exemption("acc-1", FIRST_PARTY, QUESTION, POLICY, NOW)
    assert recorded.how is ConsentHow.EXEMPT and recorded.granted == bundle(QUESTION.wanted)
    assert not exemption_to_record(FIRST_PARTY, recorded, QUESTION, POLICY)
    assert granted_claims(recorded, QUESTION) == QUESTION.wanted
    more = ConsentQuestion(QUESTION.wanted | {"birthdate"}, QUESTION.required)
    assert exemption_to_record(FIRST_PARTY, recorded, more, POLICY)
    assert not exemption_to_record(APP, None, QUESTION, POLICY)  # not exempt: nothing to record


def test_a_citizens_own_answer_stands_for_an_exempt_app() -> None:
    """An exempt app that asked with prompt=consent got the citizen's answer; it is not overridden."""
    given = Consent("acc-1", FIRST_PARTY, frozenset({"email"}), frozenset({"given_name", "family_name"}), "v1",
                    NOW, ConsentHow.PAGE)
    assert not exemption_to_record(FIRST_PARTY, given, QUESTION, POLICY)
    assert granted_claims(given, QUESTION) == {"email", "email_verified"}


def test_nothing_is_released_without_consent_or_after_withdrawal() -> None:
    withdrawn = Consent("acc-1", APP, frozenset(), frozenset(), "v1", NOW + timedelta(days=1), ConsentHow.WITHDRAWN)
    assert granted_claims(None, QUESTION) == frozenset()
    assert granted_claims(withdrawn, QUESTION) == frozenset()


def test_verification_flags_travel_with_their_values() -> None:
    assert bundle(frozenset({"email", "email_verified", "email_relay", "phone_number_verified"})) == {"email"}
    assert with_flags(frozenset({"email", "phone_number"})) == {
        "email", "email_verified", "email_relay", "phone_number", "phone_number_verified"}
    # a consent to the e-mail address releases its flag, never a flag without its value
    assert granted_claims(page({"given_name"}, {"email", "family_name"}), QUESTION) == {"given_name"}


def test_policy_narrows_the_global_cap_per_party() -> None:
    policy = ReleasePolicy(default=PartyPolicy(allow=frozenset({"email", "name"})),
                           parties={APP: PartyPolicy(allow=frozenset({"email", "birthdate"}))})
    cap = frozenset({"email", "name", "given_name"})

    assert policy.allows(APP, cap) == {"email"}  # birthdate is above the cap
    assert policy.allows("other", cap) == {"email", "name"}
    assert ReleasePolicy().allows("other", cap) == cap
