"""The shipped stylesheet (``broker/web/static/broker.css``) against the theme's contrast rules (issue 20).

Its fallback palette is the default theme's (whose pairs ``tests/test_config_theme.py`` checks), the focus
indicator is drawn with the colours the checked pairs name, and every other colour it ships reaches 3:1 on
the page (WCAG 2.1 SC 1.4.11: they are borders).
"""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

import broker
from broker.config.theme import Colours, Theme
from broker.core.contrast import NON_TEXT_MINIMUM, contrast_ratio, parse_colour

CSS = (Path(broker.__file__).parent / "web" / "static" / "broker.css").read_text()
ROOT = CSS[CSS.index(":root {"):CSS.index("}", CSS.index(":root {"))]


def test_the_fallback_palette_is_the_default_theme() -> None:
    for f in fields(Colours):
        prop = "--" + f.name.replace("_", "-")
        assert re.search(rf"{prop}: {re.escape(getattr(Colours(), f.name))};", ROOT), prop
    assert f"--font: {Theme().font};" in ROOT
    assert f"--font: {Theme().font};" in Theme().stylesheet()


def test_the_focus_indicator_uses_the_checked_pairs() -> None:
    """A ring in ink (checked against paper) with a halo in focus (checked against accent and ink)."""
    rule = re.search(r"^:focus-visible \{([^}]*)\}", CSS, re.MULTILINE)
    assert rule is not None
    assert "outline: 3px solid var(--ink)" in rule.group(1) and "0 0 0 6px var(--focus)" in rule.group(1)
    assert "#ffbf47" not in CSS.replace(ROOT, "")  # the old ring on white (1.6:1) is only the halo's default


@pytest.mark.parametrize("literal", sorted(set(re.findall(r"#[0-9a-fA-F]{6}\b", CSS.replace(ROOT, "")))))
def test_every_other_colour_shipped_stands_out_on_the_page(literal: str) -> None:
    colour, paper = parse_colour(literal), parse_colour(Colours().paper)
    assert colour is not None and paper is not None
    assert contrast_ratio(colour, paper) >= NON_TEXT_MINIMUM, literal


def test_there_is_a_colour_to_check() -> None:
    assert re.findall(r"#[0-9a-fA-F]{6}\b", CSS.replace(ROOT, "")) == ["#b00020"]  # the demo banner's border
