"""SAML Single Logout at the broker's IdP (issue 4), end to end with real pysaml2 SPs.

Two SAML apps signed in through one SSO session; app 1 logs out (Redirect, POST); the broker ends the session,
sends app 2 a signed LogoutRequest (its own NameID, the session index) and answers app 1 with a signed
LogoutResponse. The SPs make and check every message with pysaml2 itself (the xmlsec1 program for XML
signatures, pysaml2's ``verify_redirect_signature`` for the Redirect binding). The helpers here are shared with
``tests/security/test_attack_saml_logout.py``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import lxml.html  # type: ignore[import-untyped]
import pytest
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, samlp
from saml2.saml import NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_TRANSIENT

from broker.core.model import Protocol
from broker.core.sessions import Participant, SsoSession, merged_participants
from tests.flows.federation import Federation
from tests.flows.saml_logout_support import (
    PARTIAL,
    RESPONDER,
    SUCCESS,
    delivered,
    enable_slo,
    idp_of,
    idp_slo,
    logout_request,
    send,
    sign_in,
    sp_answers,
    sp_receives_request,
    sp_receives_response,
    still_signed_in,
)
from tests.peers.browser import Browser

# -- helpers --------------------------------------------------------------------------------------------------------


def forget_participants(fed: Federation, browser: Browser) -> None:
    """Empty the participant list of the SSO session in this browser's server-side session, as a request that
    raced another one (two tabs) or a session kept from before would leave it: only the registry knows them."""
    name = fed.app.config["SESSION_COOKIE_NAME"]
    cookie = next(c for c in browser.session.cookies if c.name == name)
    with fed.app.test_request_context("/", headers={"Cookie": f"{name}={cookie.value}"}):
        from flask import session

        stored = json.loads(session["sso"])
        assert stored["participants"]
        session["sso"] = json.dumps({**stored, "participants": []})
        fed.app.session_interface.save_session(fed.app, session, fed.app.response_class())

# -- fixtures -------------------------------------------------------------------------------------------------------


@pytest.fixture
def slo_federation(federation: Federation) -> Federation:
    enable_slo(federation, "sp1", "sp2")
    return federation


# -- the flows --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("binding", [BINDING_HTTP_REDIRECT, BINDING_HTTP_POST])
def test_logout_from_one_app_ends_the_session_and_notifies_the_other(slo_federation: Federation, browser: Browser,
                                                                      binding: str) -> None:
    fed = slo_federation
    sp1, sp2 = fed.sps["sp1"], fed.sps["sp2"]
    at1, at2 = sign_in(fed, browser, "sp1"), sign_in(fed, browser, "sp2")
    assert at1.session_index == at2.session_index  # one SSO session, one SessionIndex (its sid)

    request_id, url, fields = logout_request(sp1, at1.name_id, at1.session_index, binding)
    to_sp2 = delivered(browser, send(browser, url, fields))

    assert to_sp2.binding == BINDING_HTTP_REDIRECT and to_sp2.url == sp2.entity_id + "/slo/redirect"
    request = sp_receives_request(sp2, to_sp2)
    assert request.issuer.text == idp_of(sp2)
    assert (request.name_id.text, request.name_id.format) == (at2.name_id.text, NAMEID_FORMAT_PERSISTENT)
    assert request.name_id.sp_name_qualifier == sp2.entity_id
    assert [si.text for si in request.session_index] == [at2.session_index]
    assert request.destination == to_sp2.url

    answer_url, answer_fields = sp_answers(sp2, request, to_sp2.params.get("RelayState"), binding)
    to_sp1 = delivered(browser, send(browser, answer_url, answer_fields))

    assert to_sp1.binding == binding  # the binding app 1 used, since its metadata has both
    assert to_sp1.url == sp1.entity_id + ("/slo/redirect" if binding == BINDING_HTTP_REDIRECT else "/slo/post")
    assert to_sp1.params.get("RelayState") == "rs-logout"
    assert sp_receives_response(sp1, to_sp1, request_id) == (SUCCESS, None)
    assert not still_signed_in(fed, browser, hits=1)  # a new login went upstream again


def test_error_from_a_participant_gives_partial_logout(slo_federation: Federation, browser: Browser) -> None:
    fed = slo_federation
    at1 = sign_in(fed, browser, "sp1")
    sign_in(fed, browser, "sp2")
    request_id, url, _ = logout_request(fed.sps["sp1"], at1.name_id, at1.session_index)
    to_sp2 = delivered(browser, browser.get(url, follow=False))
    request = sp_receives_request(fed.sps["sp2"], to_sp2)
    failed = samlp.Status(status_code=samlp.StatusCode(value=RESPONDER))
    answer_url, _ = sp_answers(fed.sps["sp2"], request, to_sp2.params.get("RelayState"), status=failed)

    to_sp1 = delivered(browser, browser.get(answer_url, follow=False))

    assert sp_receives_response(fed.sps["sp1"], to_sp1, request_id) == (SUCCESS, PARTIAL)
    assert not still_signed_in(fed, browser, hits=1)


def test_a_participant_that_never_answers_can_be_skipped(slo_federation: Federation, browser: Browser) -> None:
    fed = slo_federation
    at1 = sign_in(fed, browser, "sp1")
    sign_in(fed, browser, "sp2")
    request_id, url, _ = logout_request(fed.sps["sp1"], at1.name_id, at1.session_index)
    delivered(browser, browser.get(url, follow=False))  # sent to sp2, which never sends the browser back

    page = browser.get(f"{fed.url}/saml2/idp/slo/continue")
    assert page.status_code == 200 and "csrf_token" in page.text
    to_sp1 = delivered(browser, browser.submit(page, follow=False))

    assert sp_receives_response(fed.sps["sp1"], to_sp1, request_id) == (SUCCESS, PARTIAL)


def test_participants_without_slo_are_skipped(federation: Federation, browser: Browser) -> None:
    enable_slo(federation, "sp1")  # sp2's metadata publishes no SingleLogoutService
    at1 = sign_in(federation, browser, "sp1")
    sign_in(federation, browser, "sp2")
    request_id, url, _ = logout_request(federation.sps["sp1"], at1.name_id, at1.session_index)

    to_sp1 = delivered(browser, browser.get(url, follow=False))

    assert to_sp1.url == federation.sps["sp1"].entity_id + "/slo/redirect"
    assert sp_receives_response(federation.sps["sp1"], to_sp1, request_id) == (SUCCESS, None)


def test_transient_name_id_is_sent_back_as_issued(slo_federation: Federation, browser: Browser) -> None:
    fed = slo_federation
    at1 = sign_in(fed, browser, "sp1")
    at2 = sign_in(fed, browser, "sp2", nameid_format=NAMEID_FORMAT_TRANSIENT)
    _, url, _ = logout_request(fed.sps["sp1"], at1.name_id, at1.session_index)

    request = sp_receives_request(fed.sps["sp2"], delivered(browser, browser.get(url, follow=False)))

    assert (request.name_id.text, request.name_id.format) == (at2.name_id.text, NAMEID_FORMAT_TRANSIENT)


def test_logout_without_session_index_and_without_a_session(slo_federation: Federation, browser: Browser) -> None:
    fed = slo_federation
    at1 = sign_in(fed, browser, "sp1")
    request_id, url, _ = logout_request(fed.sps["sp1"], at1.name_id, None)  # SessionIndex is optional
    to_sp1 = delivered(browser, browser.get(url, follow=False))
    assert sp_receives_response(fed.sps["sp1"], to_sp1, request_id) == (SUCCESS, None)

    # again, now that the browser has no session: nothing to end, Success (module doc of broker.web.saml_logout)
    request_id, url, _ = logout_request(fed.sps["sp1"], at1.name_id, at1.session_index)
    to_sp1 = delivered(browser, browser.get(url, follow=False))
    assert sp_receives_response(fed.sps["sp1"], to_sp1, request_id) == (SUCCESS, None)


def test_idp_metadata_advertises_both_slo_endpoints(slo_federation: Federation) -> None:
    sp = slo_federation.sps["sp1"]
    assert idp_slo(sp, BINDING_HTTP_REDIRECT) == slo_federation.url + "/saml2/idp/slo/redirect"
    assert idp_slo(sp, BINDING_HTTP_POST) == slo_federation.url + "/saml2/idp/slo/post"


def test_oidc_rp_initiated_logout_also_notifies_saml_apps(slo_federation: Federation, browser: Browser) -> None:
    from tests.flows.oidc_peers import relying_party
    from tests.flows.oidc_to_oidc_support import sign_in as oidc_sign_in

    fed = slo_federation
    at1 = sign_in(fed, browser, "sp1")
    post_logout = "http://127.0.0.1:9/signed-out"
    with relying_party(fed, post_logout_redirect_uris=[post_logout]) as rp:
        oidc_sign_in(browser, rp)
        assert rp.last.token is not None
        page = browser.get(f"{fed.url}/oidc/logout", params={
            "id_token_hint": rp.last.token["id_token"], "post_logout_redirect_uri": post_logout, "state": "s-1",
        }, follow=False)

        to_sp1 = delivered(browser, page)
        request = sp_receives_request(fed.sps["sp1"], to_sp1)
        assert request.name_id.text == at1.name_id.text
        assert [si.text for si in request.session_index] == [at1.session_index]
        answer_url, _ = sp_answers(fed.sps["sp1"], request, to_sp1.params.get("RelayState"))
        done = browser.get(answer_url, follow=False)

        assert done.status_code == 303 and done.headers["Location"] == f"{post_logout}?state=s-1"
        assert fed.provider.hits("authorize") == 1
        assert not still_signed_in(fed, browser, hits=1)


def test_logout_reaches_apps_the_browser_session_does_not_list(slo_federation: Federation, browser: Browser) -> None:
    """Issue 16: the participants are read from the server-side registry, not from the browser's session."""
    fed = slo_federation
    sp1, sp2 = fed.sps["sp1"], fed.sps["sp2"]
    at1, at2 = sign_in(fed, browser, "sp1"), sign_in(fed, browser, "sp2")
    forget_participants(fed, browser)

    request_id, url, fields = logout_request(sp1, at1.name_id, at1.session_index)
    to_sp2 = delivered(browser, send(browser, url, fields))  # app 1's NameID is known: the session ends

    request = sp_receives_request(sp2, to_sp2)
    assert request.name_id.text == at2.name_id.text
    assert [si.text for si in request.session_index] == [at2.session_index]
    answer_url, answer_fields = sp_answers(sp2, request, to_sp2.params.get("RelayState"))
    to_sp1 = delivered(browser, send(browser, answer_url, answer_fields))
    assert sp_receives_response(sp1, to_sp1, request_id) == (SUCCESS, None)
    assert not still_signed_in(fed, browser, hits=1)


def test_oidc_logout_reaches_saml_apps_the_browser_session_does_not_list(slo_federation: Federation,
                                                                         browser: Browser) -> None:
    from tests.flows.oidc_peers import relying_party
    from tests.flows.oidc_to_oidc_support import sign_in as oidc_sign_in

    fed = slo_federation
    at1 = sign_in(fed, browser, "sp1")
    post_logout = "http://127.0.0.1:9/signed-out"
    with relying_party(fed, post_logout_redirect_uris=[post_logout]) as rp:
        oidc_sign_in(browser, rp)
        assert rp.last.token is not None
        forget_participants(fed, browser)
        page = browser.get(f"{fed.url}/oidc/logout", params={
            "id_token_hint": rp.last.token["id_token"], "post_logout_redirect_uri": post_logout,
        }, follow=False)

        request = sp_receives_request(fed.sps["sp1"], delivered(browser, page))
        assert request.name_id.text == at1.name_id.text
        assert [si.text for si in request.session_index] == [at1.session_index]


# -- the stored session stays readable --------------------------------------------------------------------------------

def _session(participants: tuple[Participant, ...]) -> SsoSession:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return SsoSession("acc", "op", None, now, now, participants, sid="sid-1")


def test_participant_name_id_format_round_trips_and_old_sessions_still_read() -> None:
    saml = Participant("https://sp", Protocol.SAML, "_t1", NAMEID_FORMAT_TRANSIENT)
    oidc = Participant("client", Protocol.OIDC, "sub-1")
    assert SsoSession.from_json(_session((saml, oidc)).to_json()).participants == (saml, oidc)

    stored = json.loads(_session(()).to_json())  # as written before the format was recorded: three items each
    stored["participants"] = [["https://sp", "saml", "pairwise-1"]]
    assert SsoSession.from_json(json.dumps(stored)).participants == (
        Participant("https://sp", Protocol.SAML, "pairwise-1", None),)


def test_registry_participants_come_first_and_the_browser_session_adds_only_unknown_apps() -> None:
    """Sessions started before the registry recorded participants lose none at logout (``merged_participants``)."""
    sp = Participant("https://sp", Protocol.SAML, "_t2", NAMEID_FORMAT_TRANSIENT)
    older = Participant("https://sp", Protocol.SAML, "_t1", NAMEID_FORMAT_TRANSIENT)
    rp = Participant("client", Protocol.OIDC, "sub-1")
    legacy = Participant("https://legacy-sp", Protocol.SAML, "pairwise-1")
    assert merged_participants([sp, rp], (older, legacy, sp)) == (sp, rp, legacy)
    assert merged_participants([], (older, legacy)) == (older, legacy)


def test_portal_sign_out_notifies_saml_apps_of_this_browser(slo_federation: Federation, browser: Browser) -> None:
    fed = slo_federation
    at1 = sign_in(fed, browser, "sp1")
    sessions = browser.get(f"{fed.url}/account/sessions")  # the portal shows this browser's SSO session
    assert "Sign out everywhere" in sessions.text

    to_sp1 = delivered(browser, browser.submit(sessions, follow=False))  # "sign out everywhere"
    request = sp_receives_request(fed.sps["sp1"], to_sp1)
    assert request.name_id.text == at1.name_id.text
    answer_url, _ = sp_answers(fed.sps["sp1"], request, to_sp1.params.get("RelayState"))
    done = browser.get(answer_url, follow=False)

    assert done.status_code == 200 and "signed out" in done.text
    assert not still_signed_in(fed, browser, hits=1)


def test_the_end_page_names_the_apps_that_did_not_confirm(slo_federation: Federation, browser: Browser) -> None:
    """Issue 18: "a clear result listing the apps that did not confirm"."""
    fed = slo_federation
    sign_in(fed, browser, "sp1")
    sign_in(fed, browser, "sp2")
    confirm = browser.get(f"{fed.url}/account/sign-out")  # the portal menu's "Sign out"
    to_sp1 = delivered(browser, browser.submit(confirm, form="sign-out", follow=False))
    request = sp_receives_request(fed.sps["sp1"], to_sp1)
    failed = samlp.Status(status_code=samlp.StatusCode(value=RESPONDER))
    answer_url, _ = sp_answers(fed.sps["sp1"], request, to_sp1.params.get("RelayState"), status=failed)
    to_sp2 = delivered(browser, browser.get(answer_url, follow=False))  # sp1 refused; on to sp2, which confirms
    request = sp_receives_request(fed.sps["sp2"], to_sp2)
    answer_url, _ = sp_answers(fed.sps["sp2"], request, to_sp2.params.get("RelayState"))

    done = browser.get(answer_url, follow=False)

    assert done.status_code == 200 and "did not confirm" in done.text, done.text[:500]
    listed = lxml.html.fromstring(done.text).xpath("//ul[@aria-labelledby='unconfirmed-heading']/li/text()")
    registry = fed.app.extensions["broker"].registry
    names = {sp: registry.downstream(fed.sps[sp].entity_id).display_name for sp in ("sp1", "sp2")}
    assert listed == [names["sp1"]]  # sp2 confirmed
    assert not still_signed_in(fed, browser, hits=1)
