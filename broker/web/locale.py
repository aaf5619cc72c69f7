"""The language of every page: which one, the visible switch that remembers a choice, and the page direction.

The language is, first found wins (issue 20, "English only"):

1. the citizen's own choice with the switch in the page header: the ``broker_lang`` cookie (one year);
2. the current login's ``ui_locales`` (OpenID Connect Core 1.0 §3.1.2.1: space-separated BCP 47 tags in order of
   preference, the first one supported wins), kept in the browser's session when the authorization request
   arrives and forgotten when another login begins without one;
3. the browser's ``Accept-Language`` (RFC 9110 §12.5.4; ``de-AT`` is served German);
4. English.

An app's own default language is not a setting yet (it would touch the app registrations of both protocols).
Arabic is written right to left: ``<html dir>`` says so (HTML Living Standard §3.2.6.4, WCAG 2.1 SC 1.3.2), and the
style sheet uses logical properties. Dates and times are shown in the ``[broker] timezone`` of the city.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode, urlsplit

from babel import dates
from flask import Blueprint, Flask, abort, current_app, redirect, request, session, url_for
from flask_babel import Babel, get_locale, get_timezone
from werkzeug.wrappers import Response

from broker.config.settings import Settings
from broker.web.ops.request_ids import ENTRY_ENDPOINTS

#: the languages of the catalogues in broker/translations, English (the message ids) first
LANGUAGES: tuple[str, ...] = ("en", "de", "fr", "ar")
#: each language named in its own language, so a reader finds theirs whatever the page's language
NAMES: dict[str, str] = {"en": "English", "de": "Deutsch", "fr": "Français", "ar": "العربية"}
RIGHT_TO_LEFT = frozenset({"ar"})
DEFAULT = LANGUAGES[0]
#: the switch's cookie: the citizen's explicit choice
COOKIE = "broker_lang"
COOKIE_MAX_AGE = 365 * 24 * 60 * 60
#: the browser session's key of the current login's ``ui_locales`` choice
SESSION_KEY = "ui_locale"

bp = Blueprint("language", __name__)


@dataclass(frozen=True)
class LanguageLink:
    """One entry of the header's language switch."""

    code: str
    name: str
    href: str
    direction: str
    current: bool


def supported(tag: str | None) -> str | None:
    """The catalogue language of one BCP 47 tag (RFC 5646 §2.1: the primary subtag decides, ``de-AT`` -> ``de``);
    None when the broker has no such language."""
    if not tag:
        return None
    primary = tag.strip().replace("_", "-").split("-", 1)[0].lower()
    return primary if primary in LANGUAGES else None


def first_supported(tags: str | None) -> str | None:
    """OIDC Core §3.1.2.1 ``ui_locales``: "space-separated list of BCP47 language tag values, ordered by
    preference"; the first the broker has."""
    for tag in (tags or "").split():
        found = supported(tag)
        if found is not None:
            return found
    return None


def select_locale() -> str:
    """Flask-Babel's locale selector: cookie, the login's ``ui_locales``, ``Accept-Language``, English."""
    chosen = supported(request.cookies.get(COOKIE))
    if chosen is not None:
        return chosen
    from_login = session.get(SESSION_KEY)
    if isinstance(from_login, str) and supported(from_login) is not None:
        return from_login
    # RFC 9110 §12.5.4, highest quality first, each tag by its primary subtag: "fr-CH, en;q=0.5" is French
    # (Werkzeug's best_match would prefer the exact "en" of lower quality)
    for tag, quality in request.accept_languages:
        found = supported(tag) if quality > 0 else None
        if found is not None:
            return found
    return DEFAULT


def direction(code: str) -> str:
    return "rtl" if code in RIGHT_TO_LEFT else "ltr"


def _remember_ui_locales() -> None:
    """At a downstream's request (where a login begins), keep its ``ui_locales`` choice for this browser's login,
    or forget an earlier login's choice. Only OIDC has the parameter; a SAML request begins a login without one."""
    if request.endpoint not in ENTRY_ENDPOINTS:
        return
    params = request.args if request.method == "GET" else request.form
    found = first_supported(params.get("ui_locales")) if request.endpoint == "oidc_provider.authorize" else None
    if found is not None:
        if session.get(SESSION_KEY) != found:  # an unchanged session is not written back (issue 21)
            session[SESSION_KEY] = found
    elif SESSION_KEY in session:
        session.pop(SESSION_KEY)


def local_path(target: str | None) -> str | None:
    """``target`` when it is a path on this site, else None: the switch must not become an open redirect (CWE-601).

    Refused: anything not starting with one ``/``; ``//host`` and ``/\\host`` (browsers read a backslash as a
    slash, WHATWG URL §4.4 "special authority ignore slashes state"); control characters and spaces, which
    browsers strip (``/\\t/host``); anything with a scheme or host."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return None
    if "\\" in target or any(ord(c) < 0x21 or ord(c) == 0x7F for c in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def _this_page() -> str:
    """Where the switch leads back to: this page's path for a GET, the home page after a POST, which a GET cannot
    repeat. Only the path: a query can name an app (``/oidc/logout?client_id=...``), and pages show apps by name
    only; the query comes back from the ``Referer`` (``_back``)."""
    return request.path if request.method == "GET" else "/"


def _back(target: str | None) -> str:
    """The page to return to: ``next`` (a local path, else the home page), with the query of the page the link was
    followed from when that page is this site's and has the same path (Referrer-Policy ``same-origin`` sends it).
    A login in progress goes on, since its page is shown again by a plain GET."""
    back = local_path(target) or "/"
    referrer = urlsplit(request.referrer or "")
    if (referrer.query and f"{referrer.scheme}://{referrer.netloc}/" == request.host_url
            and referrer.path == urlsplit(back).path):
        return local_path(f"{referrer.path}?{referrer.query}") or back
    return back


def language_links() -> list[LanguageLink]:
    """The switch: every language, the current one marked."""
    current = str(get_locale() or DEFAULT)
    back = _this_page()
    return [LanguageLink(code, NAMES[code], url_for("language.choose", code=code) + "?" + urlencode({"next": back}),
                         direction(code), code == current) for code in LANGUAGES]


@bp.get("/language/<code>")
def choose(code: str) -> Response:
    """The switch: remember ``code`` for a year (SameSite=Lax, Secure over https: ``BROKER_HTTPS``, set from
    ``Settings.secure_cookies``) and go back to ``next`` (a local path only, else the home page).
    A plain GET with no state of its own, so it works without JavaScript and ends no login in progress."""
    if code not in LANGUAGES:
        abort(404)
    response = redirect(_back(request.args.get("next")), code=303)
    response.set_cookie(COOKIE, code, max_age=COOKIE_MAX_AGE, path="/", samesite="Lax", httponly=True,
                        secure=bool(current_app.config.get("BROKER_HTTPS")))
    return response


def date_time(value: datetime) -> str:
    """A date and time as the page's language writes them, in the city's time zone (``[broker] timezone``):
    CLDR's medium date and short time, joined by the language's own medium pattern ("7 déc. 2026, 15:14";
    Unicode TR35 part 4 §2.6.2). A naive value is UTC, as everywhere in the broker."""
    code = get_locale() or DEFAULT
    zone = get_timezone()
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    pattern = str(dates.get_datetime_format("medium", locale=code)).replace("'", "")
    return (pattern.replace("{0}", dates.format_time(aware, "short", tzinfo=zone, locale=code))
            .replace("{1}", dates.format_date(aware.astimezone(zone), "medium", locale=code)))


def init_locale(app: Flask, settings: Settings) -> None:
    """Flask-Babel with this module's selector and the city's time zone; the switch; ``ui_locales``."""
    app.config["BABEL_DEFAULT_TIMEZONE"] = settings.timezone
    Babel(app, locale_selector=select_locale)
    app.before_request(_remember_ui_locales)
    app.register_blueprint(bp)
    app.add_template_filter(date_time, "date_time")  # the portal's shorter "when" is broker.web.portal's

    @app.context_processor
    def _language_globals() -> dict[str, object]:
        code = str(get_locale() or DEFAULT)
        return {"page_lang": code, "page_dir": direction(code), "language_links": language_links}
