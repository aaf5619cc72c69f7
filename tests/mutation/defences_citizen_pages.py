"""The citizen pages of issue 20: the language switch leads only to this site's own pages
(``broker.web.locale.local_path``), the referrer's query is taken back only from this site's same page, the consent
page (a GET since post/redirect/get) shows a waiting login only to the browser that holds it, and an error page's
way back to an app is looked up only for a handle this browser holds (``broker.journeys.way_back``)."""

from __future__ import annotations

from tests.mutation.defence import Defence

LOCALE = "tests/test_locale.py"
DEAD_ENDS = "tests/flows/test_dead_ends.py"
WAY_BACK = "tests/journeys/test_way_back.py"

DEFENCES: tuple[Defence, ...] = (
    Defence(
        name="language-switch-goes-only-to-local-paths",
        path="broker/web/locale.py",
        old="""    if not target or not target.startswith("/") or target.startswith(("//", "/\\\\")):
        return None
    if "\\\\" in target or any(ord(c) < 0x21 or ord(c) == 0x7F for c in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target""",
        new="""    return target""",
        tests=(f"{LOCALE}::test_the_switch_never_leads_off_the_site",),
        why="the language switch becomes an open redirect (CWE-601): a link on the city's domain leads to a look-alike",
    ),
    Defence(
        name="language-switch-takes-back-only-its-own-pages-query",
        path="broker/web/locale.py",
        old="""    if (referrer.query and f"{referrer.scheme}://{referrer.netloc}/" == request.host_url
            and referrer.path == urlsplit(back).path):""",
        new="""    if referrer.query:""",
        tests=(f"{LOCALE}::test_only_the_same_pages_referrer_gives_back_its_query",),
        why="another site's Referer chooses the query of the page the switch returns to",
    ),
    Defence(
        name="consent-page-only-for-the-browser-holding-the-login",
        path="broker/journeys/consent.py",
        old="""    stored = peek_record(j.pending, LoginAtConsent, handle, j.now()) if browser.holds(handle) else None
""",
        new="""    stored = peek_record(j.pending, LoginAtConsent, handle, j.now())
""",
        tests=(f"{DEAD_ENDS}::test_another_browser_never_sees_a_waiting_consent_page",),
        why="anyone with the consent page's address sees the app and what it asks about the citizen",
    ),
    Defence(
        name="way-back-looked-up-only-for-a-held-handle",
        path="broker/journeys/way_back.py",
        old="""    if not handle or not browser.holds(handle):
        return None""",
        new="""    if not handle:
        return None""",
        tests=(f"{WAY_BACK}::test_only_a_handle_this_browser_holds_is_looked_up",
               f"{DEAD_ENDS}::test_another_browser_never_sees_a_waiting_consent_page"),
        why="a request naming another browser's handle learns which app that login came from",
    ),
)
