"""The checks of ``tests/test_translations.py``, as functions of a catalogue folder and a template folder, so the
test can prove each one on a throw-away copy (a missing, empty, fuzzy or wrongly-placeholdered translation; an
untranslated template text; a stale .mo) as well as run it on the real ``broker/translations``.

Each check returns a list of problems, one readable line each, naming the string and the language.
"""

from __future__ import annotations

import ast
import io
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po
from jinja2 import Environment

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "broker" / "translations"
TEMPLATES = ROOT / "broker" / "web" / "templates"
FIX = "run `make translations` and translate the new strings"
#: a ``%(name)s`` placeholder (Python's printf-style mapping keys, which Flask-Babel's gettext fills)
PLACEHOLDER = re.compile(r"%\((\w+)\)[#0\- +]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa]")
#: attributes whose literal value a person reads or hears (HTML: title, alt; WAI-ARIA: aria-label; placeholder)
READ_ATTRIBUTES = frozenset({"title", "alt", "aria-label", "placeholder"})
#: what stands for a {{ ... }} or {% ... %} in the text of a template being checked
HOLE = "\ue000"
LETTER = re.compile(r"[^\W\d_]")
ENTITY = re.compile(r"&(?:#\d+|#x[0-9a-fA-F]+|\w+);")
TAG = re.compile(r"<[^<>]*>")
ATTRIBUTE = re.compile(r"""([\w:.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""")


def extracted_ids(out: Path, root: Path = ROOT) -> set[str]:
    """The message ids ``make translations`` extracts now (babel.cfg, ``-k N_``), by running its very command
    with the template written to ``out``."""
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "-q", "extract", "-F", str(root / "babel.cfg"),
                    "-k", "N_", "--no-location", "--sort-output", "-o", str(out), "."],
                   cwd=root, check=True, capture_output=True, timeout=240)
    return message_ids(read_catalogue(out))


def read_catalogue(path: Path, language: str | None = None) -> Catalog:
    with path.open("rb") as f:
        return read_po(f, locale=language)


def message_ids(catalogue: Catalog) -> set[str]:
    return {_text(message.id) for message in catalogue if message.id}


def _text(message_id: str | tuple[str, ...] | list[str]) -> str:
    return message_id if isinstance(message_id, str) else message_id[0]


def languages(folder: Path = TRANSLATIONS) -> list[str]:
    return sorted(p.parent.parent.name for p in folder.glob("*/LC_MESSAGES/messages.po"))


def template_problems(template_ids: set[str], pot: Path) -> list[str]:
    """messages.pot is what extraction gives now: no string missing from it, none left over."""
    committed = message_ids(read_catalogue(pot))
    return ([f"not in messages.pot (new, never extracted): {i!r}; {FIX}" for i in sorted(template_ids - committed)]
            + [f"in messages.pot but no longer in the code: {i!r}; {FIX}" for i in sorted(committed - template_ids)])


def catalogue_problems(pot: Path, folder: Path) -> list[str]:
    """Every language has every message of messages.pot, translated (non-empty, not fuzzy), with the same
    ``%(name)s`` placeholders as the English, and the catalogue itself is not marked fuzzy (``pybabel compile``
    would skip it)."""
    wanted = read_catalogue(pot)
    problems: list[str] = []
    for language in languages(folder):
        catalogue = read_catalogue(folder / language / "LC_MESSAGES" / "messages.po", language)
        if catalogue.fuzzy:
            problems.append(f"[{language}] the catalogue's header is marked fuzzy: pybabel compile skips it")
        for message in wanted:
            if not message.id:
                continue
            found = catalogue.get(message.id, message.context)
            name = _text(message.id)
            if found is None:
                problems.append(f"[{language}] missing: {name!r}; {FIX}")
                continue
            strings = tuple(found.string) if isinstance(found.string, tuple | list) else (found.string or "",)
            if not all(strings):
                problems.append(f"[{language}] not translated: {name!r}; {FIX}")
            elif found.fuzzy:
                problems.append(f"[{language}] fuzzy (a guess to check, not a translation): {name!r}; {FIX}")
            else:
                problems += _placeholder_problems(language, message.id, strings)
    return problems


def _placeholder_problems(language: str, message_id: str | tuple[str, ...] | list[str],
                          strings: tuple[str, ...]) -> list[str]:
    """A translation has the English's placeholders. Of a plural message (ngettext), every form may leave some out
    (Arabic's forms for one and two often do without the number) but add none, and the last form has them all."""
    english = placeholders(message_id)
    name = _text(message_id)
    wrong = [t for t in strings if not placeholders(t) <= english] + (
        [strings[-1]] if placeholders(strings[-1]) != english else [])
    return [f"[{language}] placeholders {sorted(placeholders(t))} differ from the English {sorted(english)}: {name!r}"
            for t in wrong[:1]]


def placeholders(text: str | tuple[str, ...] | list[str]) -> set[str]:
    texts = (text,) if isinstance(text, str) else tuple(text)
    return {m.group(1) for t in texts for m in PLACEHOLDER.finditer(t)}


def compiled_problems(folder: Path) -> list[str]:
    """Each language's messages.mo holds exactly what compiling its messages.po gives now."""
    problems: list[str] = []
    for language in languages(folder):
        messages = folder / language / "LC_MESSAGES"
        catalogue = read_catalogue(messages / "messages.po", language)
        fresh = io.BytesIO()
        write_mo(fresh, catalogue, use_fuzzy=False)
        fresh.seek(0)
        if not (messages / "messages.mo").is_file():
            problems.append(f"[{language}] messages.mo is missing; {FIX}")
            continue
        with (messages / "messages.mo").open("rb") as f:
            committed = read_mo(f)
        if _translations(read_mo(fresh)) != _translations(committed):
            problems.append(f"[{language}] messages.mo is not the compiled messages.po; {FIX}")
    return problems


def _translations(catalogue: Catalog) -> dict[object, object]:
    def frozen(value: object) -> object:
        return tuple(value) if isinstance(value, list | tuple) else value

    return {frozen(message.id): frozen(message.string) for message in catalogue if message.id}


def skeleton(source: str) -> str:
    """A template's literal text, with every ``{{ ... }}`` and ``{% ... %}`` replaced by one ``HOLE`` (Jinja's own
    lexer decides what is literal; comments are dropped)."""
    parts: list[str] = []
    for _line, kind, value in Environment(extensions=["jinja2.ext.i18n"]).lex(source):
        if kind == "data":
            parts.append(value)
        elif kind in ("variable_begin", "block_begin"):
            parts.append(HOLE)
    return "".join(parts)


def untranslated_texts(source: str) -> Iterator[str]:
    """Literal words of a template a person would read: text between tags, and the values of ``READ_ATTRIBUTES``
    and of the label of an ``<input type=submit|reset|button>``. Markup, entities and holes are not words."""
    text = re.sub(r"<!--.*?-->", " ", skeleton(source), flags=re.S)
    # scripts and styles are no text; <pre> and <code> show code and file contents, which stay as they are
    text = re.sub(r"<(script|style|pre|code)\b.*?</\1>", " ", text, flags=re.S | re.I)
    for tag in TAG.findall(text):
        attributes = {m.group(1).lower(): next(g for g in m.groups()[1:] if g is not None)
                      for m in ATTRIBUTE.finditer(tag)}
        button = tag[1:].lower().startswith("input") and attributes.get("type", "").lower() in (
            "submit", "reset", "button")
        for name, value in attributes.items():
            if (name in READ_ATTRIBUTES or (button and name == "value")) and _has_words(value):
                yield f"{name}={value!r} in {tag[:80]!r}"
    for between in TAG.split(text):
        if _has_words(between):
            yield " ".join(between.replace(HOLE, "{{…}}").split())[:120]


def _has_words(text: str) -> bool:
    return bool(LETTER.search(ENTITY.sub("", text.replace(HOLE, " "))))


#: literal texts that are not language, by template: the release policy file's own section name
NOT_LANGUAGE = frozenset({("console_policy_preview.html", "[default]")})


def template_text_problems(folder: Path = TEMPLATES) -> list[str]:
    return [f"{path.name}: text outside {{{{ _(...) }}}}: {found}"
            for path in sorted(folder.glob("*.html"))
            for found in untranslated_texts(path.read_text(encoding="utf-8"))
            if (path.name, " ".join(found.replace("{{…}}", " ").split())) not in NOT_LANGUAGE]


def untranslated_messages(source: str) -> Iterator[tuple[int, str]]:
    """``flash("...")`` and ``errors.Something("...")`` with a literal sentence instead of ``_()``/``N_()``."""
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else ""
        if name != "flash" and owner != "errors":
            continue
        first = node.args[0]
        if isinstance(first, ast.JoinedStr) or (isinstance(first, ast.Constant) and isinstance(first.value, str)
                                                and LETTER.search(first.value)):
            yield node.lineno, ast.unparse(first)[:100]


def code_message_problems(*folders: Path) -> list[str]:
    return [f"{path.relative_to(ROOT)}:{line}: a message shown to a person without _() or N_(): {text}"
            for folder in folders for path in sorted(folder.rglob("*.py"))
            for line, text in untranslated_messages(path.read_text(encoding="utf-8"))]
