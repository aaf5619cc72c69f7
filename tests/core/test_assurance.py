"""Levels of assurance on one scale (core.assurance): SAML comparisons, OIDC essential acr, aliases."""

from __future__ import annotations

import pytest

from broker.core.assurance import (
    EIDAS_HIGH,
    EIDAS_LOW,
    EIDAS_SUBSTANTIAL,
    PASSWORD_PROTECTED_TRANSPORT,
    REFEDS_MFA,
    REFEDS_SFA,
    AssurancePolicy,
    Comparison,
    order_problems,
)

POLICY = AssurancePolicy(aliases={"loa3": EIDAS_SUBSTANTIAL, "urn:city:mfa": REFEDS_MFA})


@pytest.mark.parametrize(("actual", "requested", "comparison", "met"), [
    (EIDAS_SUBSTANTIAL, [EIDAS_SUBSTANTIAL], Comparison.EXACT, True),
    (EIDAS_HIGH, [EIDAS_SUBSTANTIAL], Comparison.EXACT, False),
    (EIDAS_HIGH, [EIDAS_SUBSTANTIAL], Comparison.MINIMUM, True),
    (EIDAS_LOW, [EIDAS_SUBSTANTIAL], Comparison.MINIMUM, False),
    (PASSWORD_PROTECTED_TRANSPORT, [REFEDS_MFA], Comparison.MINIMUM, False),
    (EIDAS_SUBSTANTIAL, [REFEDS_MFA], Comparison.MINIMUM, True),
    (EIDAS_SUBSTANTIAL, [EIDAS_SUBSTANTIAL], Comparison.BETTER, False),
    (EIDAS_HIGH, [EIDAS_LOW, EIDAS_SUBSTANTIAL], Comparison.BETTER, True),
    (EIDAS_SUBSTANTIAL, [EIDAS_LOW, EIDAS_SUBSTANTIAL], Comparison.BETTER, False),
    (EIDAS_LOW, [EIDAS_SUBSTANTIAL], Comparison.MAXIMUM, True),
    (EIDAS_HIGH, [EIDAS_SUBSTANTIAL], Comparison.MAXIMUM, False),
    (None, [EIDAS_LOW], Comparison.MINIMUM, False),
    (None, [], Comparison.EXACT, True),
])
def test_saml_comparisons(actual: str | None, requested: list[str], comparison: Comparison, met: bool) -> None:
    assert POLICY.satisfies(actual, requested, comparison) is met


def test_an_unknown_class_is_only_equal_to_itself() -> None:
    assert POLICY.satisfies("urn:x:strong-sounding", ["urn:x:strong-sounding"], Comparison.MINIMUM)
    assert not POLICY.satisfies("urn:x:strong-sounding", [EIDAS_LOW], Comparison.MINIMUM)
    assert not POLICY.satisfies(EIDAS_HIGH, ["urn:x:strong-sounding"], Comparison.MINIMUM)


def test_aliases_map_private_names_on_the_scale() -> None:
    assert POLICY.satisfies("loa3", [EIDAS_SUBSTANTIAL], Comparison.EXACT)
    assert POLICY.satisfies(EIDAS_HIGH, ["loa3"], Comparison.MINIMUM)
    assert POLICY.canonical("urn:city:mfa") == REFEDS_MFA
    assert not POLICY.satisfies("urn:city:mfa", [EIDAS_SUBSTANTIAL], Comparison.MINIMUM)


def test_an_oidc_client_is_told_one_of_the_values_it_required() -> None:
    """OIDC Core §5.5.1.1: an essential acr is answered with one of the requested values."""
    requested = [EIDAS_LOW, EIDAS_SUBSTANTIAL]
    assert POLICY.reported(EIDAS_HIGH, requested, Comparison.MINIMUM, name_a_requested_value=True) == EIDAS_SUBSTANTIAL
    assert POLICY.reported(EIDAS_HIGH, requested, Comparison.MINIMUM, name_a_requested_value=False) == EIDAS_HIGH
    assert POLICY.reported("loa3", [], Comparison.EXACT, name_a_requested_value=True) == EIDAS_SUBSTANTIAL


def test_comparison_parse_refuses_other_words() -> None:
    assert Comparison.parse(None) is Comparison.EXACT
    assert Comparison.parse("minimum") is Comparison.MINIMUM
    with pytest.raises(ValueError):
        Comparison.parse("at least")


def test_order_problems() -> None:
    assert order_problems([EIDAS_LOW, EIDAS_HIGH], {"loa3": EIDAS_SUBSTANTIAL}) == []
    assert order_problems([EIDAS_LOW, EIDAS_LOW], {}) == ["order names a value twice"]
    assert order_problems([EIDAS_LOW], {EIDAS_LOW: EIDAS_HIGH, "a": "b", "b": EIDAS_HIGH}) == [
        f"alias {EIDAS_LOW!r} is itself in the order", "alias 'a' points at another alias 'b'"]


# -- step-up: what a second factor at the broker reaches (issue 17) -------------------------------------------

@pytest.mark.parametrize(("upstream", "reached"), [
    (None, REFEDS_MFA),  # a social login that says nothing
    (REFEDS_SFA, REFEDS_MFA),
    ("urn:unknown:class", REFEDS_MFA),  # outside the scale: only the factor's level is known to hold
    (EIDAS_HIGH, EIDAS_HIGH),  # never lower than what the upstream gave
    ("loa3", EIDAS_SUBSTANTIAL),  # an alias of a stronger level is kept, by its canonical name
])
def test_a_second_factor_reaches_its_level_or_keeps_a_stronger_one(upstream: str | None, reached: str) -> None:
    assert POLICY.with_second_factor(upstream) == reached


def test_without_a_second_factor_level_nothing_is_stepped_up() -> None:
    off = AssurancePolicy(second_factor_level=None)

    assert off.with_second_factor(REFEDS_SFA) == REFEDS_SFA
    assert not off.step_up_helps(REFEDS_SFA, [REFEDS_MFA], Comparison.MINIMUM)


@pytest.mark.parametrize(("upstream", "requested", "comparison", "helps"), [
    (None, [REFEDS_MFA], Comparison.MINIMUM, True),
    (REFEDS_SFA, [REFEDS_MFA], Comparison.EXACT, True),
    (REFEDS_MFA, [REFEDS_MFA], Comparison.MINIMUM, False),  # met already
    (None, [EIDAS_HIGH], Comparison.MINIMUM, False),  # a factor at the broker does not make eIDAS high
    (None, [REFEDS_SFA], Comparison.EXACT, False),  # the stepped level is not the one asked for
])
def test_step_up_helps_only_when_it_turns_a_miss_into_a_match(upstream: str | None, requested: list[str],
                                                              comparison: Comparison, helps: bool) -> None:
    assert POLICY.step_up_helps(upstream, requested, comparison) is helps
