"""Support for the flow tests of SAML apps' operator settings (issue 14): settings files beside an SP's metadata,
one more pysaml2 SP, the consent page's answer, and following the self-posting pages up to the SP."""

from __future__ import annotations

from pathlib import Path

import lxml.html  # type: ignore[import-untyped]
import requests

from tests.flows.federation import Federation
from tests.flows.oidc_peers import RelyingParty
from tests.flows.saml_peers import SpKeys, TestSp
from tests.peers.browser import Browser

#: where the test SPs live: nothing listens there, the browser stops at the page that posts to them
SP_BASE = "http://127.0.0.1:9/"


def app_settings(fed: Federation, sp: str, text: str) -> None:
    """Write ``metadata/saml-sp/<sp>.toml`` beside the SP's metadata and reload the registry."""
    (fed.folder / "metadata" / "saml-sp" / f"{sp}.toml").write_text(text)
    snapshot = fed.app.extensions["broker"].registry.reload()
    assert not snapshot.problems, snapshot.problems


def release_policy(fed: Federation, text: str) -> None:
    (fed.folder / "metadata" / "release-policy.toml").write_text(text)
    snapshot = fed.app.extensions["broker"].registry.reload()
    assert not snapshot.problems, snapshot.problems


def add_sp(fed: Federation, key_folder: Path, name: str, requested: tuple[str, ...]) -> TestSp:
    """Register one more pysaml2 SP (keys of ``make_keys``), its metadata listing ``requested`` attributes."""
    sp = TestSp(SP_BASE + name, SpKeys(key_folder / name / "signing.key", key_folder / name / "signing.crt"),
                requested=requested)
    (fed.folder / "metadata" / "saml-sp" / f"{name}.xml").write_text(sp.metadata())
    fed.app.extensions["broker"].registry.reload()
    sp.connect(requests.get(fed.url + "/saml2/idp/metadata", timeout=10).text)
    fed.sps[name] = sp
    return sp


def to_the_sp(browser: Browser, page: requests.Response) -> requests.Response:
    """Follow self-posting pages (an IdP's POST to the ACS, the broker's same-site repost) up to the page that
    posts to a test SP, or any other page."""
    for _ in range(5):
        if not browser.is_self_submitting(page) or form_action(page).startswith(SP_BASE):
            return page
        page = browser.auto_submit(page)
    return page


def form_action(page: requests.Response, index: int = 0) -> str:
    return str(lxml.html.fromstring(page.text).forms[index].action)


def form_index(page: requests.Response, action_part: str) -> int:
    """The index of the page's form whose action contains ``action_part``."""
    forms = lxml.html.fromstring(page.text).forms
    return next(i for i, form in enumerate(forms) if action_part in (form.action or ""))


def answer_consent(browser: Browser, page: requests.Response, decision: str,
                   ticked: tuple[str, ...] = ()) -> requests.Response:
    """Press a button of the consent page with the optional claims ``ticked`` (several checkboxes of one name,
    which ``Browser.submit`` cannot fill), following redirects."""
    form = lxml.html.fromstring(page.text).forms[0]
    action = requests.compat.urljoin(page.url, form.action)
    fields = [(k, v) for k, v in browser.form_fields(page).items() if k != "claim"]
    fields += [("decision", decision), *[("claim", claim) for claim in ticked]]
    answer = browser.session.post(action, data=fields, allow_redirects=False, timeout=10,
                                  headers={"Origin": requests.compat.urljoin(page.url, "/")[:-1],
                                           "Referer": page.url})
    while answer.status_code in (302, 303):
        answer = browser.get(requests.compat.urljoin(answer.url, answer.headers["Location"]), follow=False)
    return answer


def app_sign_in(browser: Browser, rp: RelyingParty, **params: str) -> requests.Response:
    """The person opens the OpenID Connect app's login link and is carried through to its callback."""
    page = browser.get(f"{rp.url}/login", params=params or None)
    return browser.auto_submit(page) if browser.is_self_submitting(page) else page
