"""``broker.core.flow`` step 3 (issue 14): the request's hint, else the party's default upstream, else the only
upstream the party can reach (registered ones and directory IdPs it names by entity id), else the discovery page;
and the operator's minimum assurance for a party (``with_requirements``)."""

from __future__ import annotations

import pytest

from broker.core import errors
from broker.core.assurance import (
    DEFAULT_POLICY,
    EIDAS_HIGH,
    EIDAS_LOW,
    EIDAS_SUBSTANTIAL,
    PASSWORD,
    REFEDS_MFA,
    Comparison,
)
from broker.core.flow import check_upstream_allowed, choose_upstream, with_requirements
from broker.core.model import Protocol, UpstreamParty
from tests.core.builders import DIGID, EHERK, ITSME, party, request
from tests.core.fakes import InMemoryRegistry

#: an IdP known only from federation metadata (the directory): its name is its entity id
FED_IDP = UpstreamParty("https://idp.uni.example/idp", Protocol.SAML, "University", "https://idp.uni.example/idp")
OTHER_FED_IDP = UpstreamParty("https://idp.x.example/", Protocol.SAML, "X", "https://idp.x.example/")
WITH_DIRECTORY = InMemoryRegistry([party()], [DIGID, ITSME, EHERK], directory=[FED_IDP, OTHER_FED_IDP])


@pytest.mark.parametrize(("allowed", "expected"), [
    (("itsme",), ITSME),  # one registered upstream, beside a federation directory
    (("urn:eherk:idp",), EHERK),  # a registered SAML IdP named by its entity id
    (("https://idp.uni.example/idp",), FED_IDP),  # a directory IdP named by entity id
    (("eherk", "urn:eherk:idp"), EHERK),  # the same IdP named twice is one upstream
])
def test_a_party_that_reaches_one_upstream_goes_there_without_discovery(
        allowed: tuple[str, ...], expected: UpstreamParty) -> None:
    choice = choose_upstream(WITH_DIRECTORY, party(allowed_upstreams=allowed), request())

    assert choice.direct == expected


def test_a_party_that_names_no_upstreams_beside_a_directory_has_a_choice_to_make() -> None:
    choice = choose_upstream(WITH_DIRECTORY, party(allowed_upstreams=()), request())

    assert choice.direct is None and choice.candidates == (DIGID, ITSME, EHERK)


def test_the_discovery_page_offers_the_directory_idps_a_party_names() -> None:
    choice = choose_upstream(WITH_DIRECTORY, party(allowed_upstreams=("digid", "https://idp.uni.example/idp")),
                             request())

    assert choice.direct is None and choice.candidates == (DIGID, FED_IDP)


@pytest.mark.parametrize(("allowed", "default", "hints", "expected"), [
    (("digid", "itsme"), "itsme", (), ITSME),  # the default, where discovery would have asked
    ((), "eherk", (), EHERK),  # a default for a party that may use every upstream
    ((), "https://idp.uni.example/idp", (), FED_IDP),  # a directory IdP as the default
    (("digid", "itsme"), "itsme", ("digid",), DIGID),  # the request's own hint comes first
])
def test_the_default_upstream_comes_after_the_hint(allowed: tuple[str, ...], default: str,
                                                   hints: tuple[str, ...], expected: UpstreamParty) -> None:
    choice = choose_upstream(WITH_DIRECTORY, party(allowed_upstreams=allowed, default_upstream=default),
                             request(upstream_hints=hints))

    assert choice.direct == expected


def test_a_hint_the_party_may_not_use_is_refused_even_with_a_default() -> None:
    with pytest.raises(errors.UnknownUpstream):
        choose_upstream(WITH_DIRECTORY, party(allowed_upstreams=("itsme",), default_upstream="itsme"),
                        request(upstream_hints=("https://idp.x.example/",)))


def test_a_default_no_longer_registered_leaves_the_choice_to_the_citizen() -> None:
    choice = choose_upstream(WITH_DIRECTORY, party(allowed_upstreams=("digid", "itsme", "retired"),
                                                   default_upstream="retired"), request())

    assert choice.direct is None and choice.candidates == (DIGID, ITSME)


def test_the_discovery_pages_choice_is_checked_against_the_same_list() -> None:
    restricted = party(allowed_upstreams=("itsme", "https://idp.uni.example/idp"))

    assert check_upstream_allowed(WITH_DIRECTORY, restricted, "https://idp.uni.example/idp") == FED_IDP
    with pytest.raises(errors.UnknownUpstream):
        check_upstream_allowed(WITH_DIRECTORY, restricted, "https://idp.x.example/")


@pytest.mark.parametrize(("acr_values", "comparison", "expected"), [
    ((), Comparison.EXACT, ((EIDAS_SUBSTANTIAL,), Comparison.MINIMUM)),  # asked for nothing
    ((PASSWORD,), Comparison.EXACT, ((EIDAS_SUBSTANTIAL,), Comparison.MINIMUM)),  # asked for less
    ((EIDAS_LOW,), Comparison.MINIMUM, ((EIDAS_SUBSTANTIAL,), Comparison.MINIMUM)),
    ((EIDAS_HIGH,), Comparison.MAXIMUM, ((EIDAS_SUBSTANTIAL,), Comparison.MINIMUM)),  # lets weaker ones pass
    ((EIDAS_SUBSTANTIAL,), Comparison.MINIMUM, ((EIDAS_SUBSTANTIAL,), Comparison.MINIMUM)),  # already enough
    ((EIDAS_HIGH,), Comparison.EXACT, ((EIDAS_HIGH,), Comparison.EXACT)),  # asked for more: kept
    ((REFEDS_MFA,), Comparison.BETTER, ((REFEDS_MFA,), Comparison.BETTER)),  # better than MFA: substantial+
    (("urn:city:own-class",), Comparison.EXACT, (("urn:city:own-class",), Comparison.EXACT)),  # equal only to itself
])
def test_the_operators_minimum_assurance_applies_when_the_request_asks_for_less(
        acr_values: tuple[str, ...], comparison: Comparison, expected: tuple[tuple[str, ...], Comparison]) -> None:
    asked = request(acr_values=acr_values, acr_comparison=comparison)

    applied = with_requirements(party(required_acr=EIDAS_SUBSTANTIAL), asked, DEFAULT_POLICY)

    assert (applied.acr_values, applied.acr_comparison) == expected


def test_without_a_minimum_the_request_is_unchanged() -> None:
    asked = request(acr_values=(PASSWORD,))

    assert with_requirements(party(), asked, DEFAULT_POLICY) is asked



def test_one_registered_saml_idp_in_the_directory_is_one_choice_not_a_discovery_page() -> None:
    eherk_metadata = UpstreamParty("urn:eherk:idp", Protocol.SAML, "eHerkenning", "urn:eherk:idp")
    only_eherk = InMemoryRegistry([party()], [EHERK], directory=[eherk_metadata])
    with_another = InMemoryRegistry([party()], [EHERK], directory=[eherk_metadata, FED_IDP])

    assert choose_upstream(only_eherk, party(allowed_upstreams=()), request()).direct == EHERK
    assert choose_upstream(with_another, party(allowed_upstreams=()), request()).direct is None
