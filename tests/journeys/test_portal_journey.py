"""The citizen portal's pages as a journey (``broker.journeys.portal``, ``account_data``), over the fakes
(``fakes_support``): what each page shows, consent withdrawal with grant revocation, and erasure."""

from __future__ import annotations

import pytest

from broker.core import errors
from broker.core.audit import AuditKind
from broker.core.claims import ClaimValue
from broker.core.consent import Consent, ConsentHow
from broker.core.grants import Grant
from broker.core.model import Protocol, UpstreamIdentity
from broker.core.outcomes import Page, Redirect
from broker.core.sessions import SsoSession
from broker.journeys import account_data, login, portal
from broker.journeys.portal_words import SENTENCES, SignedInAs, label, shown_value
from broker.journeys.upstream_answers import upstream_answer
from tests.journeys.fakes_support import OIDC_APP_ID, OIDC_UPSTREAM, FakeBrowser, World, app, login_request


def world() -> World:
    return World([app(Protocol.OIDC, allowed=(OIDC_UPSTREAM,))])


def signed_in(w: World) -> tuple[FakeBrowser, SsoSession]:
    """A browser signed in through the OIDC upstream, at the OIDC app (its SSO session serves the portal)."""
    browser = w.browser()
    w.person(OIDC_UPSTREAM, "anna", email="anna@example.org")
    handle, reply = w.oidc.reply(login.begin(w.journeys, browser, login_request(w.apps[0])))
    upstream_answer(w.journeys, browser, Protocol.OIDC, handle, reply, OIDC_UPSTREAM.name)
    sso = browser.sso()
    assert sso is not None
    return browser, sso


def consented(w: World, account_id: str, party_id: str) -> None:
    w.consents.record(Consent(account_id, party_id, frozenset({"email"}), frozenset(), "1", w.clock.now(),
                              ConsentHow.PAGE))


def grant(w: World, account_id: str, client_id: str = OIDC_APP_ID) -> str:
    w.grants.create_grant(Grant("g-1", client_id, account_id, ("openid",), frozenset({"email"}),
                                "https://oidc-app.city.example/callback", None, None, w.clock.now(), None, (),
                                "sid", OIDC_UPSTREAM.name, w.clock.now()))
    return "g-1"


@pytest.mark.parametrize("template", [portal.HOME, portal.IDENTITIES, portal.APPS, portal.PROFILE])
def test_without_an_sso_session_every_page_offers_the_sign_in(template: str) -> None:
    w = world()
    shown = portal.account_page(w.journeys, w.browser(), template, linking=True)
    assert shown == Page(portal.SIGN_IN, shows_logos=template == portal.APPS)
    assert portal.consents_page(w.journeys, w.browser()) == Page(portal.SIGN_IN)
    with pytest.raises(errors.LoginStateInvalid):
        portal.export(w.journeys, w.browser())


def test_pages_show_identities_apps_and_profile() -> None:
    w = world()
    browser, sso = signed_in(w)
    consented(w, sso.account_id, OIDC_APP_ID)
    gone = "urn:example:gone"
    consented(w, sso.account_id, gone)
    w.journeys.audit(AuditKind.LOGIN_SUCCEEDED, account_id=sso.account_id, downstream="https://old.example/sp")

    identities = portal.account_page(w.journeys, browser, portal.IDENTITIES, linking=False)
    assert identities.data["linking"] is False and identities.data["can_unlink"] is False
    assert [v.upstream_name for v in identities.data["identities"]] == ["Citizen ID"]

    apps = portal.account_page(w.journeys, browser, portal.APPS, linking=True)
    assert apps.shows_logos
    names = {a.party_id: a.name for a in apps.data["apps"]}
    # a registered app by its name; one no longer registered by its host, or None (the page names it)
    assert names == {"https://old.example/sp": "old.example", OIDC_APP_ID: "City oidc app", gone: None}
    assert apps.data["apps"][0].party_id == "https://old.example/sp"  # the only one with a sign-in on record

    profile = portal.account_page(w.journeys, browser, portal.PROFILE, linking=True)
    assert {(r.get("value"), r["source"]) for r in profile.data["profile"]} >= {("anna@example.org", "Citizen ID")}

    consents = portal.consents_page(w.journeys, browser)
    assert consents.shows_logos and consents.data["signed_in"] is True
    assert {r["app"] for r in consents.data["rows"]} == {"City oidc app", None}


def test_withdrawal_revokes_the_grants_and_returns_to_the_consents_page() -> None:
    w = world()
    browser, sso = signed_in(w)
    consented(w, sso.account_id, OIDC_APP_ID)
    granted = grant(w, sso.account_id)

    done = portal.withdraw_consent(w.journeys, browser, portal.app_ref(OIDC_APP_ID), "/account/consents")

    assert done == Redirect("/account/consents", status=303)
    current = w.consents.current(sso.account_id, OIDC_APP_ID)
    assert current is not None and current.how is ConsentHow.WITHDRAWN
    assert granted in w.grants.revoked
    assert [e.reason for e in w.audit.of(AuditKind.CONSENT_WITHDRAWN)] == ["portal; 1 grants revoked"]
    with pytest.raises(errors.InvalidRequest):  # nothing left to withdraw
        portal.withdraw_consent(w.journeys, browser, portal.app_ref(OIDC_APP_ID), "/account/consents")


def test_deletion_ends_sessions_revokes_grants_and_erases_the_account() -> None:
    w = world()
    browser, sso = signed_in(w)
    consented(w, sso.account_id, OIDC_APP_ID)
    granted = grant(w, sso.account_id)

    assert portal.delete_account(w.journeys, browser) == Page(portal.DONE, {"heading": "deleted"})

    assert browser.sign_outs == 1  # the browser's session is emptied and renewed
    assert w.accounts.get(sso.account_id) is None
    assert granted in w.grants.revoked
    assert w.sso_sessions.active(sso.account_id, w.clock.now()) == []
    assert [e.account_id for e in w.audit.of(AuditKind.ACCOUNT_DELETED)] == [sso.account_id]
    assert browser.sso() is None  # its session ended with the others


def test_sign_out_everywhere_ends_every_session_and_says_so() -> None:
    w = world()
    browser, sso = signed_in(w)
    assert portal.sign_out_everywhere(w.journeys, browser) == sso
    assert browser.sso() is None
    assert [e.reason for e in w.audit.of(AuditKind.LOGGED_OUT)] == ["sign out everywhere; 1 sessions"]
    with pytest.raises(errors.LoginStateInvalid):
        portal.sign_out_everywhere(w.journeys, browser)


def test_the_export_holds_the_account_its_consents_and_audit_trail() -> None:
    w = world()
    browser, sso = signed_in(w)
    consented(w, sso.account_id, OIDC_APP_ID)
    exported = portal.export(w.journeys, browser)
    assert exported["account"]["id"] == sso.account_id
    # the whole history: the operator's exemption at the login, then the answer on the page
    assert [(c["app"], c["how"]) for c in exported["consents"]] == [(OIDC_APP_ID, "exempt"), (OIDC_APP_ID, "page")]
    assert exported["identities"][0]["upstream_name"] == "Citizen ID"
    assert len(exported["audit_events"]) <= account_data.AUDIT_LIMIT
    assert any(r["kind"] == AuditKind.LOGIN_SUCCEEDED.value for r in exported["audit_events"])


def test_the_export_names_each_audit_record_by_its_chain_and_seq() -> None:
    """The trail is parallel hash chains (issue 21): ``seq`` alone names no record, so the export gives both."""
    w = world()
    browser, sso = signed_in(w)
    w.audit.chain = 5
    w.journeys.audit(AuditKind.CONSENT_GIVEN, account_id=sso.account_id, downstream=OIDC_APP_ID)

    exported = portal.export(w.journeys, browser)["audit_events"]

    stored = w.audit.events(account_id=sso.account_id, limit=account_data.AUDIT_LIMIT)
    assert [(r["chain"], r["seq"], r["kind"]) for r in exported] == [(r.chain, r.seq, r.kind) for r in stored]
    assert {r["chain"] for r in exported} == {1, 5}
    assert (exported[0]["chain"], exported[0]["seq"]) == (5, 1)  # newest first: chain 5's first record


def test_every_page_says_who_is_signed_in_and_with_which_method() -> None:
    w = world()
    assert portal.who(w.journeys, w.browser()) is None
    browser, _ = signed_in(w)

    assert portal.who(w.journeys, browser) == SignedInAs("Anna Jansen", "Citizen ID")


@pytest.mark.parametrize(("claims", "name"), [
    ({"given_name": "Anna", "family_name": "Jansen", "email": "a@example.org"}, "Anna Jansen"),
    ({"email": "anna@example.org"}, "anna@example.org"),
    ({"name": "  Anna \n Jansen ", "email": "a@example.org"}, "Anna Jansen"),
    ({}, None),  # never an id: the page then says only the method
])
def test_the_name_shown_is_the_persons_name_else_their_e_mail_address(
        claims: dict[str, ClaimValue], name: str | None) -> None:
    w = world()
    browser = w.browser()
    identity = UpstreamIdentity(OIDC_UPSTREAM.name, OIDC_UPSTREAM.issuer, "anna", claims, None, w.clock.now())
    w.upstream(Protocol.OIDC).answers_as(identity)
    handle, reply = w.oidc.reply(login.begin(w.journeys, browser, login_request(w.apps[0])))
    upstream_answer(w.journeys, browser, Protocol.OIDC, handle, reply, OIDC_UPSTREAM.name)

    who = portal.who(w.journeys, browser)

    assert who is not None and (who.name, who.method) == (name, "Citizen ID")


def test_the_profile_says_yes_no_values_as_sentences_and_names_no_upstream() -> None:
    w = world()
    browser, _ = signed_in(w)

    rows = portal.account_page(w.journeys, browser, portal.PROFILE, linking=True).data["profile"]

    sentences = [r["sentence"] for r in rows if "sentence" in r]
    assert sentences == [SENTENCES["email_verified"][True]]
    assert "Your e-mail address was confirmed by %(provider)s." in sentences
    assert {r["claim"] for r in rows if "claim" in r} == {"e-mail address", "full name"}
    assert all(r["source"] == "Citizen ID" for r in rows)
    assert not any("upstream" in str(r.get("claim", "")) + str(r.get("sentence", "")) for r in rows)


def test_values_that_mean_nothing_to_a_citizen_are_left_out_and_addresses_read_as_text() -> None:
    assert SENTENCES["email_relay"][False] is None
    assert shown_value({"street_address": "Main St 1", "locality": "Espoo"}) == "Main St 1, Espoo"
    assert shown_value({"formatted": "Main St 1\nEspoo", "locality": "Espoo"}) == "Main St 1\nEspoo"
    assert shown_value(("a", "b")) == "a, b"
    assert label("email_verified") == "whether your e-mail address was confirmed"
    assert label("email") == "e-mail address"
