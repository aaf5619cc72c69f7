"""The one form in which e-mail addresses are compared (link offers, ``[linking] auto_link_by_email``).

Two verified addresses lead to a link offer only when they are *the same address*; an address that merely
looks like another (Cyrillic U+0430 for Latin ``a``, fullwidth U+FF41, the Kelvin sign U+212A for ``K``, an
invisible bidirectional mark) must never match it. The canonical form therefore folds only what is the same
address by definition, and nothing that is only similar:

- **NFC, as given** (RFC 6532 §3.1: internationalized addresses SHOULD be NFC). An address that is not already
  NFC gets no form: normalising would map the Kelvin sign U+212A onto ``K`` and the Ohm sign onto ``Ω``
  (singleton canonical decompositions), characters a person sees as look-alikes of others.
- **Not NFKC, not Unicode case folding.** NFKC maps compatibility characters onto ordinary ones (fullwidth
  letters, U+212F SCRIPT SMALL E, ligatures), and ``str.lower``/``casefold`` map the Kelvin sign to ``k``,
  U+0130 to ``i`` + U+0307, ``ß`` to ``ss``: each turns two different strings into one, the confusable match
  that UTS #39 §4 (Confusable Detection) is about; its *skeletons* detect look-alikes, they never identify.
  RFC 8265's UsernameCaseMapped profile (§3.3) does map width and case and leaves confusable characters to
  the application (its security considerations); to decide that two people's addresses are one, the broker
  takes the stricter identity: a missed offer costs a click, a wrong one an account.
- **ASCII case** is folded: in the local part (RFC 5321 §2.4 lets a server treat it case-sensitively, but no
  provider the broker trusts does, and the broker compared lower-cased addresses before) and in the domain
  (DNS names are case-insensitive, RFC 4343). Only ``A``-``Z`` are folded.
- **The domain** is compared as its IDNA A-label form (RFC 5890 §2.3.2.1, by Python's IDNA 2003 ToASCII,
  RFC 3490 §4.1), so ``münchen.de`` and ``xn--mnchen-3ya.de`` are one domain. A Unicode domain that ToASCII
  would change beyond that (nameprep maps fullwidth and compatibility characters, RFC 3491) is not canonical
  and gets no form at all, so it matches nothing.
- **Nothing unsafe**: whitespace, a control or a bidirectional character (``broker.core.unsafe_text``), no
  ``@``, more than one ``@`` (a quoted local part, RFC 5321 §4.1.2), or an empty part: no form, no match.

Non-ASCII local parts are kept as they are: two of them match only when they are the same code points.
"""

from __future__ import annotations

import unicodedata

from broker.core.unsafe_text import has_unsafe

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def canonical_email(address: str) -> str | None:
    """The form two addresses are compared in, or None when ``address`` has none (then it matches nothing)."""
    if not address or has_unsafe(address) or any(char.isspace() for char in address):
        return None
    if not unicodedata.is_normalized("NFC", address):
        return None
    local, at, domain = address.partition("@")
    if not at or not local or not domain or "@" in domain:
        return None
    canonical_domain = _canonical_domain(domain.translate(_ASCII_LOWER))
    if canonical_domain is None:
        return None
    return f"{local.translate(_ASCII_LOWER)}@{canonical_domain}"


def _canonical_domain(domain: str) -> str | None:
    """The domain's A-label form; None when ToASCII would map any character to another (look-alikes)."""
    if domain.isascii():
        return domain if all(domain.split(".")) else None
    try:
        ascii_form = domain.encode("idna").decode("ascii")
        round_trip = ascii_form.encode("ascii").decode("idna")
    except UnicodeError:
        return None
    if round_trip != domain:  # nameprep changed something: fullwidth, compatibility or upper-case letters
        return None
    return ascii_form.translate(_ASCII_LOWER)


def is_another_address(before: object, verified_now: str | None) -> bool:
    """Whether ``verified_now``, the address an identity asserts verified at this sign-in, is another address
    than ``before``, the one it asserted last time, verified or not (RISC 1.0 §2.5 ``identifier-changed``). Only
    a verified address counts as the new one, so an address asserted unverified first and verified at a later
    sign-in is not reported; no address before is a first address, not a change. Two addresses with a canonical
    form are compared in it; otherwise exactly."""
    if verified_now is None or not isinstance(before, str) or not before:
        return False
    old, new = canonical_email(before), canonical_email(verified_now)
    if old is not None and new is not None:
        return old != new
    return before != verified_now
