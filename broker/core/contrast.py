"""Colour contrast as WCAG 2.1 defines it: sRGB colours, relative luminance and the contrast ratio.

- Relative luminance (WCAG 2.1, definition "relative luminance"): each sRGB channel C8bit/255 is linearised as
  ``C/12.92`` when ``C <= 0.04045`` (the value in the W3C note), else ``((C+0.055)/1.055) ** 2.4``; then
  ``L = 0.2126 * R + 0.7152 * G + 0.0722 * B``.
- Contrast ratio (definition "contrast ratio"): ``(L1 + 0.05) / (L2 + 0.05)``, L1 the lighter; 1 to 21.
- Success criterion 1.4.3 (Contrast, Minimum) asks at least 4.5:1 for text on its background; 1.4.11 (Non-text
  Contrast) asks 3:1 for the visual boundaries of controls and for focus indicators against adjacent colours.

Only the ``#rgb`` and ``#rrggbb`` forms are accepted: a theme's colours are data the operator writes, and a
narrow form is also one that can go into a stylesheet as it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: WCAG 2.1 SC 1.4.3: text (below the large-text size) on its background
TEXT_MINIMUM = 4.5
#: WCAG 2.1 SC 1.4.11: control boundaries and focus indicators against adjacent colours
NON_TEXT_MINIMUM = 3.0

_HEX = re.compile(r"#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})")


@dataclass(frozen=True)
class Colour:
    """An sRGB colour, 8 bits a channel."""

    red: int
    green: int
    blue: int

    @property
    def hex(self) -> str:
        """The ``#rrggbb`` form (lower case), safe to write into a stylesheet."""
        return f"#{self.red:02x}{self.green:02x}{self.blue:02x}"


def parse_colour(text: str) -> Colour | None:
    """``#rgb`` or ``#rrggbb``; None for anything else (names, ``rgb()``, alpha)."""
    if not isinstance(text, str) or not _HEX.fullmatch(text.strip()):
        return None
    digits = text.strip()[1:]
    if len(digits) == 3:
        digits = "".join(d * 2 for d in digits)
    return Colour(int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16))


def _linear(channel: int) -> float:
    c = channel / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def relative_luminance(colour: Colour) -> float:
    """WCAG 2.1 relative luminance: 0 for black, 1 for white."""
    return 0.2126 * _linear(colour.red) + 0.7152 * _linear(colour.green) + 0.0722 * _linear(colour.blue)


def contrast_ratio(a: Colour, b: Colour) -> float:
    """WCAG 2.1 contrast ratio ``(L1 + 0.05) / (L2 + 0.05)``, the lighter colour's luminance as L1."""
    light, dark = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def meets(a: Colour, b: Colour, minimum: float) -> bool:
    """Whether the pair reaches ``minimum``. WCAG compares the ratio itself, unrounded: 4.499:1 fails 4.5:1."""
    return contrast_ratio(a, b) >= minimum
