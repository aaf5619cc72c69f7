"""WCAG 2.1 contrast ratio (``broker.core.contrast``) against values the W3C and WebAIM publish."""

from __future__ import annotations

import pytest

from broker.core.contrast import NON_TEXT_MINIMUM, TEXT_MINIMUM, Colour, contrast_ratio, meets, parse_colour


def colour(text: str) -> Colour:
    parsed = parse_colour(text)
    assert parsed is not None, text
    return parsed


@pytest.mark.parametrize(("fore", "back", "ratio"), [
    ("#000000", "#ffffff", 21.0),  # the largest ratio there is
    ("#ffffff", "#ffffff", 1.0),
    ("#767676", "#ffffff", 4.54),  # the lightest grey that passes 4.5:1 on white
    ("#777777", "#ffffff", 4.48),  # one step lighter fails
    ("#ffbf47", "#ffffff", 1.64),  # the broker's old focus ring on white (issue 20)
    ("#0b4f8a", "#ffffff", 8.40),
    ("#949494", "#ffffff", 3.03),  # passes 3:1 for non-text, fails 4.5:1 for text
])
def test_ratios(fore: str, back: str, ratio: float) -> None:
    assert contrast_ratio(colour(fore), colour(back)) == pytest.approx(ratio, abs=0.005)
    assert contrast_ratio(colour(back), colour(fore)) == pytest.approx(ratio, abs=0.005)  # order does not matter


def test_minimums_are_compared_unrounded() -> None:
    assert meets(colour("#767676"), colour("#fff"), TEXT_MINIMUM)
    assert not meets(colour("#777777"), colour("#fff"), TEXT_MINIMUM)  # 4.48 is not "about 4.5"
    assert meets(colour("#949494"), colour("#fff"), NON_TEXT_MINIMUM)
    assert not meets(colour("#949494"), colour("#fff"), TEXT_MINIMUM)


@pytest.mark.parametrize(("text", "expected"), [
    ("#fff", Colour(255, 255, 255)), ("#FFBF47", Colour(255, 191, 71)), (" #0b4f8a ", Colour(11, 79, 138)),
])
def test_parse(text: str, expected: Colour) -> None:
    assert parse_colour(text) == expected


@pytest.mark.parametrize("text", ["white", "fff", "#ffff", "#fffffff", "rgb(0,0,0)", "#ffffff80", "#ggg", "",
                                  "#fff;} body{x:y"])
def test_only_hex_colours_are_accepted(text: str) -> None:
    assert parse_colour(text) is None


def test_hex_is_the_safe_form() -> None:
    assert colour("#ABC").hex == "#aabbcc"
