"""What the broker sees of one upstream SAML identity provider from federation metadata.

:class:`IdpEntity` is built by :mod:`broker.registry.idp_metadata` from an ``md:EntityDescriptor`` with an
``md:IDPSSODescriptor`` (SAML 2.0 Metadata §2.4.3) and stored in the compiled index of
:mod:`broker.registry.idp_index` as a plain tuple (:func:`to_record` / :func:`from_record`). Everything in it came
from metadata that passed the source's checks (pinned signature, validUntil); the texts (names, descriptions,
URLs) are still the federation member's own words: escape them when rendering.
"""

from __future__ import annotations

import operator
import unicodedata
from dataclasses import dataclass

__all__ = ["IdpEntity", "fold", "from_record", "to_record"]

#: (lang, text); lang is the xml:lang of the element, "" when absent
LangText = tuple[str, str]
#: (url, width, height, lang or None) of an mdui:Logo
Logo = tuple[str, int, int, str | None]


@dataclass(frozen=True, slots=True)
class IdpEntity:
    """One SAML 2.0 identity provider. Certificates are base64 DER without whitespace."""

    entity_id: str
    source: str
    display_names: tuple[LangText, ...]
    descriptions: tuple[LangText, ...] = ()
    logos: tuple[Logo, ...] = ()
    keywords: tuple[LangText, ...] = ()  # one per keyword; mdui:Keywords writes a space inside one as "+"
    information_url: str | None = None
    sso_services: tuple[tuple[str, str], ...] = ()  # (binding, location)
    slo_services: tuple[tuple[str, str, str | None], ...] = ()  # (binding, location, response_location)
    signing_certs: tuple[str, ...] = ()
    encryption_certs: tuple[str, ...] = ()
    want_authn_requests_signed: bool = False
    name_id_formats: tuple[str, ...] = ()
    entity_attributes: tuple[tuple[str, tuple[str, ...]], ...] = ()
    registration_authority: str | None = None

    def display_name(self, lang: str | None = None) -> str:
        """The display name in ``lang`` (exact, then its primary subtag: ``fr-CA`` -> ``fr``), else English,
        else the first one given, else the entityID."""
        return _pick(self.display_names, lang) or self.entity_id

    def description(self, lang: str | None = None) -> str | None:
        return _pick(self.descriptions, lang)

    def sso_location(self, binding: str) -> str | None:
        return next((loc for b, loc in self.sso_services if b == binding), None)

    def attribute_values(self, name: str) -> tuple[str, ...]:
        """Values of one mdattr:EntityAttributes attribute, e.g. an assurance certification."""
        return next((values for n, values in self.entity_attributes if n == name), ())


def _pick(texts: tuple[LangText, ...], lang: str | None) -> str | None:
    if not texts:
        return None
    if lang:
        wanted = lang.lower()
        primary = wanted.split("-", 1)[0]
        for candidates in (wanted, primary):
            for code, text in texts:
                if code.lower() == candidates:
                    return text
        for code, text in texts:
            if code.lower().split("-", 1)[0] == primary:
                return text
    for code, text in texts:
        if code.lower().split("-", 1)[0] == "en":
            return text
    return texts[0][1]


def fold(text: str) -> str:
    """Case- and accent-insensitive form for search: NFKD, diacritics dropped, casefolded, spaces collapsed
    (``"Université  de Genève"`` -> ``"universite de geneve"``)."""
    if text.isascii():
        return " ".join(text.lower().split())
    stripped = unicodedata.normalize("NFKD", text).translate(_DIACRITICS)
    return " ".join(stripped.casefold().split())


# Combining diacritical marks (U+0300-036F and the supplement/extended blocks): the accents of Latin, Greek and
# Cyrillic letters. Marks that are vowels in other scripts (Devanagari...) are kept: they change the word.
_DIACRITICS = dict.fromkeys([*range(0x300, 0x370), *range(0x1AB0, 0x1B00), *range(0x1DC0, 0x1E00),
                             *range(0x20D0, 0x2100), *range(0xFE20, 0xFE30)])


Record = tuple[object, ...]


def to_record(entity: IdpEntity) -> Record:
    """The entity as a tuple of str/int/bool/None/tuples only (what ``marshal`` stores)."""
    return _GET_FIELDS(entity)


def from_record(record: Record) -> IdpEntity:
    """Inverse of :func:`to_record`; raises ``TypeError``/``ValueError`` on a record of the wrong shape."""
    if not isinstance(record, tuple) or len(record) != len(_FIELDS):
        raise ValueError("not an IdpEntity record")
    return IdpEntity(*record)  # type: ignore[arg-type]


_FIELDS = tuple(IdpEntity.__dataclass_fields__)
_GET_FIELDS = operator.attrgetter(*_FIELDS)
