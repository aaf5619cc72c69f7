"""Creating an account with a passkey alone (``broker.journeys.passkey_signup``; issue 17), over the fakes: one
verified registration makes exactly one account, signed in to the waiting app; nothing else makes any; the account
is an ordinary one (a provider can be linked to it; its last way in cannot be removed)."""

from __future__ import annotations

import pytest

from broker.core import errors
from broker.core.assurance import REFEDS_MFA
from broker.core.audit import AuditKind
from broker.core.model import DownstreamParty, LoginRequest, Protocol
from broker.core.operators import ConsolePolicy, console_party
from broker.core.outcomes import Page, Redirect
from broker.journeys import (
    account_data,
    authenticators,
    login,
    passkey_signup,
    passwordless,
    portal,
    portal_links,
    ways_in,
)
from broker.journeys.context import DownstreamFailure
from broker.journeys.upstream_answers import upstream_answer
from tests.journeys.fakes_support import (
    OIDC_UPSTREAM,
    SAML_UPSTREAM,
    FakeBrowser,
    World,
    app,
    assertion,
    login_request,
    registration,
)


def at_discovery(w: World, browser: FakeBrowser, party: DownstreamParty, request: LoginRequest | None = None) -> str:
    outgoing = login.begin(w.journeys, browser, request or login_request(party))
    assert isinstance(outgoing, Redirect)
    [handle] = browser.handles
    return handle


def sign_up_page(w: World, browser: FakeBrowser, discovery: str) -> tuple[str, str]:
    page = passkey_signup.begin(w.journeys, browser, discovery)
    assert isinstance(page, Page) and page.template == passkey_signup.PAGE and page.no_store
    return str(page.data["handle"]), str(page.data["options"])


def signed_up(w: World, party: DownstreamParty, credential: str = "new-key") -> tuple[str, FakeBrowser]:
    """A person signs up with a passkey at ``party``; the new account's id, and their browser (signed in)."""
    browser = w.browser()
    handle, options = sign_up_page(w, browser, at_discovery(w, browser, party))
    passkey_signup.finish(w.journeys, browser, handle, registration(credential, options), "Anna")
    return w.downstream(party.protocol).answered.pop().result.account.account_id, browser


def test_a_sign_up_creates_one_account_and_signs_it_in_to_the_waiting_app() -> None:
    party = app(Protocol.OIDC)
    w = World([party])
    browser = w.browser()
    discovery = at_discovery(w, browser, party)
    handle, options = sign_up_page(w, browser, discovery)

    outgoing = passkey_signup.finish(w.journeys, browser, handle, registration("new-key", options), "  Anna  B ")

    [answered] = w.downstream(party.protocol).answered
    result = answered.result
    assert result.created_account and result.upstream == passwordless.PASSKEY_UPSTREAM
    assert result.acr == REFEDS_MFA and {"hwk", "user", "mfa"} <= set(result.amr)
    assert result.released.get("name") == "Anna B" and "email" not in result.released
    assert outgoing == w.downstream(party.protocol).outgoing_for(result, answered.sid)
    [identity] = w.accounts.identities(result.account.account_id)
    assert (identity.issuer, identity.upstream) == (passkey_signup.SIGN_UP_ISSUER, passwordless.PASSKEY_UPSTREAM)
    assert list(w.accounts.accounts) == [result.account.account_id]
    [passkey] = w.authenticators.of(result.account.account_id)
    assert w.passkeys.owners["new-key"] == passkey
    session = browser.sso()
    assert session is not None and session.account_id == result.account.account_id and session.acr == REFEDS_MFA
    assert browser.renewals == 1 and not browser.holds(discovery)  # the waiting login is used up
    assert [e.account_id for e in w.audit.of(AuditKind.ACCOUNT_CREATED)] == [result.account.account_id]
    assert [e.account_id for e in w.audit.of(AuditKind.AUTHENTICATOR_ADDED)] == [result.account.account_id]


def test_a_registration_that_does_not_verify_creates_nothing_and_asks_again() -> None:
    party = app(Protocol.SAML)
    w = World([party])
    browser = w.browser()
    handle, options = sign_up_page(w, browser, at_discovery(w, browser, party))
    older = w.passkeys.registration_options("someone-else", "x", w.clock.now()).options_json

    for given in (registration("k", options, user_verified=False), registration("k", older), "{not json"):
        page = passkey_signup.finish(w.journeys, browser, handle, given, "Anna")
        assert isinstance(page, Page) and page.data["failed"]
        handle, options = str(page.data["handle"]), str(page.data["options"])

    assert not w.accounts.accounts and not w.passkeys.owners and not w.downstream(party.protocol).answered
    assert not w.audit.of(AuditKind.ACCOUNT_CREATED)


def test_tries_are_limited() -> None:
    party = app(Protocol.SAML)
    w = World([party])
    browser = w.browser()
    handle, _ = sign_up_page(w, browser, at_discovery(w, browser, party))
    wrong = '{"credential": "k", "challenge": ""}'
    for _ in range(passkey_signup.MAX_ATTEMPTS - 1):
        page = passkey_signup.finish(w.journeys, browser, handle, wrong, "")
        handle = str(page.data["handle"]) if isinstance(page, Page) else ""

    with pytest.raises(DownstreamFailure):
        passkey_signup.finish(w.journeys, browser, handle, wrong, "")
    assert not w.accounts.accounts


def test_a_passkey_that_cannot_be_stored_after_all_leaves_no_account() -> None:
    party = app(Protocol.OIDC)
    w = World([party])
    browser = w.browser()
    handle, options = sign_up_page(w, browser, at_discovery(w, browser, party))
    w.passkeys.refuse_adding = True  # as if a concurrent request enrolled the same credential meanwhile

    page = passkey_signup.finish(w.journeys, browser, handle, registration("k", options), "Anna")

    assert isinstance(page, Page) and page.data["failed"]
    assert not w.accounts.accounts and not w.downstream(party.protocol).answered
    assert len(w.audit.of(AuditKind.ACCOUNT_DELETED)) == 1 and not w.audit.of(AuditKind.ACCOUNT_CREATED)


def test_a_replayed_answer_creates_nothing_the_second_time() -> None:
    party = app(Protocol.OIDC)
    w = World([party])
    browser = w.browser()
    handle, options = sign_up_page(w, browser, at_discovery(w, browser, party))
    answer = registration("k", options)
    passkey_signup.finish(w.journeys, browser, handle, answer, "Anna")
    browser.bind(handle)  # even a browser that still offers the handle

    with pytest.raises(errors.LoginStateInvalid):
        passkey_signup.finish(w.journeys, browser, handle, answer, "Anna")
    assert len(w.accounts.accounts) == 1 and len(w.downstream(party.protocol).answered) == 1


def test_a_sign_up_handle_of_another_browser_is_refused() -> None:
    party = app(Protocol.OIDC)
    w = World([party])
    browser = w.browser()
    handle, options = sign_up_page(w, browser, at_discovery(w, browser, party))

    with pytest.raises(errors.LoginStateInvalid):
        passkey_signup.finish(w.journeys, w.browser(), handle, registration("k", options), "Mallory")
    with pytest.raises(errors.LoginStateInvalid):  # nor may another browser start one from this discovery page
        passkey_signup.begin(w.journeys, w.browser(), at_discovery(w, w.browser(), party))
    assert not w.accounts.accounts


def test_the_new_account_signs_in_again_with_the_passkey_alone() -> None:
    party = app(Protocol.OIDC)
    w = World([party])
    account_id, _ = signed_up(w, party, "my-key")
    browser = w.browser()
    page = passwordless.begin(w.journeys, browser, at_discovery(w, browser, party))
    assert isinstance(page, Page)

    passwordless.finish(w.journeys, browser, str(page.data["handle"]), assertion("my-key", str(page.data["options"])))

    [answered] = w.downstream(party.protocol).answered
    assert answered.result.account.account_id == account_id and not answered.result.created_account


def test_not_offered_where_the_app_names_its_upstreams_without_passkey() -> None:
    party = app(Protocol.OIDC, allowed=(OIDC_UPSTREAM, SAML_UPSTREAM))
    w = World([party])
    browser = w.browser()
    discovery = at_discovery(w, browser, party)

    assert not passkey_signup.offered(w.journeys, party)
    with pytest.raises(DownstreamFailure) as refused:
        passkey_signup.begin(w.journeys, browser, discovery)
    assert isinstance(refused.value.error, errors.UnknownUpstream)
    assert passkey_signup.offered(w.journeys, app(Protocol.OIDC, allowed_upstreams=("passkey",)))


def test_not_offered_at_the_operator_consoles_sign_in() -> None:
    """A new account holds no operator role: the console could only refuse it (issue 19)."""
    w = World([app(Protocol.OIDC)])
    console_sign_in = console_party(ConsolePolicy())

    assert passwordless.offered(w.journeys, console_sign_in)  # signing in with a passkey is offered there
    assert not passkey_signup.offered(w.journeys, console_sign_in)


def test_not_begun_for_an_app_that_requires_more_than_a_passkey_reaches() -> None:
    party = app(Protocol.OIDC)
    w = World([party])
    browser = w.browser()
    discovery = at_discovery(w, browser, party, login_request(party, acr_values=("urn:example:loa:4",)))

    with pytest.raises(DownstreamFailure) as refused:
        passkey_signup.begin(w.journeys, browser, discovery)
    assert isinstance(refused.value.error, errors.InsufficientAssurance)


def test_a_linked_provider_reaches_the_same_account_and_the_portal_names_the_passkey() -> None:
    party = app(Protocol.OIDC)
    w = World([party])
    account_id, _ = signed_up(w, party)
    anna = w.person(OIDC_UPSTREAM, "anna-at-op")
    w.accounts.link_identity(account_id, anna, w.clock.now())  # as the portal's confirmed link does

    views = account_data.identities(w.journeys, account_id)
    passkey_view = next(v for v in views if v.passkey)
    assert passkey_view.upstream_name == "Passkey"
    browser = w.browser()
    outgoing = login.begin(w.journeys, browser, login_request(party, upstream_hints=(OIDC_UPSTREAM.name,)))
    handle, reply = w.oidc.reply(outgoing)
    upstream_answer(w.journeys, browser, Protocol.OIDC, handle, reply, OIDC_UPSTREAM.name)
    assert w.downstream(party.protocol).answered.pop().result.account.account_id == account_id


def test_the_last_way_in_of_a_passkey_account_cannot_be_removed() -> None:
    party = app(Protocol.OIDC)
    w = World([party])
    account_id, browser = signed_up(w, party)
    [passkey] = w.authenticators.of(account_id)
    [own] = w.accounts.identities(account_id)

    # the passkey identity is not unlinked, and the only passkey is not removed
    page = portal_links.unlink(w.journeys, browser, own.issuer, own.subject)
    assert isinstance(page, Page) and page.status == 409
    refused = authenticators.remove(w.journeys, browser, passkey.authenticator_id)
    assert refused.template == ways_in.LAST and refused.status == 409
    assert w.authenticators.of(account_id) == [passkey]
    shown = portal.account_page(w.journeys, browser, portal.IDENTITIES, linking=True)
    assert shown.data["removable"] == [False] and not shown.data["can_unlink"]

    # with a provider linked, the passkey may go; the provider may go while a passkey stays
    anna = w.person(OIDC_UPSTREAM, "anna-at-op")
    w.accounts.link_identity(account_id, anna, w.clock.now())
    assert ways_in.may_remove_factor(w.journeys, account_id, passkey.authenticator_id)
    assert ways_in.may_unlink(w.journeys, account_id, anna.issuer, anna.subject)
    w.authenticators.remove(account_id, passkey.authenticator_id)
    assert not ways_in.may_unlink(w.journeys, account_id, anna.issuer, anna.subject)
    page = portal_links.unlink(w.journeys, browser, anna.issuer, anna.subject)
    assert isinstance(page, Page) and page.status == 409
    assert len(w.accounts.identities(account_id)) == 2
