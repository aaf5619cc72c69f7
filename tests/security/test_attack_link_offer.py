"""The e-mail link offer under attack (issue 5, linking flow 2; docs/security.md "Pre-account takeover").

The attacker holds an account at another provider with the victim's address, verified there ("other",
Mallory); the victim signs in with her own provider ("op", Anna). A matching verified address may only ever
lead to an offer that the person completes by proving the OLD identity in the same browser: the attacker,
who cannot sign in as the victim, can never reach her account, and a victim who declines gets her own.
"""

from __future__ import annotations

from typing import Any

import lxml.html  # type: ignore[import-untyped]
import pytest
import requests
from sqlalchemy import create_engine, select

from broker.storage.tables import AuditEventRow, LinkedIdentityRow
from tests.flows.federation import Federation
from tests.peers.browser import Browser
from tests.security.attack_support import OFFER, press, until_app_or_offer
from tests.security.test_attack_accounts import MALLORY, World, world  # noqa: F401  (fixture)


def subject(federation: Federation, browser: Browser, request_id: str, page: requests.Response) -> Any:
    response = federation.sps["sp1"].parse(browser.form_fields(page)["SAMLResponse"], request_id)
    assert response is not None
    return response


def test_the_attacker_who_came_first_never_gets_the_victims_sign_in(world: World) -> None:  # noqa: F811  (the fixture, imported)
    fed = world.federation
    with Browser() as attacker:
        request_id, page = until_app_or_offer(fed, attacker, "other")
        mallory = subject(fed, attacker, request_id, page)  # the first: no match, an ordinary account
    with Browser() as victim:
        request_id, page = until_app_or_offer(fed, victim, "op")
        assert OFFER in page.text and "Sign in with Other provider to link" in page.text
        assert fed.accounts() == 1  # nothing created, nothing linked while the offer waits
        anna = subject(fed, victim, request_id, press(victim, page, "continue with a separate account"))

    assert fed.accounts() == 2
    assert anna.get_subject().text != mallory.get_subject().text
    assert anna.get_identity()["givenName"] == ["Anna"]


def test_proving_the_old_identity_links_the_new_one(world: World) -> None:  # noqa: F811  (the fixture, imported)
    """The real owner of both identities links them: afterwards either provider reaches one account."""
    fed = world.federation
    world.other.sign_in_as(MALLORY)  # here "Mallory" is simply the person's account at the other provider
    with Browser() as person:
        request_id, page = until_app_or_offer(fed, person, "other")
        first = subject(fed, person, request_id, page)
    with Browser() as person:
        request_id, page = until_app_or_offer(fed, person, "op")
        linked = subject(fed, person, request_id, press(person, page, "Sign in with Other provider to link"))

    assert fed.accounts() == 1 and fed.count(LinkedIdentityRow) == 2
    assert linked.get_subject().text == first.get_subject().text
    with Browser() as person:  # and the new identity now signs in straight to that account
        request_id, page = until_app_or_offer(fed, person, "op")
        assert subject(fed, person, request_id, page).get_subject().text == first.get_subject().text
    assert "identity-linked" in _audit_kinds(fed)


def test_an_offer_is_single_use_and_bound_to_its_browser(world: World) -> None:  # noqa: F811  (the fixture, imported)
    fed = world.federation
    with Browser() as someone:
        until_app_or_offer(fed, someone, "other")
    with Browser() as victim, Browser() as thief:
        _, page = until_app_or_offer(fed, victim, "op")
        form = lxml.html.document_fromstring(page.text).forms[-1]
        action = requests.compat.urljoin(page.url, form.action)
        stolen = thief.post(action, {"csrf_token": "x"})
        assert stolen.status_code == 400  # another browser: no session, no token, no offer
        press(victim, page, "continue with a separate account")
        again = victim.post(action, {i.name: i.value for i in form.inputs if i.name}, initiator=page.url)
        assert again.status_code == 400 and "Traceback" not in again.text  # used
    assert fed.accounts() == 2


@pytest.mark.parametrize("verified", [False, None])
def test_an_unverified_address_never_leads_to_an_offer(world: World, verified: bool | None,  # noqa: F811
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Non-verifying IdP / unexpired e-mail change: the address is not verified now, so it matches nothing."""
    fed = world.federation
    with Browser() as victim:
        until_app_or_offer(fed, victim, "op")
    claims: Any = MALLORY.claims  # the provider reads this account's claims at each sign-in
    if verified is None:
        monkeypatch.delitem(claims, "email_verified")
    else:
        monkeypatch.setitem(claims, "email_verified", verified)
    with Browser() as attacker:
        _, page = until_app_or_offer(fed, attacker, "other")
        assert OFFER not in page.text
    assert fed.accounts() == 2


def _audit_kinds(federation: Federation) -> list[str]:
    engine = create_engine(federation.database_url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(select(AuditEventRow.kind)).scalars())
    finally:
        engine.dispose()
