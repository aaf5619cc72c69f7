"""The language of the pages (issue 20, "English only"; ``broker.web.locale``): the switch's cookie, then the login's
OIDC ``ui_locales``, then ``Accept-Language``, then English; ``<html lang dir>``; the switch is no open redirect;
dates in the page's language and the city's time zone."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from flask import Flask, render_template_string
from flask.testing import FlaskClient

from broker.app import close_app, create_app
from broker.config.settings import load_settings
from broker.instance import InstanceOptions, init_instance
from broker.storage import upgrade
from broker.web import locale
from tests.config_support import instance as config_instance
from tests.config_support import problems


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("locale") / "instance"
    path = init_instance(InstanceOptions(folder))
    path.write_text(path.read_text().replace("[broker]\n", '[broker]\ntimezone = "Europe/Berlin"\n', 1))
    upgrade(load_settings(path, environ={}).database_url)
    return path


@pytest.fixture
def app(config: Path) -> Iterator[Flask]:
    app = create_app(load_settings(config, environ={}))
    yield app
    close_app(app)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def html_tag(page: str) -> tuple[str, str]:
    found = re.search(r'<html lang="([^"]*)" dir="([^"]*)">', page)
    assert found, page[:200]
    return found.group(1), found.group(2)


def home(client: FlaskClient, accept: str | None = None) -> tuple[str, str]:
    headers = {"Accept-Language": accept} if accept else {}
    return html_tag(client.get("/", headers=headers).get_data(as_text=True))


@pytest.mark.parametrize(("accept", "expected"), [
    (None, ("en", "ltr")),
    ("de", ("de", "ltr")),
    ("de-AT,de;q=0.9", ("de", "ltr")),  # a regional tag is served its language
    ("fr-CH, en;q=0.5", ("fr", "ltr")),
    ("ar", ("ar", "rtl")),  # Arabic is written right to left
    ("ja, de;q=0.3", ("de", "ltr")),  # the first one the broker has
    ("ja", ("en", "ltr")),
])
def test_the_browsers_accept_language_chooses(client: FlaskClient, accept: str | None,
                                               expected: tuple[str, str]) -> None:
    assert home(client, accept) == expected


def test_a_page_is_translated_into_the_chosen_language(app: Flask, tmp_path: Path) -> None:
    """The selector's language reaches gettext: a tiny German catalogue compiled for the test (the real ones are
    checked by tests/test_translations.py) translates the page's skip link; English stays English."""
    catalogue = Catalog(locale="de")
    catalogue.add("Skip to content", "Zum Inhalt springen")
    (tmp_path / "de" / "LC_MESSAGES").mkdir(parents=True)
    with (tmp_path / "de" / "LC_MESSAGES" / "messages.mo").open("wb") as f:
        write_mo(f, catalogue)
    app.extensions["babel"].translation_directories = [str(tmp_path)]
    client = app.test_client()
    assert "Zum Inhalt springen" in client.get("/", headers={"Accept-Language": "de-AT"}).get_data(as_text=True)
    assert "Skip to content" in client.get("/", headers={"Accept-Language": "en"}).get_data(as_text=True)


def test_the_switch_remembers_a_choice_that_beats_the_browser(client: FlaskClient) -> None:
    answer = client.get("/language/fr?next=/account/", headers={"Accept-Language": "de"})
    assert answer.status_code == 303 and answer.headers["Location"] == "/account/"
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith("broker_lang=fr;") and "SameSite=Lax" in cookie and "HttpOnly" in cookie
    assert "Max-Age=31536000" in cookie
    assert "Secure" not in cookie  # this instance is on plain-http localhost
    assert home(client, "de") == ("fr", "ltr")
    client.get("/language/ar?next=/")
    assert home(client, "de") == ("ar", "rtl")


def test_the_switch_names_each_language_in_itself_and_marks_the_current_one(client: FlaskClient) -> None:
    page = client.get("/?x=1", headers={"Accept-Language": "de"}).get_data(as_text=True)
    links = re.findall(r'<a href="([^"]*)" lang="([^"]*)" hreflang="([^"]*)" dir="([^"]*)"( aria-current="true")?>'
                       r"([^<]*)</a>", page)
    assert [(lang, hreflang, name, bool(current)) for _, lang, hreflang, _dir, current, name in links] == [
        ("en", "en", "English", False), ("de", "de", "Deutsch", True), ("fr", "fr", "Français", False),
        ("ar", "ar", "العربية", False)]
    href = links[3][0].replace("&amp;", "&")
    # the page's path only: a query may name an app, which pages show by name only; it returns with the Referer
    assert urlsplit(href).path == "/language/ar" and parse_qs(urlsplit(href).query) == {"next": ["/"]}
    assert links[3][3] == "rtl"
    back = client.get(href, headers={"Referer": "http://localhost/?x=1"})  # the test client's own origin
    assert back.status_code == 303 and back.headers["Location"] == "/?x=1"  # a plain GET back to the very page
    assert client.get(href).headers["Location"] == "/"  # no Referer (a privacy setting): the page without query


@pytest.mark.parametrize("referrer", [
    "https://evil.example/?x=1", "http://evil.example/?x=1", "http://localhost.evil.example/?x=1",
    "http://localhost/other?x=1", "//evil.example/?x=1", "https://localhost/?x=1"])
def test_only_the_same_pages_referrer_gives_back_its_query(client: FlaskClient, referrer: str) -> None:
    answer = client.get("/language/de", query_string={"next": "/"}, headers={"Referer": referrer})
    assert answer.headers["Location"] == "/"


@pytest.mark.parametrize("target", [
    "//evil.example", "//evil.example/account/", "https://evil.example", "https://evil.example/",
    "/\\evil.example", "/\\/evil.example", "/\t/evil.example", "/\n/evil.example", "http:/evil.example",
    "javascript:alert(1)", "evil.example", "", " //evil.example",
])
def test_the_switch_never_leads_off_the_site(client: FlaskClient, target: str) -> None:
    """An open redirect through the switch would lend the city's address to a phishing link (CWE-601)."""
    answer = client.get("/language/de", query_string={"next": target})
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/"
    assert answer.headers["Set-Cookie"].startswith("broker_lang=de;")


def test_local_paths_are_kept_whole() -> None:
    assert locale.local_path("/account/sessions?tab=2#x") == "/account/sessions?tab=2#x"
    assert locale.local_path("/consent/abc?handle=%2F%2Fx") == "/consent/abc?handle=%2F%2Fx"


def test_an_unknown_language_is_not_found(client: FlaskClient) -> None:
    assert client.get("/language/xx?next=/").status_code == 404
    assert "Set-Cookie" not in client.get("/language/EN?next=/").headers


def test_ui_locales_of_the_login_beats_the_browser_and_the_switch_beats_both(client: FlaskClient) -> None:
    # an authorization request (here of an unknown client: its error page) names the login's languages
    page = client.get("/oidc/authorize", query_string={"client_id": "nobody", "response_type": "code",
                                                      "scope": "openid", "ui_locales": "tlh fr-CA de"},
                      headers={"Accept-Language": "de"})
    assert html_tag(page.get_data(as_text=True)) == ("fr", "ltr")
    assert home(client, "de") == ("fr", "ltr")  # the rest of this browser's login
    client.get("/language/ar?next=/")
    assert home(client, "de") == ("ar", "rtl")


def test_a_login_without_ui_locales_forgets_the_earlier_ones(client: FlaskClient) -> None:
    client.get("/oidc/authorize", query_string={"client_id": "nobody", "ui_locales": "fr"})
    assert home(client, "de") == ("fr", "ltr")
    client.get("/oidc/authorize", query_string={"client_id": "nobody"})
    assert home(client, "de") == ("de", "ltr")
    client.get("/oidc/authorize", query_string={"client_id": "nobody", "ui_locales": "tlh"})  # none supported
    assert home(client, "de") == ("de", "ltr")


@pytest.mark.parametrize(("tags", "expected"), [
    ("de", "de"), ("DE-at", "de"), ("tlh  ar-EG fr", "ar"), ("zh-Hant", None), ("", None), ("en_GB", "en")])
def test_first_supported_ui_locale(tags: str, expected: str | None) -> None:
    assert locale.first_supported(tags) == expected


@pytest.mark.parametrize("language", ["en", "de", "fr"])
def test_dates_are_written_in_the_pages_language_and_the_citys_time_zone(app: Flask, language: str) -> None:
    moment = (datetime.now(UTC) - timedelta(days=1)).replace(hour=21, minute=30, second=0, microsecond=0)
    berlin = moment.astimezone(ZoneInfo("Europe/Berlin"))  # 22:30 or 23:30, as the season has it
    with app.test_request_context("/", headers={"Accept-Language": language}):
        shown = render_template_string("{{ moment|date_time }}", moment=moment)
    expected = {"en": [f"{berlin.hour - 12}:30", "PM", f"{berlin.day}, {berlin.year}"],
                "de": [f"{berlin:%d.%m.%Y}, {berlin:%H}:30"],
                "fr": [f"{berlin.day} ", f"{berlin.year}, {berlin:%H}:30"]}[language]
    assert all(part in shown for part in expected), shown


def test_the_time_zone_must_be_an_iana_name(tmp_path: Path) -> None:
    bad = config_instance(tmp_path / "bad", 'timezone = "Mars/Olympus_Mons"\n')
    assert any("[broker] timezone must be an IANA time zone name" in p for p in problems(bad))
    good = config_instance(tmp_path / "good", 'timezone = "Europe/Vienna"\n')
    assert load_settings(good, environ={}).timezone == "Europe/Vienna"
