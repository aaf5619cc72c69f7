"""Levels of assurance on one scale (core.assurance): SAML comparisons, OIDC essential acr, aliases."""

from __future__ import annotations

import pytest

from broker.core.assurance import (
    EIDAS_HIGH,
    EIDAS_LOW,
    EIDAS_SUBSTANTIAL,
    PASSWORD_PROTECTED_TRANSPORT,
    REFEDS_MFA,
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
