"""``broker.core.policy_diff``: what a new release policy changes, in released claims, and what it means."""

from __future__ import annotations

from broker.core.consent import PartyPolicy, ReleasePolicy
from broker.core.policy_diff import DEFAULT, RuleChange, compare

CAP = frozenset({"email", "email_verified", "given_name", "family_name"})
APP = "https://permits.example/sp"


def _codes(before: ReleasePolicy, after: ReleasePolicy, registered: bool = True) -> list[str]:
    return [n.code for n in compare(before, after, CAP, lambda _: registered).notes]


def test_the_same_policy_changes_nothing() -> None:
    policy = ReleasePolicy("1", PartyPolicy(frozenset({"email"})), {APP: PartyPolicy(consent_exempt=True)})
    shown = compare(policy, policy, CAP, lambda _: True)
    assert shown.same and [n.code for n in shown.notes] == ["no-change"]


def test_claims_are_compared_as_released_within_release_claims() -> None:
    before = ReleasePolicy("1", parties={APP: PartyPolicy(None)})
    after = ReleasePolicy("1", parties={APP: PartyPolicy(frozenset({"given_name", "phone_number"}))})

    shown = compare(before, after, CAP, lambda _: True)

    assert shown.changes == (RuleChange(APP, "allow", "every claim of release_claims", "given_name, phone_number",
                                        (), ("email", "email_verified", "family_name")),)
    assert [n.code for n in shown.notes] == ["claims-removed"]


def test_a_new_version_a_rule_added_an_exemption_and_an_unknown_app() -> None:
    before = ReleasePolicy("1")
    after = ReleasePolicy("2", PartyPolicy(frozenset({"email"})), {APP: PartyPolicy(None, consent_exempt=True)})

    shown = compare(before, after, CAP, lambda party: party != APP)

    assert (shown.version_before, shown.version_after) == ("1", "2")
    assert [(c.scope, c.field) for c in shown.changes] == [(DEFAULT, "allow"), (APP, "rule"), (APP, "consent_exempt")]
    assert [n.code for n in shown.notes] == ["version-changed", "claims-removed", "exempt-on", "unknown-app"]
    assert _codes(after, before) == ["version-changed", "claims-added", "exempt-off"]
