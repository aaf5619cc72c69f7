"""Characters that change how text is *read* rather than what it says: line breaks, other control characters and
bidirectional formatting characters. Untrusted text (a SAML ``IssueInstant``, a header, an upstream's claim)
carrying them can forge a log line or make a value display as something else.

- Control characters: Unicode general category ``Cc`` (C0, DEL, C1 including NEL U+0085), plus the line and
  paragraph separators U+2028 and U+2029 (categories ``Zl``/``Zp``), which many viewers break lines on.
- Bidirectional controls, Unicode Standard Annex #9 (TR#9) §2.1-2.6: the embeddings and overrides
  LRE, RLE, PDF, LRO, RLO (U+202A-U+202E), the isolates LRI, RLI, FSI, PDI (U+2066-U+2069) and the implicit
  marks LRM, RLM (U+200E, U+200F) and ALM (U+061C). RLO (U+202E) shows ``moc.live@gpj.exe`` reversed, the
  "Trojan Source" class of tricks (CVE-2021-42574).

``escape`` makes such text safe for one log line; ``normalized_claim`` makes a claim value safe to release.
"""

from __future__ import annotations

import re
import unicodedata

#: TR#9 §2.1-2.6: explicit directional embeddings, overrides, isolates and the implicit directional marks
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
#: line and paragraph separators (Unicode §5.8: treated as line breaks)
LINE_SEPARATORS = frozenset("\u2028\u2029")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_LINE_BREAKS = re.compile(r"\r\n|[\r\n\x0b\x0c\x85\u2028\u2029]")


def is_unsafe(char: str) -> bool:
    """A control character (``Cc``), a line or paragraph separator, or a bidirectional control (TR#9)."""
    return char in BIDI_CONTROLS or char in LINE_SEPARATORS or unicodedata.category(char) == "Cc"


def has_unsafe(text: str) -> bool:
    return any(is_unsafe(char) for char in text)


def _escaped(char: str) -> str:
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape(text: str) -> str:
    """``text`` with every unsafe character written as a visible escape (``\\n``, ``\\r``, ``\\t``, ``\\xHH``,
    ``\\uHHHH``), so it can neither end a log line nor reorder what a terminal shows. Backslashes are left as
    they are: the aim is that one record stays one line, not that the escape can be reversed."""
    if not has_unsafe(text):  # the common case, without building a new string
        return text
    return "".join(_escaped(char) if is_unsafe(char) else char for char in text)


def normalized_claim(text: str, *, multiline: bool = False) -> str:
    """A claim value fit for release (to an app, a page, a SAML attribute): bidirectional controls removed
    (an honest name in Arabic or Hebrew script is laid out by TR#9's implicit rules and needs none); every run
    of other control characters and separators becomes one space; the ends are stripped. With ``multiline``
    (OIDC Core 1.0 §5.1.1: ``address.formatted`` "MAY contain newlines") each line break (CR LF, CR, LF, NEL,
    U+2028) becomes ``\\n`` and the lines are cleaned one by one."""
    if multiline:
        lines = (normalized_claim(line) for line in _LINE_BREAKS.split(text))
        return "\n".join(line for line in lines if line)
    kept: list[str] = []
    for char in text:
        if char in BIDI_CONTROLS:
            continue
        if not is_unsafe(char):
            kept.append(char)
        elif not kept or kept[-1] != " ":
            kept.append(" ")
    return "".join(kept).strip()
