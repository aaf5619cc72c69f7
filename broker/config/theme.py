"""``[theme]``: the city's look as data, for the whole instance and per app (issue 20), read once at start-up.

Colours, a font stack, a logo, the service name in the header, a footer line and footer links; ``[[theme.apps]]``
entries override any of them for one app (``app``: its SAML entity ID or OIDC client_id) on the pages of that
app's logins. The pages receive a theme as CSS custom properties in a small generated stylesheet of the broker's
own origin (``broker.web.theme``), so the Content-Security-Policy stays ``style-src 'self'``.

Every colour pair the pages use is checked with WCAG 2.1's contrast ratio (``broker.core.contrast``): text on
its background at least 4.5:1 (SC 1.4.3), the focus indicator and control boundaries at least 3:1 against
adjacent colours (SC 1.4.11). A theme that fails is refused, naming the pair and its ratio.

Logos are files in ``THEME_DIR/static/``, never remote addresses: they are served from the broker's origin (no
CSP change, and no third party learns who opens a sign-in page), and a missing file is found at start-up.
Texts are a string, or a table of language code to string (``{en = "...", de = "..."}``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path, PurePosixPath
from typing import Any

from broker.config.reader import Reader
from broker.core.contrast import NON_TEXT_MINIMUM, TEXT_MINIMUM, contrast_ratio, parse_colour

#: (language, text) pairs; language "" is the text for every language not listed
Text = tuple[tuple[str, str], ...]
_LANG = re.compile(r"[a-z]{2,3}")
_FONT = re.compile(r"[A-Za-z0-9 ,\"'-]{1,200}")
_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
MAX_TEXT = 200


@dataclass(frozen=True)
class Colours:
    """The palette, ``#rrggbb``. ``focus`` is the halo around a dark ring in ``ink`` (the GOV.UK pattern)."""

    accent: str = "#0b4f8a"
    accent_text: str = "#ffffff"
    ink: str = "#1b1b1b"
    paper: str = "#ffffff"
    link: str = "#0b4f8a"
    focus: str = "#ffbf47"


#: (foreground, background, minimum, WCAG 2.1 rule and where the pages use the pair)
PAIRS: tuple[tuple[str, str, float, str], ...] = (
    ("ink", "paper", TEXT_MINIMUM, "SC 1.4.3, text on the page; SC 1.4.11, the focus ring on the page"),
    ("link", "paper", TEXT_MINIMUM, "SC 1.4.3, links on the page"),
    ("accent_text", "accent", TEXT_MINIMUM, "SC 1.4.3, header and button text"),
    ("accent", "paper", NON_TEXT_MINIMUM, "SC 1.4.11, a button's boundary against the page"),
    ("focus", "accent", NON_TEXT_MINIMUM, "SC 1.4.11, the focus halo on the header and on buttons"),
    ("ink", "focus", TEXT_MINIMUM, "SC 1.4.3, a focused link's text on the focus colour; SC 1.4.11, the ring "
                                   "against its halo"),
)


def contrast_problems(colours: Colours) -> list[str]:
    """Every pair of ``PAIRS`` under its minimum, with the ratio (rounded, but never up to the minimum: 4.497
    reads 4.49, not 4.5)."""
    found = []
    for fore, back, minimum, rule in PAIRS:
        a, b = parse_colour(getattr(colours, fore)), parse_colour(getattr(colours, back))
        if a is None or b is None:
            continue
        ratio = contrast_ratio(a, b)
        if ratio < minimum:
            shown = round(ratio, 2) if round(ratio, 2) < minimum else int(ratio * 100) / 100
            found.append(f"{fore} {a.hex} on {back} {b.hex} has contrast {shown:.2f}:1, under the {minimum:g}:1 "
                         f"of WCAG 2.1 {rule}")
    return found


@dataclass(frozen=True)
class FooterLink:
    label: Text
    url: str


@dataclass(frozen=True)
class Theme:
    colours: Colours = field(default_factory=Colours)
    font: str = "system-ui, sans-serif"
    #: a file in ``THEME_DIR/static/`` (a relative path), shown in the header with the service name as alt text
    logo: str | None = None
    #: empty: ``[broker] brand_name``
    service_name: Text = ()
    footer_text: Text = ()
    footer_links: tuple[FooterLink, ...] = ()
    #: upstream name -> a file in ``THEME_DIR/static/``, its logo on the discovery page
    upstream_logos: tuple[tuple[str, str], ...] = ()

    def stylesheet(self) -> str:
        """The theme as CSS custom properties (every value was validated: colours ``#rrggbb``, font plain)."""
        c = self.colours
        return (f":root {{ --accent: {c.accent}; --accent-text: {c.accent_text}; --ink: {c.ink}; "
                f"--paper: {c.paper}; --link: {c.link}; --focus: {c.focus}; --font: {self.font}; }}\n")

    @property
    def stylesheet_name(self) -> str:
        """A name that changes when the stylesheet does, so it can be cached for good."""
        return hashlib.sha256(self.stylesheet().encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ThemeSettings:
    site: Theme = field(default_factory=Theme)
    #: (app's entity ID or client_id, its theme: the site's with the app's overrides)
    apps: tuple[tuple[str, Theme], ...] = ()

    def for_app(self, app: str | None) -> Theme:
        """The theme of a page of ``app``'s login; the site's for any other page or app."""
        return dict(self.apps).get(app, self.site) if app else self.site

    def stylesheets(self) -> dict[str, str]:
        return {t.stylesheet_name: t.stylesheet() for t in (self.site, *(t for _, t in self.apps))}


def text_in(text: Text, lang: str, default: str = "") -> str:
    """The text for ``lang`` ("de" from "de-AT"), else its language-neutral form, else English, else the first."""
    by_lang = dict(text)
    for key in (lang.split("-")[0].split("_")[0].lower(), "", "en"):
        if key in by_lang:
            return by_lang[key]
    return text[0][1] if text else default


# -- reading ----------------------------------------------------------------------------------------------------

KEYS = ("colours", "font", "logo", "service_name", "footer_text", "footer_links", "upstream_logos")


def theme_section(read: Reader, theme_dir: Path | None) -> ThemeSettings:
    """``[theme]`` and its ``[[theme.apps]]``; every problem goes to ``read.problems``."""
    table = {key: read.setting("theme", key, None) for key in (*KEYS, "apps")}
    problems: list[str] = []
    site = _theme(Theme(), {k: v for k, v in table.items() if v is not None and k != "apps"}, theme_dir,
                  "[theme]", problems)
    apps: list[tuple[str, Theme]] = []
    entries = table["apps"] or []
    if not isinstance(entries, list) or not all(isinstance(e, Mapping) for e in entries):
        problems.append("[[theme.apps]] must be tables")
        entries = []
    for index, entry in enumerate(entries, 1):
        app = entry.get("app")
        where = f"[[theme.apps]] #{index}" + (f" ({app!r:.80})" if isinstance(app, str) else "")
        if not isinstance(app, str) or not app.strip():
            problems.append(f"{where}: app must be an app's entity ID or client_id")
            continue
        unknown = sorted(set(entry) - {"app", *KEYS})
        if unknown:
            problems.append(f"{where}: unknown setting(s) {', '.join(map(repr, unknown))}")
        if app in dict(apps):
            problems.append(f"{where}: app given twice")
        apps.append((app, _theme(site, {k: v for k, v in entry.items() if k in KEYS}, theme_dir, where, problems)))
    read.problems.extend(problems)
    return ThemeSettings(site, tuple(apps))


def _theme(base: Theme, raw: Mapping[str, Any], theme_dir: Path | None, where: str, problems: list[str]) -> Theme:
    """``base`` with the settings in ``raw`` (the site's theme, or an app's overrides), checked."""
    changes: dict[str, Any] = {}
    if "colours" in raw:
        changes["colours"] = _colours(base.colours, raw["colours"], where, problems)
    if "font" in raw:
        if isinstance(raw["font"], str) and _FONT.fullmatch(raw["font"]):
            changes["font"] = raw["font"]
        else:
            problems.append(f"{where} font must be a CSS font list of names, commas, spaces and quotes")
    if "logo" in raw:
        changes["logo"] = _file(raw["logo"], theme_dir, f"{where} logo", problems)
    for key in ("service_name", "footer_text"):
        if key in raw:
            changes[key] = _text(raw[key], f"{where} {key}", problems)
    if "footer_links" in raw:
        changes["footer_links"] = _links(raw["footer_links"], where, problems)
    if "upstream_logos" in raw:
        logos = raw["upstream_logos"]
        if not isinstance(logos, Mapping) or not all(isinstance(k, str) and _NAME.fullmatch(k) for k in logos):
            problems.append(f"{where} upstream_logos must be a table of upstream name = file in static/")
        else:
            changes["upstream_logos"] = tuple(
                (name, path) for name, value in sorted(logos.items())
                if (path := _file(value, theme_dir, f"{where} upstream_logos.{name}", problems)) is not None)
    theme = replace(base, **changes)
    if "colours" in raw:  # the defaults pass (tests/config/test_theme.py); an app's own palette is checked whole
        problems.extend(f"{where} colours: {p}" for p in contrast_problems(theme.colours))
    return theme


def _colours(base: Colours, raw: object, where: str, problems: list[str]) -> Colours:
    if not isinstance(raw, Mapping):
        problems.append(f"{where} colours must be a table")
        return base
    known = {f.name for f in fields(Colours)}
    changes = {}
    for key, value in raw.items():
        colour = parse_colour(value) if isinstance(value, str) else None
        if key not in known:
            problems.append(f"{where} colours: unknown colour {key!r} (known: {', '.join(sorted(known))})")
        elif colour is None:
            problems.append(f"{where} colours: {key} must be #rgb or #rrggbb, got {value!r:.40}")
        else:
            changes[key] = colour.hex
    return replace(base, **changes)


def _text(raw: object, where: str, problems: list[str]) -> Text:
    if isinstance(raw, str) and 0 < len(raw) <= MAX_TEXT:
        return (("", raw),)
    if isinstance(raw, Mapping) and raw and all(
            isinstance(k, str) and _LANG.fullmatch(k) and isinstance(v, str) and 0 < len(v) <= MAX_TEXT
            for k, v in raw.items()):
        return tuple(sorted(raw.items()))
    problems.append(f"{where} must be a text of at most {MAX_TEXT} characters, or a table of language code = text")
    return ()


def _links(raw: object, where: str, problems: list[str]) -> tuple[FooterLink, ...]:
    if not isinstance(raw, list) or not all(isinstance(e, Mapping) and set(e) == {"label", "url"} for e in raw):
        problems.append(f"{where} footer_links must be a list of {{label = ..., url = ...}}")
        return ()
    links = []
    for entry in raw:
        url = entry["url"]
        local = isinstance(url, str) and url.startswith("/") and not url.startswith(("//", "/\\"))
        if not isinstance(url, str) or not (local or re.fullmatch(r"https://[^\s/?#]+[^\s]*", url)):
            problems.append(f"{where} footer_links: url must be https:// or a path of the broker, got {url!r:.80}")
            continue
        label = _text(entry["label"], f"{where} footer_links label", problems)
        if label:
            links.append(FooterLink(label, url))
    return tuple(links)


def _file(raw: object, theme_dir: Path | None, where: str, problems: list[str]) -> str | None:
    """A relative path to an existing file in ``THEME_DIR/static/`` (never outside it)."""
    if not isinstance(raw, str) or not raw:
        problems.append(f"{where} must be a file name in the theme's static/ folder")
        return None
    if theme_dir is None:
        problems.append(f"{where} needs [broker] theme_dir: the file lies in its static/ folder")
        return None
    path = PurePosixPath(raw)
    if path.is_absolute() or ".." in path.parts or "\\" in raw or ":" in raw:
        problems.append(f"{where} must be a relative path inside {theme_dir / 'static'}, got {raw!r:.80}")
        return None
    if not (theme_dir / "static" / path).is_file():
        problems.append(f"{where}: {theme_dir / 'static' / path} is not a file")
        return None
    return str(path)
