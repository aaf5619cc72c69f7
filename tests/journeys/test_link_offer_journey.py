"""The link offer on its own, over fakes (no Flask): a first sign-in at one upstream whose verified address is
that of an account known at another gets an offer, never a merge; and only between upstreams the operator
trusts for e-mail (``[linking] email_authoritative``)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from broker.core import errors
from broker.core.audit import AuditKind
from broker.core.model import EmailTrust, Protocol, UpstreamParty
from broker.core.outcomes import Outcome, Page, PostForm, Redirect
from broker.core.pending_records import LinkOffer
from broker.journeys import link_offer, login
from broker.journeys.context import DownstreamFailure, JourneySettings
from broker.journeys.upstream_answers import upstream_answer
from tests.journeys.fakes_support import (
    OIDC_UPSTREAM,
    SAML_UPSTREAM,
    SETTINGS,
    FakeBrowser,
    World,
    app,
    login_request,
)

ADDRESS = "anna@example.org"
BOTH_TRUSTED = replace(SETTINGS, email_authoritative=frozenset({OIDC_UPSTREAM.name, SAML_UPSTREAM.name}))
#: (the upstream of the existing account, the upstream of the first sign-in), both ways round
PAIRS = [(OIDC_UPSTREAM, SAML_UPSTREAM), (SAML_UPSTREAM, OIDC_UPSTREAM)]


def sign_in(w: World, browser: FakeBrowser, upstream: UpstreamParty) -> Outcome:
    """A login at the app through ``upstream`` (a hint), up to what the journey answers."""
    outgoing = login.begin(w.journeys, browser, login_request(w.apps[0], upstream_hints=(upstream.name,)))
    handle, reply = w.upstream(upstream.protocol).reply(outgoing)
    arrived_at = upstream.name if upstream.protocol is Protocol.OIDC else None
    return upstream_answer(w.journeys, browser, upstream.protocol, handle, reply, arrived_at)


def world_with_account(existing: UpstreamParty, trust: EmailTrust = EmailTrust.VERIFIED,
                       settings: JourneySettings = BOTH_TRUSTED) -> tuple[World, str]:
    """A world whose one account signed in at ``existing`` with ``ADDRESS`` (asserted with ``trust``)."""
    w = World([app(Protocol.SAML)], settings=settings)
    w.person(existing, "anna-before", email=ADDRESS, trust=trust)
    assert not isinstance(sign_in(w, w.browser(), existing), Page)
    [account_id] = w.accounts.accounts
    return w, account_id


def offer_page(w: World, browser: FakeBrowser, new: UpstreamParty) -> Page:
    w.person(new, "anna-new", email=ADDRESS)
    page = sign_in(w, browser, new)
    assert isinstance(page, Page), page
    return page


@pytest.mark.parametrize(("existing", "new"), PAIRS)
def test_a_first_sign_in_with_a_verified_address_of_another_account_gets_an_offer(
        existing: UpstreamParty, new: UpstreamParty) -> None:
    w, account_id = world_with_account(existing)
    browser = w.browser()

    page = offer_page(w, browser, new)

    assert page.template == "link_offer.html"
    assert page.data["previous"] == [existing] and page.data["new"] == new
    assert browser.holds(page.data["handle"]) and w.pending.kinds_of(page.data["handle"]) == {LinkOffer.KIND}
    assert w.accounts.find_by_identity(new.issuer, "anna-new") is None  # no account made, and no merge
    assert [i.upstream for i in w.accounts.identities(account_id)] == [existing.name]
    assert len(w.sso_sessions.records) == 1 and browser.sso() is None and browser.renewals == 0
    assert len(w.saml_answers.answered) == 1  # only the earlier login was answered


@pytest.mark.parametrize(("existing", "new"), PAIRS)
def test_separate_signs_in_to_a_new_account(existing: UpstreamParty, new: UpstreamParty) -> None:
    w, account_id = world_with_account(existing)
    browser = w.browser()
    handle = offer_page(w, browser, new).data["handle"]

    outgoing = link_offer.separate(w.journeys, browser, handle)

    created = w.accounts.find_by_identity(new.issuer, "anna-new")
    assert created is not None and created.account_id != account_id
    [_, answered] = w.saml_answers.answered
    assert answered.result.account == created and answered.result.created_account
    assert outgoing == w.saml_answers.outgoing_for(answered.result, answered.sid)
    assert [i.upstream for i in w.accounts.identities(account_id)] == [existing.name]
    assert browser.renewals == 1 and not w.audit.of(AuditKind.LINKED)
    with pytest.raises(errors.LoginStateInvalid):  # the offer is used once
        link_offer.separate(w.journeys, browser, handle)


def test_the_offer_is_the_browsers_that_got_it() -> None:
    w, _ = world_with_account(OIDC_UPSTREAM)
    handle = offer_page(w, w.browser(), SAML_UPSTREAM).data["handle"]

    with pytest.raises(errors.LoginStateInvalid):
        link_offer.separate(w.journeys, w.browser(), handle)
    assert w.accounts.find_by_identity(SAML_UPSTREAM.issuer, "anna-new") is None
    assert w.pending.kinds_of(handle) == {LinkOffer.KIND}


@pytest.mark.parametrize(("existing", "new"), PAIRS)
def test_proving_the_earlier_sign_in_and_confirming_links_the_identity(
        existing: UpstreamParty, new: UpstreamParty) -> None:
    w, account_id = world_with_account(existing)
    browser = w.browser()
    handle = offer_page(w, browser, new).data["handle"]

    outgoing = link_offer.prove(w.journeys, browser, handle, existing.name)

    assert isinstance(outgoing, Redirect if existing.protocol is Protocol.OIDC else PostForm)
    assert w.upstream(existing.protocol).begun[-1] == (existing.name, None, True)  # a fresh sign-in is asked
    proof_handle, reply = w.upstream(existing.protocol).reply(outgoing)
    arrived_at = existing.name if existing.protocol is Protocol.OIDC else None
    confirm = upstream_answer(w.journeys, browser, existing.protocol, proof_handle, reply, arrived_at)
    assert isinstance(confirm, Page) and confirm.template == "link_confirm.html"
    assert w.accounts.find_by_identity(new.issuer, "anna-new") is None  # nothing linked before the person confirms

    link_offer.confirm(w.journeys, browser, confirm.data["handle"])

    assert {i.upstream for i in w.accounts.identities(account_id)} == {existing.name, new.name}
    [linked] = w.audit.of(AuditKind.LINKED)
    assert linked.account_id == account_id and linked.upstream == new.name
    assert w.saml_answers.answered[-1].result.account.account_id == account_id


def test_an_address_from_an_upstream_not_trusted_for_email_gets_no_offer() -> None:
    only_oidc = replace(SETTINGS, email_authoritative=frozenset({OIDC_UPSTREAM.name}))
    w, account_id = world_with_account(OIDC_UPSTREAM, settings=only_oidc)
    w.person(SAML_UPSTREAM, "anna-new", email=ADDRESS)

    outgoing = sign_in(w, w.browser(), SAML_UPSTREAM)

    assert isinstance(outgoing, PostForm)  # signed in as usual, to an account of its own
    created = w.accounts.find_by_identity(SAML_UPSTREAM.issuer, "anna-new")
    assert created is not None and created.account_id != account_id
    assert not w.pending.rows


def test_an_earlier_address_from_an_upstream_not_trusted_for_email_offers_nothing() -> None:
    only_saml = replace(SETTINGS, email_authoritative=frozenset({SAML_UPSTREAM.name}))
    w, _ = world_with_account(OIDC_UPSTREAM, settings=only_saml)
    w.person(SAML_UPSTREAM, "anna-new", email=ADDRESS)

    assert isinstance(sign_in(w, w.browser(), SAML_UPSTREAM), PostForm)
    assert w.accounts.find_by_identity(SAML_UPSTREAM.issuer, "anna-new") is not None


def test_an_unverified_address_is_never_matched() -> None:
    w, _ = world_with_account(OIDC_UPSTREAM)
    w.person(SAML_UPSTREAM, "anna-new", email=ADDRESS, trust=EmailTrust.UNVERIFIED)
    assert w.saml.identities[SAML_UPSTREAM.name].linkable_email is None

    assert isinstance(sign_in(w, w.browser(), SAML_UPSTREAM), PostForm)


def test_an_account_whose_address_was_not_verified_is_not_offered() -> None:
    w, _ = world_with_account(OIDC_UPSTREAM, trust=EmailTrust.MUTABLE)
    assert w.accounts.verified_email_owners(ADDRESS) == []
    w.person(SAML_UPSTREAM, "anna-new", email=ADDRESS)

    assert isinstance(sign_in(w, w.browser(), SAML_UPSTREAM), PostForm)


def test_the_offer_dies_when_someone_signs_in_meanwhile() -> None:
    w, _ = world_with_account(OIDC_UPSTREAM)
    browser = w.browser()
    handle = offer_page(w, browser, SAML_UPSTREAM).data["handle"]
    w.person(OIDC_UPSTREAM, "someone-else", email="else@example.org")
    sign_in(w, browser, OIDC_UPSTREAM)  # another person signs in in this browser

    with pytest.raises(DownstreamFailure) as failed:
        link_offer.separate(w.journeys, browser, handle)
    assert isinstance(failed.value.error, errors.LoginStateInvalid)
    assert w.accounts.find_by_identity(SAML_UPSTREAM.issuer, "anna-new") is None


def test_verified_email_owners_matches_the_canonical_address_only() -> None:
    w, account_id = world_with_account(OIDC_UPSTREAM)
    assert [i.account_id for i in w.accounts.verified_email_owners("ANNA@Example.ORG")] == [account_id]
    assert w.accounts.verified_email_owners("\u0430nna@example.org") == []  # a Cyrillic look-alike
