"""Walking a SAML login through the broker to a SAML upstream IdP and back to the app, shared by the flow and
attack tests.
"""

from __future__ import annotations

import requests

from tests.flows.federation import Federation
from tests.peers.browser import Browser


def through_city(fed: Federation, browser: Browser, sp: str = "sp1", **kwargs: object) -> tuple[str, requests.Response]:
    """An SP login that picks "city" on the discovery page and follows every self-posting page up to the
    one that posts back to the SP."""
    request_id, page = fed.login(browser, sp, **kwargs)
    assert "Find your organisation" in page.text or "city" in page.text, page.text
    page = browser.submit(page, form=form_index(page, "/upstream/city"))
    return request_id, to_the_app(browser, page)


def to_the_app(browser: Browser, page: requests.Response) -> requests.Response:
    """Follow the self-posting pages (the IdP's POST to the ACS, the broker's same-site repost) up to the one
    that posts to an SP (the test SPs live at http://127.0.0.1:9/, where nothing listens)."""
    for _ in range(4):
        if not browser.is_self_submitting(page) or _action(page).startswith("http://127.0.0.1:9/"):
            return page
        page = browser.auto_submit(page)
    return page


def _action(page: requests.Response) -> str:
    import lxml.html  # type: ignore[import-untyped]

    return str(lxml.html.fromstring(page.text).forms[0].action)


def form_index(page: requests.Response, action_part: str) -> int:
    import lxml.html

    forms = lxml.html.fromstring(page.text).forms
    return next(i for i, form in enumerate(forms) if action_part in (form.action or ""))
