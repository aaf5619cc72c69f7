"""No dead ends (issue 20): the consent page survives reload and Back (post/redirect/get), a replayed upstream
callback is still refused but its page leads back to the app, error pages are titled by what happened and link
only to registered addresses, and declining consent tells the citizen before the app hears ``access_denied``.
Real peers: the broker, its upstream OpenID provider and a SAML IdP, an OpenID Connect app and a SAML app."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import lxml.html  # type: ignore[import-untyped]
import pytest
import requests

from tests.flows.consent_support import policy
from tests.flows.federation import Federation
from tests.flows.oidc_peers import RelyingParty, relying_party
from tests.flows.saml_to_saml_support import form_index
from tests.flows.saml_upstream import saml_federation
from tests.peers.browser import Browser

CALLBACK = "/upstream/oidc/op/callback"
EVIL = "https://evil.example/"


def _consent_page(browser: Browser, rp: RelyingParty) -> requests.Response:
    page = browser.get(f"{rp.url}/login")
    assert page.status_code == 200 and "Share your information with" in page.text, page.text[:300]
    return page


def _press(browser: Browser, page: requests.Response, decision: str) -> requests.Response:
    form = lxml.html.fromstring(page.text).forms[0]
    fields = [(k, v) for k, v in browser.form_fields(page).items() if k != "claim"] + [("decision", decision)]
    return browser.post(requests.compat.urljoin(page.url, form.action), fields, initiator=page.url)


def _links(page: requests.Response) -> list[str]:
    return [str(href) for href in lxml.html.fromstring(page.text).xpath("//main//a/@href")]


def _heading(page: requests.Response) -> tuple[str, str]:
    document = lxml.html.fromstring(page.text)
    return document.findtext(".//title").split(" · ")[0].strip(), document.findtext(".//h1").strip()


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/"


def test_the_consent_page_survives_reload_replay_and_back(federation: Federation, browser: Browser) -> None:
    policy(federation, 'version = "p1"\n')
    with relying_party(federation) as rp:
        page = _consent_page(browser, rp)
        [callback] = [url for url in browser.history if CALLBACK in url]
        # the callback answered with a 303 to the page's own address: the page is not the callback's answer
        assert urlsplit(page.url).path.startswith("/consent/") and browser.history[-1] == page.url
        assert browser.history.index(callback) == len(browser.history) - 2
        assert page.headers["Cache-Control"] == "no-store"

        reloaded = browser.get(page.url)
        assert reloaded.status_code == 200 and reloaded.text == page.text.replace(
            browser.form_fields(page)["csrf_token"], browser.form_fields(reloaded)["csrf_token"])

        replayed = browser.get(callback)  # Back to the provider's callback: refused as a replay...
        assert replayed.status_code == 400 and _heading(replayed) == ("We could not sign you in",) * 2
        assert _links(replayed) == [_origin(rp.redirect_uri)]  # ...with the way back to the app's registered site
        assert "Return to" in replayed.text

        _press(browser, reloaded, "allow")  # the replay did not spoil the waiting login
        assert len(rp.outcomes) == 1 and rp.last.error is None and rp.last.token is not None

        back = browser.get(page.url)  # Back from the app to the consent page
        assert back.status_code == 200 and _heading(back) == ("You have already answered",) * 2
        assert _links(back) == [_origin(rp.redirect_uri)] and "<form" not in back.text

        again = browser.get(callback)  # and to the callback once more: still refused, still a way back
        assert again.status_code == 400 and _links(again) == [_origin(rp.redirect_uri)]
        assert len(rp.outcomes) == 1  # the app heard nothing more


def test_another_browser_never_sees_a_waiting_consent_page(federation: Federation, browser: Browser) -> None:
    """The consent page's address is a GET now: in another browser (a link shared, a shoulder-surfed URL) it shows
    neither the app nor the claims nor a form, and the citizen's own login still waits."""
    policy(federation, 'version = "p1"\n')
    with relying_party(federation) as rp, Browser() as other:
        page = _consent_page(browser, rp)
        stolen = other.get(page.url)
        assert "Share your information with" not in stolen.text and "<form" not in stolen.text
        assert "Return to" not in stolen.text  # nor the app's way back: that browser never held the login
        assert "Share your information with" in browser.get(page.url).text


def test_declining_tells_the_citizen_then_the_app_hears_access_denied(federation: Federation,
                                                                      browser: Browser) -> None:
    policy(federation, 'version = "p1"\n')
    with relying_party(federation) as rp:
        page = _consent_page(browser, rp)
        declined = _press(browser, page, "deny")
        assert declined.status_code == 200 and not rp.outcomes  # the sentence first, nothing sent yet
        assert "so you were not signed in to" in declined.text

        [change] = _links(declined)  # "Change my answer": the same consent page, the login still waiting
        assert change == urlsplit(page.url).path
        assert "Share your information with" in browser.get(requests.compat.urljoin(page.url, change)).text

        assert browser.submit(declined).status_code == 400  # "Return to the app": the app's own error answer
        outcome = rp.last  # authlib checked the state it sent: the answer carries it back (RFC 6749 §4.1.2.1)
        assert outcome.error == "access_denied" and outcome.token is None
        assert outcome.callback_args["state"] and outcome.error_description

        finished = browser.get(page.url)  # Back to the consent page afterwards
        assert _heading(finished)[1] == "You have already answered" and _links(finished) == [_origin(rp.redirect_uri)]


def test_error_pages_are_titled_by_status_and_link_only_registered_addresses(federation: Federation,
                                                                             browser: Browser) -> None:
    ways = ["/account/", "/"]

    missing = browser.get(f"{federation.url}/no/such/page")
    assert missing.status_code == 404 and _heading(missing) == ("Page not found", "Page not found")
    assert [urlsplit(u).path for u in _links(missing)] == ways and "We could not sign you in" not in missing.text

    wrong_method = browser.get(f"{federation.url}/consent/anything/return")
    assert wrong_method.status_code == 405 and _heading(wrong_method)[1] == "This request could not be handled"
    api = requests.get(f"{federation.url}/oidc/token", verify=browser.session.verify, timeout=10)
    assert api.status_code == 405 and api.json()["error"] == "invalid_request"  # programs still read JSON

    # tampered handles: a RelayState or state this browser never held can never choose the link
    relay = browser.post(f"{federation.url}/saml2/sp/acs", {"SAMLResponse": "PHg+", "RelayState": EVIL,
                                                           "_same_site": "1"})
    state = browser.get(f"{federation.url}{CALLBACK}", params={"code": "x", "state": EVIL})
    with relying_party(federation) as rp:
        redirect = browser.get(f"{federation.url}/oidc/authorize", params={
            "client_id": rp.client_id, "redirect_uri": EVIL, "response_type": "code", "scope": "openid",
            "state": "s"})
    for refused in (relay, state, redirect):
        assert refused.status_code == 400 and refused.url.startswith(federation.url), refused.url
        assert [urlsplit(u).path for u in _links(refused)] == ways and "evil.example" not in "".join(_links(refused))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pysaml2's, as in the other SAML upstream flows
def test_a_replayed_saml_response_is_refused_with_the_way_back(tmp_path: Path, key_folder: Path,
                                                               browser: Browser) -> None:
    with saml_federation(tmp_path, key_folder) as (fed, _):
        policy(fed, 'version = "p1"\n')
        _, page = fed.login(browser)
        page = browser.submit(page, form=form_index(page, "/upstream/city"))
        for _ in range(4):  # the IdP's POST to the ACS, the broker's same-site repost; then a 303 to consent
            if urlsplit(page.url).path.startswith("/consent/"):
                break
            page = browser.auto_submit(page)
        assert "Share your information with" in page.text and urlsplit(page.url).path.startswith("/consent/")
        [posted] = [sent for sent in browser.sent if sent.url == f"{fed.url}/saml2/sp/acs"
                    and "_same_site" not in str(sent.body)]  # the IdP's own (cross-site) POST
        fields = parse_qsl(posted.body if isinstance(posted.body, str) else (posted.body or b"").decode())
        origin_of_app = _origin(fed.sps["sp1"].acs_url)

        replayed = browser.post(str(posted.url), fields, initiator=str(posted.headers["Referer"]))
        if browser.is_self_submitting(replayed):  # the broker's same-site repost, as the first time
            replayed = browser.auto_submit(replayed)
        assert replayed.status_code == 400 and _heading(replayed)[1] == "We could not sign you in"
        assert _links(replayed) == [origin_of_app]

        answered = _press(browser, page, "allow")  # the login still waits at consent, unharmed
        assert browser.form_fields(answered).get("SAMLResponse") and "Return to" not in answered.text
        assert _links(browser.get(page.url)) == [origin_of_app]  # Back to the consent page: the way back
