"""The way back to an app (``broker.journeys.way_back``): only from a checked login's return address, only for a
handle this browser holds, never for the portal or an address that is no web page."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from broker.core.model import PORTAL_PARTY, Protocol, UpstreamIdentity
from broker.core.pending_kinds import Kind
from broker.core.pending_records import (
    LinkOffer,
    LinkOfferOidc,
    LoginAtConsent,
    LoginAtDiscovery,
    put_record,
    put_record_with_handle,
)
from broker.journeys.way_back import WayBack, for_login, registered_origin, waiting
from tests.journeys.fakes_support import World, app, login_request


@pytest.mark.parametrize(("return_to", "origin"), [
    ("https://permits.city.example/saml/acs?x=1", "https://permits.city.example/"),
    ("https://app.city.example:8443/cb#f", "https://app.city.example:8443/"),
    ("http://127.0.0.1:5002/callback", "http://127.0.0.1:5002/"),
    ("com.city.app:/callback", None),  # a native app's private-use scheme (RFC 8252 §7.1)
    ("javascript:alert(1)", None),
    ("https://user@evil.example@app.city.example/", None),  # no userinfo tricks in a link
])
def test_the_way_back_is_the_origin_of_a_web_return_address(return_to: str, origin: str | None) -> None:
    assert registered_origin(return_to) == origin


def test_the_way_back_names_the_app_and_skips_the_portal_and_unknown_apps() -> None:
    party = app(Protocol.OIDC)
    w = World([party])
    login = login_request(party)

    assert for_login(w.journeys, login) == WayBack(party.display_name, "https://oidc-app.city.example/")
    portal = replace(login, downstream=PORTAL_PARTY.party_id, protocol=Protocol.PORTAL)
    assert for_login(w.journeys, portal) is None
    assert for_login(w.journeys, replace(login, downstream="https://gone.example/")) is None


def test_only_a_handle_this_browser_holds_is_looked_up() -> None:
    party = app(Protocol.SAML)
    w = World([party])
    login = login_request(party)
    expires = w.journeys.now() + timedelta(minutes=5)
    mine, theirs = w.browser(), w.browser()
    at_consent = put_record(w.journeys.pending, LoginAtConsent(login), expires)
    at_discovery = put_record(w.journeys.pending, LoginAtDiscovery(login), expires)
    identity = UpstreamIdentity("op", "https://op.example", "anna", {}, None, w.journeys.now())
    proving = put_record(w.journeys.pending, LinkOfferOidc(LinkOffer(login, identity, "account-1", ("op",), ""), "{}"),
                         expires)
    for handle in (at_consent, at_discovery, proving):
        mine.bind(handle)
    expected = WayBack(party.display_name, registered_origin(login.return_to) or "")

    assert waiting(w.journeys, mine, at_consent) == expected
    assert waiting(w.journeys, mine, at_discovery) == expected  # a look, not a take: it stays
    assert waiting(w.journeys, mine, at_discovery) == expected
    assert waiting(w.journeys, theirs, at_consent) is None  # another browser's handle is never looked up
    assert waiting(w.journeys, mine, proving) == expected  # a link offer proving at an upstream
    assert waiting(w.journeys, mine, "https://evil.example/") is None and waiting(w.journeys, mine, "") is None


def test_a_look_for_the_way_back_is_one_read_of_the_store_and_skips_expired_or_unreadable_records() -> None:
    """Every kind a login may wait in is asked for at once (``PendingStore.peek_many``: one round trip), in the
    same order as before: an expired record, or one that does not read as its kind, is passed over."""
    party = app(Protocol.SAML)
    w = World([party])
    login = login_request(party)
    now = w.journeys.now()
    browser = w.browser()
    gone = put_record(w.journeys.pending, LoginAtConsent(login), now - timedelta(seconds=1))
    damaged = w.journeys.pending.put(Kind.CONSENT, '{"login": 1}', now + timedelta(minutes=5))
    put_record_with_handle(w.journeys.pending, damaged, LoginAtDiscovery(login), now + timedelta(minutes=5))
    for handle in (gone, damaged):
        browser.bind(handle)
    w.pending.reads.clear()

    assert waiting(w.journeys, browser, gone) is None
    assert waiting(w.journeys, browser, damaged) == WayBack(party.display_name,
                                                            registered_origin(login.return_to) or "")
    assert w.pending.reads == ["peek_many", "peek_many"]
