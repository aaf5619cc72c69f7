"""Walking an OpenID Connect login through the broker (app, broker, upstream OpenID provider), shared by the flow
tests.
"""

from __future__ import annotations

import requests

from tests.flows.oidc_peers import RelyingParty
from tests.peers.browser import Browser


def sign_in(browser: Browser, rp: RelyingParty, **params: str) -> requests.Response:
    """The person opens the app's login link and is carried through to the app's callback."""
    page = browser.get(f"{rp.url}/login", params=params or None)
    if browser.is_self_submitting(page):  # response_mode=form_post
        page = browser.auto_submit(page)
    return page
