"""Signing out reaches every app, in its own protocol (issue 18, "Done when"): a citizen signed in through the
city's SAML IdP to a SAML app (pysaml2 SP) and two OpenID Connect apps (authlib relying parties: one registered
for back-channel logout, one for front-channel logout) is signed out of all three by each of the portal's
"Sign out", an RP-initiated logout at one app, and a LogoutRequest from the upstream IdP.

- the SAML app gets a signed LogoutRequest through the browser (checked by pysaml2);
- the front-channel app's logout URL is loaded in a frame of the page the browser sees, with ``iss`` and ``sid``;
- the back-channel app gets a logout token from the delivery worker (``broker.delivery``, over real HTTP), which
  it validates as Back-Channel Logout 1.0 §2.6 says, for the ``sub`` and ``sid`` of its own ID token; and its
  refresh token stops working.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import lxml.html  # type: ignore[import-untyped]
import pytest
import requests
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT

from broker.delivery.http import requests_post
from broker.delivery.worker import deliver_due
from broker.web.services import Services
from tests.databases import BACKENDS
from tests.flows.federation import Federation
from tests.flows.logout_receiver_support import LogoutEndpoints
from tests.flows.oidc_logout_support import validate_logout_token
from tests.flows.oidc_peers import RelyingParty, relying_party
from tests.flows.oidc_to_oidc_support import sign_in
from tests.flows.saml_logout_support import Delivered, enable_slo, sp_receives_request
from tests.flows.saml_to_saml_support import through_city
from tests.flows.saml_upstream import CITIZEN, CityIdp, saml_federation
from tests.peers.browser import Browser

BACK, FRONT = "back-app", "front-app"


class World:
    def __init__(self, fed: Federation, city: CityIdp, endpoints: LogoutEndpoints, back: RelyingParty,
                 front: RelyingParty) -> None:
        self.fed, self.city, self.endpoints, self.back, self.front = fed, city, endpoints, back, front

    @property
    def services(self) -> Services:
        svc: Services = self.fed.app.extensions["broker"]
        return svc


@pytest.fixture(params=BACKENDS)
def world(request: pytest.FixtureRequest, tmp_path: Path, key_folder: Path) -> Iterator[World]:
    with ExitStack() as stack:
        fed, city = stack.enter_context(saml_federation(tmp_path, key_folder, request.param))
        enable_slo(fed, "sp1")
        endpoints = stack.enter_context(LogoutEndpoints())
        back = stack.enter_context(relying_party(fed, BACK, backchannel_logout_uri=endpoints.back_uri(BACK),
                                                 grant_types=["authorization_code", "refresh_token"]))
        front = stack.enter_context(relying_party(fed, FRONT, frontchannel_logout_uri=endpoints.front_uri(FRONT),
                                                  frontchannel_logout_session_required=True))
        yield World(fed, city, endpoints, back, front)


def signed_in_everywhere(w: World, browser: Browser) -> dict[str, Any]:
    """At the SAML app through the city's IdP, then at both OIDC apps from the SSO session; the back-channel
    app's ID token claims."""
    request_id, page = through_city(w.fed, browser)
    assert w.fed.sps["sp1"].parse(browser.form_fields(page)["SAMLResponse"], request_id) is not None
    for rp in (w.back, w.front):
        assert sign_in(browser, rp).status_code == 200
        assert rp.last.error is None, rp.last.callback_args
    claims = w.back.last.id_token_claims
    assert claims is not None and w.front.last.id_token_claims is not None
    assert claims["sid"] == w.front.last.id_token_claims["sid"]  # one SSO session
    return claims


def through_frames(browser: Browser, page: requests.Response) -> Delivered:
    """As a browser does with the front-channel page: load every logout frame, then go on to the SAML app; the
    message it carries there."""
    assert page.status_code == 200, (page.status_code, page.text[:300])
    assert "frame-src" in page.headers["Content-Security-Policy"]
    tree = lxml.html.fromstring(page.text)
    frames = tree.xpath("//iframe[@data-front-channel]/@src")
    assert frames, page.text[:500]
    for src in frames:
        assert browser.get(src).status_code == 200
    [link] = tree.xpath("//a[@data-after-frames]/@href") or [None]
    if link is not None:
        parts = urlsplit(link)
        return Delivered(BINDING_HTTP_REDIRECT, f"{parts.scheme}://{parts.netloc}{parts.path}",
                         dict(parse_qsl(parts.query, keep_blank_values=True)))
    [form] = tree.xpath("//form[@data-after-frames]")
    return Delivered(BINDING_HTTP_POST, form.action, dict(form.form_values()))


def all_three_signed_out(w: World, id_claims: dict[str, Any], to_sp: Delivered) -> None:
    sid = id_claims["sid"]
    # the SAML app: a signed LogoutRequest for the session it was given
    request = sp_receives_request(w.fed.sps["sp1"], to_sp)
    assert request.session_index[0].text == sid
    # the front-channel app: its frame, with the issuer and the session (Front-Channel Logout 1.0 §3)
    assert w.endpoints.front[FRONT] == [{"iss": [w.fed.url], "sid": [sid]}]
    # the back-channel app: nothing until the worker runs (no sign-out waits for an app), then one logout token
    assert not w.endpoints.back[BACK]
    outbox = w.services.outbox
    assert outbox is not None
    report = deliver_due(outbox, requests_post(), w.services.clock.now())
    assert report.delivered == 1, report
    [token] = w.endpoints.back[BACK]
    discovery = requests.get(f"{w.fed.url}/.well-known/openid-configuration", timeout=10).json()
    jwks = requests.get(discovery["jwks_uri"], timeout=10).json()
    claims = validate_logout_token(token, jwks, discovery["issuer"], BACK,
                                   int(w.services.clock.now().timestamp()))
    assert (claims["sub"], claims["sid"]) == (id_claims["sub"], sid)
    # ... and what the session gave it stops working: the refresh token is revoked with the session's grants
    assert w.back.last.token is not None
    answer = requests.post(discovery["token_endpoint"], auth=(BACK, str(w.back.secret)), timeout=10,
                           data={"grant_type": "refresh_token", "refresh_token": w.back.last.token["refresh_token"]})
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"
    assert deliver_due(outbox, requests_post(), w.services.clock.now()).delivered == 0  # once only


def test_the_portals_sign_out_reaches_all_three(world: World, browser: Browser) -> None:
    claims = signed_in_everywhere(world, browser)
    confirm = browser.get(f"{world.fed.url}/account/sign-out")  # the portal menu's "Sign out"

    page = browser.submit(confirm, form="sign-out", follow=False)

    all_three_signed_out(world, claims, through_frames(browser, page))


def test_an_rp_initiated_logout_at_one_app_reaches_all_three(world: World, browser: Browser) -> None:
    claims = signed_in_everywhere(world, browser)
    assert world.front.last.token is not None
    hint = world.front.last.token["id_token"]

    page = browser.get(f"{world.fed.url}/oidc/logout?{urlencode({'id_token_hint': hint})}", follow=False)

    all_three_signed_out(world, claims, through_frames(browser, page))


def test_the_upstream_idps_logout_request_reaches_all_three(world: World, browser: Browser) -> None:
    claims = signed_in_everywhere(world, browser)
    assert world.city.idp is not None
    url = world.city.idp.logout_request_url(world.fed.url + "/saml2/sp/slo/redirect",
                                            world.fed.url + "/saml2/sp/metadata", CITIZEN.name_id)

    page = browser.get(url, follow=False)

    all_three_signed_out(world, claims, through_frames(browser, page))
