"""``broker.core.profile``: the unified profile merged from an account's identities, with provenance."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from datetime import timedelta

import pytest

from broker.core.claims import BY_NAME, ClaimValue
from broker.core.flow import answer_from_session, complete_login
from broker.core.model import LinkedIdentity
from broker.core.profile import (
    NO_CONFIGURED_RULES,
    IdentityClaims,
    MergeRules,
    ProfileValue,
    UnifiedProfile,
    merge,
    rule_problems,
)
from broker.core.release import release
from broker.core.sessions import new_session
from tests.core.builders import NOW, identity, party, request
from tests.core.fakes import InMemoryAccountStore

HOUR = timedelta(hours=1)
LOA = MergeRules(acr_order=("loa1", "loa2", "loa3"))


def linked(upstream: str = "digid", *, used: timedelta = timedelta(0), linked_at: timedelta = -30 * HOUR,
           subject: str = "anna", claims: Mapping[str, ClaimValue] | None = None,
           acr: str | None = "loa2") -> IdentityClaims:
    """An identity of ``upstream`` linked at NOW + ``linked_at``, last used at NOW + ``used``."""
    identity = LinkedIdentity("account-1", f"https://{upstream}.example/", subject, upstream,
                              NOW + linked_at, NOW + used)
    return IdentityClaims(identity, {} if claims is None else claims, acr)


def rules(**per_claim: str) -> MergeRules:
    return MergeRules(rules=per_claim, acr_order=LOA.acr_order)


def described(claims: Mapping[str, ClaimValue]) -> dict[str, ClaimValue]:
    """``claims`` as the profile gives them: an e-mail address comes with ``email_relay`` (false: none of these
    addresses is a relay address)."""
    return {name: value for name, value in claims.items() if name in BY_NAME} | (
        {"email_relay": False} if "email" in claims else {})


def sources(profile: UnifiedProfile) -> dict[str, str]:
    return {name: value.upstream for name, value in profile.values.items()}


@pytest.mark.parametrize("claims", [
    {"email": "anna@example.org", "email_verified": True, "given_name": "Anna"},
    {"email": "anna@example.org", "email_verified": False, "phone_number": "+31 6 1", "phone_number_verified": True},
    {"family_name": "Jansen", "address": {"formatted": "Stationsplein 1"}, "locale": "nl", "birthdate": "1980-01-02"},
    {"email": "anna@example.org", "urn:custom:claim": "dropped", "given_name": "Anna"},
    {},
])
def test_a_single_identity_gives_its_vocabulary_claims(claims: dict[str, ClaimValue]) -> None:
    profile = merge([linked(claims=claims)], NO_CONFIGURED_RULES)
    assert profile.claims() == described(claims)


def test_every_value_carries_its_provenance() -> None:
    digid = linked("digid", used=-HOUR, claims={"email": "anna@example.org", "email_verified": True,
                                                 "given_name": "Anna"}, acr="loa3")
    itsme = linked("itsme", claims={"family_name": "Jansen"}, acr=None)

    profile = merge([digid, itsme], NO_CONFIGURED_RULES)

    assert profile.values == {
        "email": ProfileValue("anna@example.org", "digid", "https://digid.example/", NOW - HOUR, True, "loa3"),
        "email_verified": ProfileValue(True, "digid", "https://digid.example/", NOW - HOUR, True, "loa3"),
        "email_relay": ProfileValue(False, "digid", "https://digid.example/", NOW - HOUR, True, "loa3"),
        "given_name": ProfileValue("Anna", "digid", "https://digid.example/", NOW - HOUR, None, "loa3"),
        "family_name": ProfileValue("Jansen", "itsme", "https://itsme.example/", NOW, None, None),
    }


def test_most_recent_is_the_default_rule() -> None:
    old = linked("digid", used=-HOUR, claims={"given_name": "Anna", "locale": "nl"}, acr="loa3")
    new = linked("itsme", claims={"given_name": "Anne"}, acr="loa1")

    profile = merge([old, new], NO_CONFIGURED_RULES)

    assert profile.claims() == {"given_name": "Anne", "locale": "nl"}  # a claim only the older one has stays
    assert sources(profile) == {"given_name": "itsme", "locale": "digid"}


@pytest.mark.parametrize(("old_verified", "new_verified", "winner"), [
    (True, False, "digid"),  # a verified value beats a newer unverified one
    (True, None, "digid"),  # ... and one whose upstream did not say
    (True, True, "itsme"),  # among verified values, the most recent
    (False, False, "itsme"),  # among unverified values, the most recent
    (None, False, "itsme"),
    (False, True, "itsme"),
])
def test_email_and_phone_default_to_most_recent_verified(old_verified: bool | None, new_verified: bool | None,
                                                         winner: str) -> None:
    def asserted(address: str, phone: str, verified: bool | None) -> dict[str, ClaimValue]:
        claims: dict[str, ClaimValue] = {"email": address, "phone_number": phone}
        if verified is not None:
            claims |= {"email_verified": verified, "phone_number_verified": verified}
        return claims

    old = linked("digid", used=-HOUR, claims=asserted("old@example.org", "+31 1", old_verified))
    new = linked("itsme", claims=asserted("new@example.org", "+31 2", new_verified))

    profile = merge([old, new], NO_CONFIGURED_RULES)

    chosen = old if winner == "digid" else new
    assert profile.claims() == described(chosen.claims)
    assert set(sources(profile).values()) == {winner}


def test_a_flag_always_comes_from_the_identity_of_its_value() -> None:
    verified_old = linked("digid", used=-HOUR, claims={"email": "old@example.org", "email_verified": True})
    silent_new = linked("itsme", claims={"email": "new@example.org"})  # says nothing about verification

    profile = merge([verified_old, silent_new], rules(email="most_recent"))

    assert profile.claims() == {"email": "new@example.org", "email_relay": False}  # never old@'s flag next to new@
    assert profile.values["email"].verified is None
    assert release(profile.claims(), frozenset({"email", "email_verified"})) == {}  # so it is not released


def test_a_flag_without_its_value_vouches_for_nothing() -> None:
    flag_only = linked("digid", claims={"email_verified": True, "phone_number_verified": True, "locale": "nl"})
    assert merge([flag_only], NO_CONFIGURED_RULES).claims() == {"locale": "nl"}


def test_highest_assurance_wins_then_the_most_recent() -> None:
    high = linked("digid", used=-2 * HOUR, claims={"birthdate": "1980-01-02"}, acr="loa3")
    low = linked("itsme", used=-HOUR, claims={"birthdate": "1981-01-02"}, acr="loa2")
    also_high = linked("eherk", used=-3 * HOUR, claims={"birthdate": "1982-01-02"}, acr="loa3")

    assert merge([high, low, also_high], rules(birthdate="highest_assurance")).claims() == {"birthdate": "1980-01-02"}
    assert merge([low], rules(birthdate="highest_assurance")).claims() == {"birthdate": "1981-01-02"}
    assert merge([high, low], NO_CONFIGURED_RULES).claims() == {"birthdate": "1981-01-02"}  # most_recent


@pytest.mark.parametrize("unranked", ["urn:unknown:acr", None])
def test_an_acr_outside_the_order_ranks_lowest(unranked: str | None) -> None:
    lowest = linked("digid", used=-HOUR, claims={"given_name": "Anna"}, acr="loa1")
    unknown = linked("itsme", claims={"given_name": "Anne"}, acr=unranked)

    profile = merge([lowest, unknown], rules(given_name="highest_assurance"))

    assert profile.values["given_name"].upstream == "digid"


def test_preferred_upstream_wins_when_it_has_a_value() -> None:
    city = linked("city-idp", used=-5 * HOUR, claims={"given_name": "Anna", "family_name": "Jansen"})
    city_again = linked("city-idp", used=-4 * HOUR, subject="anna-2", claims={"given_name": "Anna M."})
    social = linked("google", claims={"given_name": "Ann", "family_name": "J.", "locale": "en"})
    configured = rules(given_name="preferred_upstream:city-idp", locale="preferred_upstream:city-idp")

    profile = merge([city, city_again, social], configured)

    assert profile.claims()["given_name"] == "Anna M."  # the most recent of the preferred upstream's values
    assert profile.claims()["family_name"] == "J."  # no rule: most_recent
    assert profile.claims()["locale"] == "en"  # the preferred upstream has none: most_recent
    assert merge([social], configured).claims()["given_name"] == "Ann"


def test_ties_go_to_the_identity_linked_first_then_to_the_smallest_issuer_and_subject() -> None:
    first = linked("itsme", linked_at=-40 * HOUR, claims={"given_name": "First"})
    later = linked("digid", linked_at=-20 * HOUR, claims={"given_name": "Later"})
    same_time_a = linked("digid", subject="a", claims={"given_name": "A"})
    same_time_b = linked("digid", subject="b", claims={"given_name": "B"})

    for order in itertools.permutations([first, later, same_time_a, same_time_b]):
        assert merge(order, NO_CONFIGURED_RULES).claims() == {"given_name": "First"}
    for pair in itertools.permutations([same_time_a, same_time_b]):
        assert merge(pair, NO_CONFIGURED_RULES).claims() == {"given_name": "A"}
    verified: dict[str, ClaimValue] = {"email": "x@example.org", "email_verified": True}
    for pair in itertools.permutations([linked("digid", claims=verified, acr="loa3"),
                                        linked("itsme", claims={**verified, "email": "y@example.org"}, acr="loa3")]):
        profile = merge(pair, rules(email="highest_assurance"))
        assert profile.values["email"].upstream == "digid"  # https://digid... < https://itsme...
        assert profile.values["email_verified"].upstream == "digid"


def test_no_identities_no_profile() -> None:
    assert merge([], LOA) == UnifiedProfile({})
    assert UnifiedProfile({}).claims() == {}


def test_claims_are_vocabulary_names_only() -> None:
    value = ProfileValue("x", "digid", "https://digid.example/", NOW, None, None)
    assert UnifiedProfile({"given_name": value, "urn:custom": value}).claims() == {"given_name": "x"}


def test_rule_for_defaults() -> None:
    assert [NO_CONFIGURED_RULES.rule_for(n) for n in ("email", "phone_number", "given_name")] == [
        "most_recent_verified", "most_recent_verified", "most_recent"]
    assert rules(email="most_recent").rule_for("email") == "most_recent"
    assert hash(rules(email="most_recent")) == hash(rules())  # hashable, like the frozen Settings holding it
    assert rules(email="most_recent") != rules()


@pytest.mark.parametrize(("configured", "acr_order", "problem"), [
    ({"shoe_size": "most_recent"}, (), "unknown claim 'shoe_size'"),
    ({"email_verified": "most_recent"}, (), "'email_verified' has no rule of its own"),
    ({"email": "newest"}, (), "unknown rule 'newest'"),
    ({"email": 3}, (), "unknown rule 3"),
    ({"given_name": "preferred_upstream:"}, (), "unknown rule 'preferred_upstream:'"),
    ({"birthdate": "highest_assurance"}, (), "needs acr_order"),
    ({}, ("loa1", "loa1"), "acr_order names an acr value twice"),
])
def test_rule_problems(configured: dict[str, object], acr_order: tuple[str, ...], problem: str) -> None:
    problems = rule_problems(configured, acr_order)
    assert len(problems) == 1 and problem in problems[0]


def test_good_rules_have_no_problems() -> None:
    good = {"email": "most_recent_verified", "given_name": "preferred_upstream:city-idp",
            "birthdate": "highest_assurance", "locale": "most_recent"}
    assert rule_problems(good, ("loa1", "loa2")) == []


class _WithCityIdentity(InMemoryAccountStore):
    """The fake store, with an older identity at the city's IdP linked to every account (linking is not tested
    here)."""

    def identity_claims(self, account_id: str) -> Sequence[IdentityClaims]:
        city = linked("city-idp", used=-50 * HOUR, linked_at=-60 * HOUR, claims={"given_name": "Anneke"})
        return [*super().identity_claims(account_id), dataclasses.replace(
            city, identity=dataclasses.replace(city.identity, account_id=account_id))]


def test_the_flow_releases_the_profile_merged_under_the_rules_it_is_given() -> None:
    store = _WithCityIdentity()
    allowed = frozenset({"given_name", "email", "email_verified"})
    asked = party(requested_claims=allowed)
    preferred = rules(given_name="preferred_upstream:city-idp")

    default = complete_login(store, asked, request(), identity({"given_name": "Anna"}), NOW, allowed)
    configured = complete_login(store, asked, request(), identity({"given_name": "Anna"}), NOW, allowed,
                                rules=preferred)
    session = new_session(default.account.account_id, "digid", "loa2", NOW, NOW, timedelta(hours=8))
    from_session = answer_from_session(store, asked, request(), session, allowed, rules=preferred)

    assert dict(default.released) == {"given_name": "Anna"}  # most_recent
    assert dict(configured.released) == dict(from_session.released) == {"given_name": "Anneke"}
