"""``[theme]`` (``broker.config.theme``): the city's look as data, checked at start-up (issue 20)."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.config.settings import load_settings
from broker.config.theme import PAIRS, Colours, ThemeSettings, contrast_problems, text_in
from broker.core.contrast import contrast_ratio, parse_colour
from tests.config_support import instance, problems

PERMITS = "https://permits.city.example/sp"


def themed(tmp_path: Path, theme: str, files: tuple[str, ...] = ("logo.svg",)) -> Path:
    static = tmp_path / "theme" / "static"
    static.mkdir(parents=True)
    for name in files:
        (static / name).write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    return instance(tmp_path, 'theme_dir = "theme"\n' + theme)


def test_every_colour_pair_the_pages_use_passes_with_the_defaults() -> None:
    assert contrast_problems(Colours()) == []
    defaults = Colours()
    for fore, back, minimum, _ in PAIRS:
        a, b = parse_colour(getattr(defaults, fore)), parse_colour(getattr(defaults, back))
        assert a is not None and b is not None
        assert contrast_ratio(a, b) >= minimum, (fore, back)


def test_no_theme_gives_the_default_look(tmp_path: Path) -> None:
    settings = load_settings(instance(tmp_path, ""), {})
    assert settings.theme == ThemeSettings()
    assert settings.theme.for_app("any app") is settings.theme.site


def test_a_theme_and_one_apps_overrides(tmp_path: Path) -> None:
    config = themed(tmp_path, f"""
[theme]
logo = "logo.svg"
font = '"Source Sans 3", system-ui, sans-serif'
service_name = {{ en = "City of Springfield", de = "Stadt Springfield" }}
footer_text = "Springfield city council"
footer_links = [{{ label = {{ en = "Accessibility", de = "Barrierefreiheit" }}, url = "https://city.example/a11y" }},
                {{ label = "Help", url = "/help" }}]
upstream_logos = {{ op = "logo.svg" }}
colours = {{ accent = "#5a2d82", link = "#5a2d82" }}

[[theme.apps]]
app = "{PERMITS}"
service_name = "Parking permits"
logo = "permits.svg"
colours = {{ accent = "#00594f" }}
""", files=("logo.svg", "permits.svg"))
    theme = load_settings(config, {}).theme
    site, permits = theme.site, theme.for_app(PERMITS)
    assert site.colours.accent == "#5a2d82" and site.logo == "logo.svg"
    assert text_in(site.service_name, "de-AT") == "Stadt Springfield" and text_in(site.service_name, "fr") == (
        "City of Springfield")
    assert [text_in(link.label, "de") for link in site.footer_links] == ["Barrierefreiheit", "Help"]
    assert "--accent: #5a2d82" in site.stylesheet() and '"Source Sans 3"' in site.stylesheet()
    # the app's own values, and the site's for everything it does not set
    assert permits.colours.accent == "#00594f" and permits.colours.link == "#5a2d82"
    assert permits.logo == "permits.svg" and text_in(permits.service_name, "de") == "Parking permits"
    assert permits.footer_text == site.footer_text and permits.font == site.font
    assert theme.for_app("another app") is site and theme.for_app(None) is site
    assert permits.stylesheet_name != site.stylesheet_name and len(theme.stylesheets()) == 2


@pytest.mark.parametrize(("theme", "expected"), [
    ('[theme]\ncolours = { link = "#777777" }',
     "[theme] colours: link #777777 on paper #ffffff has contrast 4.48:1, under the 4.5:1 of WCAG 2.1 SC 1.4.3"),
    ('[theme]\ncolours = { focus = "#ffffff", accent = "#ffffff", accent_text = "#000000" }',
     "[theme] colours: accent #ffffff on paper #ffffff has contrast 1.00:1, under the 3:1 of WCAG 2.1 SC 1.4.11"),
    ('[theme]\ncolours = { focus = "#2b5f9a" }',
     "[theme] colours: focus #2b5f9a on accent #0b4f8a has contrast 1.28:1, under the 3:1 of WCAG 2.1 SC 1.4.11"),
    ('[theme]\ncolours = { accent = "blue" }', "[theme] colours: accent must be #rgb or #rrggbb, got 'blue'"),
    ('[theme]\ncolours = { background = "#fff" }', "[theme] colours: unknown colour 'background'"),
    ('[theme]\nlogo = "missing.svg"', "is not a file"),
    ('[theme]\nlogo = "../broker.toml"', "[theme] logo must be a relative path inside"),
    ('[theme]\nfont = "x; } body { display: none"', "[theme] font must be a CSS font list"),
    ('[theme]\nfooter_links = [{ label = "Help", url = "http://city.example/help" }]',
     "[theme] footer_links: url must be https:// or a path of the broker"),
    ('[theme]\nservice_name = { english = "City" }', "[theme] service_name must be a text of at most 200"),
    ('[theme]\nlogos = "x"', "[theme] unknown setting 'logos' (did you mean 'logo'?)"),
    ('[[theme.apps]]\nservice_name = "No app"', "[[theme.apps]] #1: app must be an app's entity ID or client_id"),
    (f'[[theme.apps]]\napp = "{PERMITS}"\ncolor = {{ accent = "#000" }}', "unknown setting(s) 'color'"),
    (f'[[theme.apps]]\napp = "{PERMITS}"\ncolours = {{ accent_text = "#777777", accent = "#ffffff" }}',
     f"[[theme.apps]] #1 ('{PERMITS}') colours: accent_text #777777 on accent #ffffff has contrast 4.48:1"),
])
def test_a_theme_that_fails_is_refused_with_a_message(tmp_path: Path, theme: str, expected: str) -> None:
    found = problems(themed(tmp_path, theme))
    assert any(expected in p for p in found), found


def test_theme_files_need_a_theme_dir(tmp_path: Path) -> None:
    found = problems(instance(tmp_path, '[theme]\nlogo = "logo.svg"\n'))
    assert "[theme] logo needs [broker] theme_dir: the file lies in its static/ folder" in found


def test_a_theme_dir_with_static_files_only_is_enough(tmp_path: Path) -> None:
    settings = load_settings(themed(tmp_path, '[theme]\nlogo = "logo.svg"\n'), {})
    assert settings.theme_dir == tmp_path / "theme" and settings.theme.site.logo == "logo.svg"
