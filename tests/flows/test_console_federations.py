"""The console's federations page (issue 19), over real HTTP: a federation feed served on 127.0.0.1 and signed by
the pinned federation key shows with its identity providers; "Refresh now" takes a changed feed up through the
directory's own refresh, audited with the operator; a broken feed shows its error and keeps the last good copy;
roles without ``manage-parties`` may look but not refresh."""

from __future__ import annotations

import requests

from broker.core.audit import AuditKind
from broker.core.operators import Role
from tests.flows.console_support import console_operator
from tests.flows.federation import Federation
from tests.flows.federation_feed_support import add_feed, served_feed, signed_aggregate
from tests.flows.portal_support import services
from tests.peers.browser import Browser

PAGE = "/console/federations/"


def _row(page: requests.Response, name: str) -> str:
    """The table row of source ``name``."""
    return page.text.split(f">{name}</a>")[1].split("</tr>")[0]


def test_a_feed_shows_with_its_identity_providers_and_refresh_now_takes_a_change_up(federation: Federation,
                                                                                    browser: Browser) -> None:
    operator = console_operator(federation, browser, Role.OPERATOR)
    with served_feed() as feed:
        feed.document = signed_aggregate(3)
        name = add_feed(federation, feed)

        listing = browser.get(federation.url + PAGE)
        assert listing.status_code == 200 and feed.url in listing.text, listing.text[:500]
        assert "<td>3</td>" in _row(listing, name)
        entities = browser.get(f"{federation.url}/console/federations/entities",
                               params={"source": name, "q": "Example 2"})
        assert "University of Example 2" in entities.text and "University of Example 1" not in entities.text

        feed.document = signed_aggregate(5, names={4: ("Harbour Academy", "Académie du Port")})
        refreshed = browser.submit(listing, form="refresh-federation-city")

        assert refreshed.status_code == 200 and 'id="refreshed"' in refreshed.text, refreshed.text[:500]
        assert "<td>5</td>" in _row(refreshed, name)
        everyone = browser.get(f"{federation.url}/console/federations/entities", params={"source": name})
        assert "Harbour Academy" in everyone.text and everyone.text.count("<code>https://idp") == 5
    records = [r for r in services(federation).audit.events(limit=20) if r.kind == AuditKind.METADATA_REFRESHED.value]
    assert records and f"by operator {operator}" in (records[0].reason or "") and records[0].upstream == name


def test_a_broken_feed_shows_its_error_and_keeps_the_last_good_copy(federation: Federation,
                                                                    browser: Browser) -> None:
    console_operator(federation, browser, Role.ADMIN)
    with served_feed() as feed:
        feed.document = signed_aggregate(3)
        name = add_feed(federation, feed)
        feed.status = 500

        refreshed = browser.submit(browser.get(federation.url + PAGE), form="refresh-federation-city")

        assert "failed; the last good copy is kept" in refreshed.text and "HTTP 500" in _row(refreshed, name)
        assert "<td>3</td>" in _row(refreshed, name)
        entities = browser.get(f"{federation.url}/console/federations/entities", params={"source": name})
        assert entities.text.count("<code>https://idp") == 3


def test_roles_without_manage_parties_may_look_but_not_refresh(federation: Federation, browser: Browser) -> None:
    console_operator(federation, browser, Role.SUPPORT, Role.AUDITOR)
    with served_feed() as feed:
        feed.document = signed_aggregate(2)
        name = add_feed(federation, feed)
        listing = browser.get(federation.url + PAGE)
        assert listing.status_code == 200 and name in listing.text and "Refresh now" not in listing.text
        token = listing.text.split('name="csrf_token" value="')[1].split('"')[0]

        posted = browser.post(f"{federation.url}/console/federations/refresh", {"csrf_token": token, "name": name},
                              initiator=federation.url + PAGE)

        assert posted.status_code == 403
        assert not [r for r in services(federation).audit.events(limit=20)
                    if r.kind == AuditKind.METADATA_REFRESHED.value]
    assert browser.get(f"{federation.url}/console/federations/entities",
                       params={"source": "federation/none"}).status_code == 404
