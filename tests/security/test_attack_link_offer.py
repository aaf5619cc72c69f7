"""The e-mail link offer under attack (issue 5, linking flow 2; issue 15, point 1; docs/security.md
"Pre-account takeover" and "Link offer steered by an attacker").

The attacker holds an account at another provider with the victim's address, verified there ("other",
Mallory); the victim signs in with her own provider ("op", Anna). A matching verified address may only ever
lead to an offer, made only when both providers are trusted for e-mail, completed by a FRESH sign-in with the
old identity in the same browser and SSO session, and then confirmed on a page that names both methods, with
"keep separate" first. The victim here presses "link": the attacker still never shares an account with her.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lxml.html  # type: ignore[import-untyped]
import pytest
import requests
from sqlalchemy import create_engine, select

from broker.storage.tables import AuditEventRow, LinkedIdentityRow
from tests.flows.federation import ExtraUpstream, Federation, saml_status
from tests.peers.browser import Browser
from tests.security.accounts_support import MALLORY, OtherUpstream, World, world
from tests.security.attack_support import (
    AUTHN_FAILED,
    CONFIRM,
    KEEP,
    LINK,
    OFFER,
    RESPONDER,
    federation_with,
    login_with_hint,
    press,
    until_app_or_offer,
)

__all__ = ["world"]  # the fixture, from tests/security/accounts_support.py

PROVE = "Sign in with Other provider to link"


def subject(federation: Federation, browser: Browser, request_id: str, page: requests.Response) -> Any:
    response = federation.sps["sp1"].parse(browser.form_fields(page)["SAMLResponse"], request_id)
    assert response is not None
    return response


def test_the_attacker_who_came_first_never_gets_the_victims_sign_in(world: World) -> None:
    fed = world.federation
    with Browser() as attacker:
        request_id, page = until_app_or_offer(fed, attacker, "other")
        mallory = subject(fed, attacker, request_id, page)  # the first: no match, an ordinary account
    with Browser() as victim:
        request_id, page = until_app_or_offer(fed, victim, "op")
        assert OFFER in page.text and PROVE in page.text
        assert fed.accounts() == 1  # nothing created, nothing linked while the offer waits
        anna = subject(fed, victim, request_id, press(victim, page, "continue with a separate account"))

    assert fed.accounts() == 2
    assert anna.get_subject().text != mallory.get_subject().text
    assert anna.get_identity()["givenName"] == ["Anna"]


def _stale_sign_in(people: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """The attacker's provider (or the attacker's session left in a shared browser) answers without asking anyone
    to sign in: it ignores ``prompt=login`` and reports when Mallory really signed in, an hour ago."""
    provider = people.other.provider
    monkeypatch.setattr(provider, "mischief", dataclasses.replace(
        provider.mischief, claim_overrides={"auth_time": int(time.time()) - 3600}))


def test_the_victim_who_presses_link_is_not_linked_to_a_silently_signed_in_attacker(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """The victim presses "link"; the attacker's provider signs her browser in as Mallory silently. The proof
    asked ``prompt=login`` with ``max_age=0``: an ``auth_time`` from before it is refused, nothing is linked."""
    fed = world.federation
    with Browser() as attacker:
        request_id, page = until_app_or_offer(fed, attacker, "other")
        mallory = subject(fed, attacker, request_id, page)
    _stale_sign_in(world, monkeypatch)
    with Browser() as victim:
        _, page = until_app_or_offer(fed, victim, "op")
        answer = press(victim, page, PROVE)
        assert world.other.provider.last_authorization.get("prompt") == "login"
        assert world.other.provider.last_authorization.get("max_age") == "0"
        assert CONFIRM not in answer.text and "Traceback" not in answer.text
        assert saml_status(victim.form_fields(answer)) == (RESPONDER, AUTHN_FAILED)  # to the app, as a refusal
    assert fed.accounts() == 1 and fed.count(LinkedIdentityRow) == 1  # Mallory's account has Mallory only
    monkeypatch.undo()
    with Browser() as attacker:  # and the attacker still reaches only herself
        request_id, page = until_app_or_offer(fed, attacker, "other")
        again = subject(fed, attacker, request_id, page)
    assert again.get_subject().text == mallory.get_subject().text
    assert again.get_identity()["givenName"] == ["Mallory"]


def test_after_the_proof_nothing_is_linked_until_the_person_confirms(world: World) -> None:
    """The confirmation names the account that answered; "keep separate" is the first button and has the
    focus; keeping them separate gives two accounts."""
    fed = world.federation
    with Browser() as attacker:
        request_id, page = until_app_or_offer(fed, attacker, "other")
        mallory = subject(fed, attacker, request_id, page)
    with Browser() as victim:
        request_id, page = until_app_or_offer(fed, victim, "op")
        confirm = press(victim, page, PROVE)
        assert CONFIRM in confirm.text and "Mallory Attacker" in confirm.text  # whose account answered
        forms = lxml.html.document_fromstring(confirm.text).forms
        assert KEEP in forms[0].text_content() and forms[0].xpath(".//button[@autofocus]")
        assert LINK in forms[1].text_content() and not forms[1].xpath(".//button[@autofocus]")
        assert fed.count(LinkedIdentityRow) == 1 and fed.accounts() == 1  # nothing yet
        anna = subject(fed, victim, request_id, press(victim, confirm, KEEP))
    assert fed.accounts() == 2 and anna.get_subject().text != mallory.get_subject().text


def test_proving_the_old_identity_links_the_new_one(world: World) -> None:
    """The real owner of both identities links them: afterwards either provider reaches one account."""
    fed = world.federation
    world.other.sign_in_as(MALLORY)  # here "Mallory" is simply the person's account at the other provider
    with Browser() as person:
        request_id, page = until_app_or_offer(fed, person, "other")
        first = subject(fed, person, request_id, page)
    with Browser() as person:
        request_id, page = until_app_or_offer(fed, person, "op")
        confirm = press(person, page, PROVE)
        assert CONFIRM in confirm.text and fed.count(LinkedIdentityRow) == 1
        linked = subject(fed, person, request_id, press(person, confirm, LINK))

    assert fed.accounts() == 1 and fed.count(LinkedIdentityRow) == 2
    assert linked.get_subject().text == first.get_subject().text
    with Browser() as person:  # and the new identity now signs in straight to that account
        request_id, page = until_app_or_offer(fed, person, "op")
        assert subject(fed, person, request_id, page).get_subject().text == first.get_subject().text
    assert "identity-linked" in _audit_kinds(fed)


def test_an_offer_is_single_use_and_bound_to_its_browser(world: World) -> None:
    """The thief has a session and a CSRF token of its own (its own offer page), so only the binding of the
    handle to the victim's browser can refuse it; the victim's offer is untouched by the attempt."""
    fed = world.federation
    with Browser() as someone:
        until_app_or_offer(fed, someone, "other")
    with Browser() as victim, Browser() as thief:
        _, page = until_app_or_offer(fed, victim, "op")
        _, own = until_app_or_offer(fed, thief, "op")
        victims = lxml.html.document_fromstring(page.text).forms[-1]
        thiefs = lxml.html.document_fromstring(own.text).forms[-1]
        action = requests.compat.urljoin(page.url, victims.action)
        assert victims.action != thiefs.action
        stolen = thief.post(action, {i.name: i.value for i in thiefs.inputs if i.name}, initiator=own.url)
        assert stolen.status_code == 400 and "Traceback" not in stolen.text
        assert "SAMLResponse" not in stolen.text  # refused as a page: the thief gets no answer for anyone
        request_id_used = press(victim, page, "continue with a separate account")
        assert "SAMLResponse" in victim.form_fields(request_id_used)  # still the victim's, after the attempt
        again = victim.post(action, {i.name: i.value for i in victims.inputs if i.name}, initiator=page.url)
        assert again.status_code == 400 and "Traceback" not in again.text  # used
    assert fed.accounts() == 2


def test_an_offer_dies_when_someone_signs_in_in_that_browser(world: World) -> None:
    """An offer left open on a shared computer: the next person signs in there; the old offer page then links
    nothing (it was made in another SSO session). The form is posted with the next person's own valid CSRF
    token, so only the offer's binding to its SSO session can refuse it."""
    fed = world.federation
    with Browser() as first:
        until_app_or_offer(fed, first, "other")
    with Browser() as shared:
        _, page = until_app_or_offer(fed, shared, "op")  # the offer, left open
        login_with_hint(fed, shared, "other")  # the next person signs in, here, with their own account
        token = shared.form_fields(shared.get(fed.url + "/account/link"))["csrf_token"]
        action = next(f.action for f in lxml.html.document_fromstring(page.text).forms if PROVE in f.text_content())
        asked = world.other.provider.hits("authorize")
        answer = shared.post(requests.compat.urljoin(page.url, action), {"csrf_token": token}, initiator=page.url)
        assert answer.status_code in (200, 400) and "Traceback" not in answer.text
        assert CONFIRM not in answer.text and world.other.provider.hits("authorize") == asked  # never sent there
        if "SAMLResponse" in answer.text:  # refused to the app that asked, as an error
            assert saml_status(shared.form_fields(answer))[0] != "urn:oasis:names:tc:SAML:2.0:status:Success"
    assert fed.count(LinkedIdentityRow) == 1


@pytest.mark.parametrize("verified", [False, None])
def test_an_unverified_address_never_leads_to_an_offer(world: World, verified: bool | None,
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


# -- an upstream not trusted for e-mail -----------------------------------------------------------------------


@pytest.fixture
def only_op_trusted(tmp_path: Path, key_folder: Path) -> Iterator[World]:
    """"other" verifies addresses carelessly (the operator did not list it in ``email_authoritative``)."""
    other = OtherUpstream()
    config = '[linking]\nemail_authoritative = ["op"]\n'
    with federation_with(tmp_path, key_folder, [ExtraUpstream("other", other.build)], config) as federation:
        yield World(federation, other, None, None)  # type: ignore[arg-type]  # github and entra are not used


@pytest.mark.parametrize("first", ["attacker", "victim"])
def test_an_address_from_an_untrusted_provider_never_leads_to_an_offer(only_op_trusted: World, first: str) -> None:
    """Either way round. The attacker first at "other", then the victim: no offer, her sign-in is her own (the
    earlier identity's upstream is not trusted for e-mail). The victim first, then the attacker at "other": no
    offer, which would tell him that the address has an account and where (issue 15, point 8)."""
    fed = only_op_trusted.federation
    order = ["other", "op"] if first == "attacker" else ["op", "other"]
    for upstream in order:
        with Browser() as person:
            _, page = until_app_or_offer(fed, person, upstream)
            assert OFFER not in page.text
    assert fed.accounts() == 2 and fed.count(LinkedIdentityRow) == 2
