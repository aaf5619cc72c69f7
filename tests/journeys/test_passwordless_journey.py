"""Signing in with a passkey alone (``broker.journeys.passwordless``; issue 17), over the fakes: the passkey
names its account, the same one its linked identities reach; the sign-in reaches the second-factor level."""

from __future__ import annotations

import pytest

from broker.core import errors
from broker.core.assurance import REFEDS_MFA
from broker.core.model import DownstreamParty, Protocol
from broker.core.outcomes import Page, Redirect
from broker.journeys import login, passwordless
from broker.journeys.context import DownstreamFailure
from broker.journeys.upstream_answers import upstream_answer
from tests.journeys.fakes_support import OIDC_UPSTREAM, SAML_UPSTREAM, FakeBrowser, World, app, assertion, login_request


def with_passkey(w: World, party: DownstreamParty) -> tuple[str, str]:
    """Anna signed in once through her provider (her account), then enrolled a passkey; (account, credential)."""
    browser = w.browser()
    w.person(OIDC_UPSTREAM, "anna", email="anna@example.org")
    outgoing = login.begin(w.journeys, browser, login_request(party, upstream_hints=(OIDC_UPSTREAM.name,)))
    handle, reply = w.oidc.reply(outgoing)
    upstream_answer(w.journeys, browser, Protocol.OIDC, handle, reply, OIDC_UPSTREAM.name)
    account_id = w.downstream(party.protocol).answered.pop().result.account.account_id
    return account_id, w.passkeys.enrol(account_id, "laptop", w.clock.now())


def at_discovery(w: World, browser: FakeBrowser, party: DownstreamParty) -> str:
    outgoing = login.begin(w.journeys, browser, login_request(party))
    assert isinstance(outgoing, Redirect)
    [handle] = browser.handles
    return handle


def passkey_page(w: World, browser: FakeBrowser, discovery: str) -> tuple[str, str]:
    page = passwordless.begin(w.journeys, browser, discovery)
    assert isinstance(page, Page) and page.template == passwordless.PAGE and page.no_store
    return str(page.data["handle"]), str(page.data["options"])


def test_a_passkey_alone_signs_in_the_account_it_was_enrolled_for_at_the_second_factor_level() -> None:
    party = app(Protocol.OIDC)  # names no upstream: the discovery page, passkey included
    w = World([party])
    account_id, credential = with_passkey(w, party)
    browser = w.browser()
    discovery = at_discovery(w, browser, party)
    handle, options = passkey_page(w, browser, discovery)

    outgoing = passwordless.finish(w.journeys, browser, handle, assertion(credential, options))

    [answered] = w.downstream(party.protocol).answered
    assert answered.result.account.account_id == account_id and answered.result.upstream == "passkey"
    assert answered.result.acr == REFEDS_MFA and {"hwk", "user", "mfa"} <= set(answered.result.amr)
    assert outgoing == w.downstream(party.protocol).outgoing_for(answered.result, answered.sid)
    session = browser.sso()
    assert session is not None and session.upstream == "passkey" and session.acr == REFEDS_MFA
    assert browser.renewals == 1 and not browser.holds(discovery)  # the waiting login is used up



def test_a_synced_passkey_is_reported_as_a_software_key() -> None:
    party = app(Protocol.OIDC)
    w = World([party])
    _, credential = with_passkey(w, party)
    browser = w.browser()
    handle, options = passkey_page(w, browser, at_discovery(w, browser, party))

    passwordless.finish(w.journeys, browser, handle, assertion(credential, options, synced=True))

    [answered] = w.downstream(party.protocol).answered
    assert {"swk", "user", "mfa"} <= set(answered.result.amr) and "hwk" not in answered.result.amr

def test_a_passkey_that_did_not_verify_the_person_or_answers_another_challenge_signs_in_no_one() -> None:
    party = app(Protocol.SAML)
    w = World([party])
    _, credential = with_passkey(w, party)
    browser = w.browser()
    handle, options = passkey_page(w, browser, at_discovery(w, browser, party))
    older = w.passkeys.authentication_options(None, w.clock.now()).options_json

    for given in (assertion(credential, options, user_verified=False), assertion(credential, older)):
        page = passwordless.finish(w.journeys, browser, handle, given)
        assert isinstance(page, Page) and page.data["failed"]
        handle, options = str(page.data["handle"]), str(page.data["options"])
    assert not w.downstream(party.protocol).answered


def test_tries_are_limited() -> None:
    party = app(Protocol.SAML)
    w = World([party])
    browser = w.browser()
    handle, _ = passkey_page(w, browser, at_discovery(w, browser, party))
    for _ in range(passwordless.MAX_ATTEMPTS - 1):
        page = passwordless.finish(w.journeys, browser, handle, '{"credential": "nobody", "challenge": "", "uv": true}')
        handle = str(page.data["handle"]) if isinstance(page, Page) else ""

    with pytest.raises(DownstreamFailure):
        passwordless.finish(w.journeys, browser, handle, '{"credential": "nobody", "challenge": "", "uv": true}')


def test_an_app_that_names_its_upstreams_must_name_passkey() -> None:
    party = app(Protocol.OIDC, allowed=(OIDC_UPSTREAM, SAML_UPSTREAM))
    w = World([party])
    browser = w.browser()
    discovery = at_discovery(w, browser, party)

    with pytest.raises(DownstreamFailure) as refused:
        passwordless.begin(w.journeys, browser, discovery)
    assert isinstance(refused.value.error, errors.UnknownUpstream)
    assert not passwordless.offered(w.journeys, party)
    assert passwordless.offered(w.journeys, app(Protocol.OIDC, allowed_upstreams=("passkey",)))


def test_the_discovery_handle_of_another_browser_is_refused() -> None:
    party = app(Protocol.OIDC)
    w = World([party])
    discovery = at_discovery(w, w.browser(), party)

    with pytest.raises(errors.LoginStateInvalid):
        passwordless.begin(w.journeys, w.browser(), discovery)
