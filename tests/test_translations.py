"""CI's translation check (issue 20, "English only"): nothing a person reads escapes translation, and no catalogue
lacks a message.

- ``messages.pot`` is exactly what ``pybabel extract -F babel.cfg -k N_`` gives now (``make translations``);
- every language of ``broker/translations`` translates every message: not empty, not fuzzy, with the English's
  ``%(name)s`` placeholders, and its compiled ``messages.mo`` is current;
- no template has literal text (or a literal ``title``/``alt``/``aria-label``/``placeholder``, or a submit input's
  label) outside ``{{ _() }}``, found with Jinja's own lexer;
- no ``flash()`` or core error (``errors.X("...")``) in the web layer, the journeys or the core carries an
  unmarked sentence.

Each check is proved on a throw-away catalogue too, where it must pass on a complete one and name the string and
the language of each defect.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

from tests.translations_support import (
    ROOT,
    TRANSLATIONS,
    catalogue_problems,
    code_message_problems,
    compiled_problems,
    extracted_ids,
    languages,
    message_ids,
    read_catalogue,
    template_problems,
    template_text_problems,
    untranslated_messages,
    untranslated_texts,
)

POT = TRANSLATIONS / "messages.pot"


def _report(problems: list[str]) -> str:
    return f"{len(problems)} problem(s):\n" + "\n".join(problems[:60])


# -- the real catalogues ---------------------------------------------------------------------------------------

def test_the_broker_has_english_german_french_and_arabic() -> None:
    assert languages() == ["ar", "de", "fr"]


def test_messages_pot_is_what_extraction_gives_now(tmp_path: Path) -> None:
    problems = template_problems(extracted_ids(tmp_path / "extracted.pot"), POT)
    assert not problems, _report(problems)


def test_every_language_translates_every_message() -> None:
    problems = catalogue_problems(POT, TRANSLATIONS)
    assert not problems, _report(problems)


def test_the_compiled_catalogues_are_current() -> None:
    problems = compiled_problems(TRANSLATIONS)
    assert not problems, _report(problems)


def test_no_template_text_escapes_translation() -> None:
    problems = template_text_problems()
    assert not problems, _report(problems)


def test_no_message_in_the_code_escapes_translation() -> None:
    broker = ROOT / "broker"
    problems = code_message_problems(broker / "web", broker / "journeys", broker / "core")
    assert not problems, _report(problems)


# -- the checks themselves, on throw-away catalogues -------------------------------------------------------------

def _dummy(message_id: str | tuple[str, ...] | list[str]) -> str | tuple[str, ...]:
    """A translation that keeps every placeholder: the English in brackets."""
    return f"⟦{message_id}⟧" if isinstance(message_id, str) else tuple(f"⟦{m}⟧" for m in message_id)


def _complete_copy(folder: Path, language: str = "xx") -> Path:
    """``folder`` with messages.pot and one language translating all of it, compiled."""
    folder.mkdir(parents=True)
    shutil.copy(POT, folder / "messages.pot")
    template = read_catalogue(POT)
    catalogue = Catalog(locale="de", fuzzy=False)  # a real locale for the plural rules; the folder names it "xx"
    for message in template:
        if message.id:
            catalogue.add(message.id, _dummy(message.id), flags=message.flags - {"fuzzy"})
    _write(folder, language, catalogue)
    return folder


def _write(folder: Path, language: str, catalogue: Catalog, *, compile_it: bool = True) -> None:
    messages = folder / language / "LC_MESSAGES"
    messages.mkdir(parents=True, exist_ok=True)
    with (messages / "messages.po").open("wb") as f:
        write_po(f, catalogue)
    if compile_it:
        with (messages / "messages.mo").open("wb") as f:
            write_mo(f, catalogue)


def _read(folder: Path, language: str = "xx") -> Catalog:
    with (folder / language / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return read_po(f)


def _a_message_with(template: Catalog, placeholder: bool) -> str:
    return next(str(m.id) for m in template if isinstance(m.id, str) and m.id and ("%(" in m.id) == placeholder)


def test_a_complete_catalogue_passes(tmp_path: Path) -> None:
    folder = _complete_copy(tmp_path / "t")
    assert catalogue_problems(folder / "messages.pot", folder) == []
    assert compiled_problems(folder) == []


def test_each_kind_of_missing_translation_is_named_with_its_language(tmp_path: Path) -> None:
    folder = _complete_copy(tmp_path / "t")
    template = read_catalogue(POT)
    plain = [str(m.id) for m in template if isinstance(m.id, str) and m.id and "%(" not in m.id][:3]
    with_placeholder = _a_message_with(template, True)
    catalogue = _read(folder)
    del catalogue[plain[0]]
    catalogue[plain[1]].string = ""
    catalogue[plain[2]].flags.add("fuzzy")
    catalogue[with_placeholder].string = "⟦a translation that lost its placeholders⟧"
    _write(folder, "xx", catalogue)
    problems = catalogue_problems(folder / "messages.pot", folder)
    assert problems == sorted(problems, key=lambda p: [str(m.id) for m in template].index(
        next(str(m.id) for m in template if m.id and repr(str(m.id)) in p)))  # in the template's order
    assert f"[xx] missing: {plain[0]!r}; run `make translations` and translate the new strings" in problems
    assert f"[xx] not translated: {plain[1]!r}; run `make translations` and translate the new strings" in problems
    assert any(p.startswith("[xx] fuzzy") and repr(plain[2]) in p for p in problems)
    assert any(p.startswith("[xx] placeholders [] differ") and repr(with_placeholder) in p for p in problems)
    assert len(problems) == 4


def test_a_catalogue_marked_fuzzy_is_refused(tmp_path: Path) -> None:
    folder = _complete_copy(tmp_path / "t")
    catalogue = _read(folder)
    catalogue.fuzzy = True
    _write(folder, "xx", catalogue)
    assert catalogue_problems(folder / "messages.pot", folder) == [
        "[xx] the catalogue's header is marked fuzzy: pybabel compile skips it"]


def test_a_stale_or_missing_mo_is_refused(tmp_path: Path) -> None:
    folder = _complete_copy(tmp_path / "t")
    catalogue = _read(folder)
    first = next(m for m in catalogue if m.id)
    first.string = _dummy("changed after compiling")
    _write(folder, "xx", catalogue, compile_it=False)
    assert compiled_problems(folder) == [
        "[xx] messages.mo is not the compiled messages.po; run `make translations` and translate the new strings"]
    (folder / "xx" / "LC_MESSAGES" / "messages.mo").unlink()
    assert compiled_problems(folder) == [
        "[xx] messages.mo is missing; run `make translations` and translate the new strings"]


def test_a_template_out_of_date_is_refused(tmp_path: Path) -> None:
    committed = message_ids(read_catalogue(POT))
    gone = sorted(committed)[0]
    problems = template_problems((committed - {gone}) | {"A sentence added without make translations."}, POT)
    assert problems == [
        "not in messages.pot (new, never extracted): 'A sentence added without make translations.'; "
        "run `make translations` and translate the new strings",
        f"in messages.pot but no longer in the code: {gone!r}; run `make translations` and translate the new strings"]


@pytest.mark.parametrize(("source", "found"), [
    ("<p>Hello</p>", ["Hello"]),
    ('<p>{{ _("Hello") }}, {{ name }}!</p>', []),
    ("<p>Dear {{ name }}</p>", ["Dear {{…}}"]),
    ('<img src="x.png" alt="City logo">', ["alt='City logo' in '<img src=\"x.png\" alt=\"City logo\">'"]),
    ('<img src="x.png" alt="">', []),
    ('<a href="/" title="Home">{{ _("Home") }}</a>', ["title='Home' in '<a href=\"/\" title=\"Home\">'"]),
    ('<nav aria-label="Language">{{ x }}</nav>', ["aria-label='Language' in '<nav aria-label=\"Language\">'"]),
    ('<input type="search" placeholder="Search">', ["placeholder='Search' in '<input type=\"search\" "
                                                    "placeholder=\"Search\">'"]),
    ('<input type="submit" value="Send">', ["value='Send' in '<input type=\"submit\" value=\"Send\">'"]),
    ('<button type="submit" name="decision" value="allow">{{ _("Allow") }}</button>', []),  # the value is data
    ('<input type="hidden" name="a" value="abc">', []),
    ("<p>{{ a }} &middot; {{ b }} · 42 &#8594;</p>", []),  # entities, punctuation and numbers are no words
    ("{# A comment #}<!-- A note --><pre>{\"a\": 1}</pre><code>broker run</code>", []),
    ('<p lang="{{ l }}" class="brand note">{% if x %}{{ _("Yes") }}{% else %}{{ _("No") }}{% endif %}</p>', []),
    ("<p>{% if x %}Yes{% endif %}</p>", ["{{…}}Yes{{…}}"]),
    ("<p>Grüße</p>", ["Grüße"]),
])
def test_the_template_check(source: str, found: list[str]) -> None:
    assert list(untranslated_texts(source)) == found


def test_the_code_check() -> None:
    source = ('flash("Saved.")\nflash(_("Saved."))\nraise errors.InvalidRequest("No such app.", detail="x")\n'
              'raise errors.InvalidRequest(N_("No such app."))\nraise errors.InvalidRequest(detail="log only")\n'
              'raise errors.LoginRefused(f"Wait {n} minutes")\nraise errors.UnknownUpstream()\n')
    assert [line for line, _ in untranslated_messages(source)] == [1, 3, 6]
