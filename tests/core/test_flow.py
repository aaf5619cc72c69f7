"""``broker.core.flow``: choosing the upstream, completing a login, answering from an SSO session."""

from __future__ import annotations

from datetime import timedelta

import pytest

from broker.core import errors
from broker.core.claims import ClaimValue
from broker.core.flow import (
    answer_from_session,
    check_upstream_allowed,
    choose_upstream,
    complete_login,
    party_for,
)
from broker.core.sessions import new_session
from tests.core.builders import DIGID, EHERK, ITSME, NOW, identity, party, request
from tests.core.fakes import InMemoryAccountStore, InMemoryRegistry

REGISTRY = InMemoryRegistry([party()], [DIGID, ITSME, EHERK])
EVERYTHING = frozenset({"email", "email_verified", "given_name", "family_name", "phone_number", "address"})


@pytest.mark.parametrize(
    ("hints", "chosen"),
    [
        (("itsme",), ITSME),  # by name
        (("https://idp.itsme.example/",), ITSME),  # by issuer
        (("digid",), DIGID),
        (("unknown", "itsme", "digid"), ITSME),  # the first usable hint wins
    ],
)
def test_hint_chooses_an_allowed_upstream(hints: tuple[str, ...], chosen: object) -> None:
    choice = choose_upstream(REGISTRY, party(), request(upstream_hints=hints))
    assert choice.direct == chosen
    assert choice.candidates == (DIGID, ITSME)


@pytest.mark.parametrize("hints", [("eherk",), ("urn:eherk:idp",), ("nothing-like-it",), ("ITSME",)])
def test_hint_for_an_upstream_the_party_may_not_use_fails(hints: tuple[str, ...]) -> None:
    with pytest.raises(errors.UnknownUpstream):
        choose_upstream(REGISTRY, party(), request(upstream_hints=hints))


def test_single_candidate_is_used_directly() -> None:
    choice = choose_upstream(REGISTRY, party(allowed_upstreams=("eherk",)), request())
    assert (choice.direct, choice.candidates) == (EHERK, (EHERK,))


@pytest.mark.parametrize(("allowed", "candidates"), [((), (DIGID, ITSME, EHERK)), (("digid", "itsme"), (DIGID, ITSME))])
def test_several_candidates_go_to_discovery(allowed: tuple[str, ...], candidates: tuple[object, ...]) -> None:
    choice = choose_upstream(REGISTRY, party(allowed_upstreams=allowed), request())
    assert choice.direct is None
    assert choice.candidates == candidates


@pytest.mark.parametrize(
    ("registry", "allowed"),
    [
        (REGISTRY, ("retired-upstream",)),  # a party's upstreams are all gone: never fall back to another one
        (InMemoryRegistry([party()], []), ()),
    ],
)
def test_no_candidate_fails(registry: InMemoryRegistry, allowed: tuple[str, ...]) -> None:
    with pytest.raises(errors.UnknownUpstream):
        choose_upstream(registry, party(allowed_upstreams=allowed), request())


def test_party_for_and_check_upstream_allowed() -> None:
    assert party_for(REGISTRY, request()) == party()
    with pytest.raises(errors.UnknownParty):
        party_for(REGISTRY, request(downstream="https://gone.example/"))
    assert check_upstream_allowed(REGISTRY, party(), "itsme") == ITSME
    with pytest.raises(errors.UnknownUpstream):
        check_upstream_allowed(REGISTRY, party(), "eherk")


def test_first_login_creates_the_account_and_the_next_finds_it() -> None:
    store = InMemoryAccountStore()
    first = complete_login(store, party(), request(), identity(), NOW, EVERYTHING)
    assert first.created_account
    assert first.account == store.get(first.account.account_id)
    later = NOW + timedelta(days=1)
    second = complete_login(store, party(), request(), identity({"email": "new@example.org"}, auth_time=later),
                            later, EVERYTHING)
    assert not second.created_account
    assert second.account == first.account
    assert list(store.accounts) == [first.account.account_id]
    [linked] = store.identities(first.account.account_id)
    assert (linked.first_used, linked.last_used) == (NOW, later)
    # the new address replaces the old one together with its verification flag (see merge_assertions)
    assert store.last_claims(first.account.account_id) == {"email": "new@example.org"}


def test_result_carries_how_the_citizen_signed_in() -> None:
    signed_in = identity(acr="loa3", amr=("hwk", "pin"), auth_time=NOW - timedelta(seconds=30), upstream="itsme")
    result = complete_login(InMemoryAccountStore(), party(), request(acr_values=("loa3",)), signed_in, NOW, EVERYTHING)
    assert (result.upstream, result.acr, result.amr, result.auth_time) == (
        "itsme", "loa3", ("hwk", "pin"), NOW - timedelta(seconds=30))
    assert result.request == request(acr_values=("loa3",))


@pytest.mark.parametrize(
    ("registered", "requested", "policy", "released"),
    [
        # requested = registered for the party or asked in this login; released = requested ∩ policy
        ({"email"}, {"given_name", "phone_number"}, {"email", "given_name", "address"}, {"email", "given_name"}),
        ({"email", "address"}, set(), {"address"}, {"address"}),
        (set(), set(), EVERYTHING, set()),
        ({"email", "given_name"}, set(), frozenset(), set()),
        # names outside the vocabulary are never released, even when requested and allowed
        ({"shoe_size"}, {"email"}, {"shoe_size", "email"}, {"email"}),
        # a requested, allowed claim the upstream did not assert is simply absent
        ({"family_name"}, set(), {"family_name"}, set()),
    ],
)
def test_releases_only_requested_claims_that_policy_allows(
    registered: set[str], requested: set[str], policy: frozenset[str], released: set[str]
) -> None:
    asserted: dict[str, ClaimValue] = {
        "email": "anna@example.org", "given_name": "Anna", "phone_number": "+31 20 123 4567",
        "address": {"formatted": "Main Street 1"}, "email_verified": True, "shoe_size": "38",
    }
    result = complete_login(
        InMemoryAccountStore(), party(requested_claims=frozenset(registered)),
        request(requested_claims=frozenset(requested)), identity(asserted), NOW, frozenset(policy),
    )
    assert dict(result.released) == {name: asserted[name] for name in released}


@pytest.mark.parametrize("reached", ["loa2", None, "LOA3", ""])
def test_insufficient_assurance_is_refused_and_nothing_is_stored(reached: str | None) -> None:
    store = InMemoryAccountStore()
    with pytest.raises(errors.InsufficientAssurance):
        complete_login(store, party(), request(acr_values=("loa3", "loa4")), identity(acr=reached), NOW, EVERYTHING)
    assert store.accounts == {}
    assert store.find_by_identity("https://digid.example/", "subject-anna") is None


def test_insufficient_assurance_does_not_touch_an_existing_account() -> None:
    store = InMemoryAccountStore()
    account = complete_login(store, party(), request(), identity({"email": "old@example.org"}), NOW, EVERYTHING).account
    later = NOW + timedelta(hours=1)
    with pytest.raises(errors.InsufficientAssurance):
        complete_login(store, party(), request(acr_values=("loa3",)),
                       identity({"email": "new@example.org"}, acr="loa2"), later, EVERYTHING)
    assert store.last_claims(account.account_id) == {"email": "old@example.org"}
    assert [i.last_used for i in store.identities(account.account_id)] == [NOW]


def test_answer_from_session_releases_last_claims_for_the_new_party() -> None:
    store = InMemoryAccountStore()
    asserted: dict[str, ClaimValue] = {"email": "anna@example.org", "email_verified": True, "given_name": "Anna",
                                       "family_name": "Jansen"}
    login = complete_login(store, party(), request(), identity(asserted), NOW, EVERYTHING)
    assert dict(login.released) == {"email": "anna@example.org"}
    session = new_session(login.account.account_id, login.upstream, login.acr, login.auth_time, NOW,
                          timedelta(hours=8))

    other_party = party(party_id="portal", requested_claims=frozenset({"given_name", "family_name"}))
    later = request(downstream="portal", requested_claims=frozenset({"email"}))
    answer = answer_from_session(store, other_party, later, session, frozenset({"given_name", "email"}))
    assert dict(answer.released) == {"given_name": "Anna", "email": "anna@example.org"}
    assert answer.account == login.account
    assert (answer.upstream, answer.acr, answer.auth_time) == ("digid", "loa2", NOW)
    assert answer.request == later
    assert not answer.created_account


def test_answer_from_session_whose_account_is_gone_fails() -> None:
    session = new_session("deleted-account", "digid", "loa2", NOW, NOW, timedelta(hours=8))
    with pytest.raises(errors.LoginStateInvalid):
        answer_from_session(InMemoryAccountStore(), party(), request(), session, EVERYTHING)


def test_answer_from_session_reports_the_sessions_sign_in() -> None:
    store = InMemoryAccountStore()
    login = complete_login(store, party(), request(), identity(acr="loa2"), NOW, EVERYTHING)
    session = new_session(login.account.account_id, "itsme", "loa3", NOW - timedelta(minutes=5), NOW,
                          timedelta(hours=1), amr=("fed", "otp", "mfa"))
    answer = answer_from_session(store, party(), request(), session, EVERYTHING)
    assert (answer.upstream, answer.acr, answer.auth_time) == ("itsme", "loa3", NOW - timedelta(minutes=5))
    assert answer.amr == ("fed", "otp", "mfa")  # every app of the session is told how the person signed in


@pytest.mark.parametrize(("asserted", "unverified_email", "released"), [
    ({"email": "a@x", "email_verified": True}, False, {"email": "a@x"}),
    ({"email": "a@x", "email_verified": False}, False, {}),  # Microsoft Entra: never verified (nOAuth)
    ({"email": "a@x"}, False, {}),
    ({"email": "a@x", "email_verified": "true"}, False, {}),  # only the normalized boolean counts
    ({"email": "a@x"}, True, {"email": "a@x"}),  # the operator's explicit choice
])
def test_an_unverified_email_is_not_released_unless_the_operator_says_so(
        asserted: dict[str, ClaimValue], unverified_email: bool, released: dict[str, str]) -> None:
    result = complete_login(InMemoryAccountStore(), party(), request(), identity(asserted), NOW, EVERYTHING,
                            unverified_email)
    assert dict(result.released) == released
