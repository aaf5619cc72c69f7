"""Linking sign-in methods from the portal, end to end (issue 5; ``broker.web.linking``, ``broker.core.linking``).

A citizen signs in through a pysaml2 SP with the demo provider "op", links a second provider from
``/account/link``, and afterwards either provider reaches the same account; unlinking makes the other provider a
stranger again, and the last sign-in method cannot be unlinked. On SQLite and, when set, PostgreSQL.
"""

from __future__ import annotations

from broker.core.audit import AuditKind
from broker.storage.tables import LinkedIdentityRow
from tests.flows.linking_support import (
    ANNA2_SUB,
    BOB,
    BOB_SUB,
    LinkWorld,
    link,
    link_world,
    subject_via,
    unlink,
)
from tests.peers.browser import Browser
from tests.security.attack_support import OFFER, press, until_app_or_offer

__all__ = ["link_world"]  # the fixture, from tests/flows/linking_support.py


def test_linked_upstream_then_signs_in_to_the_same_account(link_world: LinkWorld, browser: Browser) -> None:
    first = subject_via(link_world, "op", browser)
    done = link(link_world, browser, "other")
    assert done.status_code == 200 and "Sign-in method linked" in done.text, done.text[:800]

    assert subject_via(link_world, "other") == first  # another browser, the other provider: the same person
    assert subject_via(link_world, "op") == first
    assert link_world.federation.accounts() == 1 and link_world.federation.count(LinkedIdentityRow) == 2
    account = link_world.account_of("other", ANNA2_SUB)
    assert account is not None and AuditKind.LINKED.value in link_world.audit_kinds(account)
    again = browser.get(link_world.federation.url + "/account/link")
    assert "/account/link/other" not in again.text and "/account/link/third" in again.text


def test_unlink_makes_the_other_provider_a_stranger(link_world: LinkWorld, browser: Browser) -> None:
    first = subject_via(link_world, "op", browser)
    link(link_world, browser, "other")
    account = link_world.account_of("other", ANNA2_SUB)
    assert account is not None
    other = next(i for i in link_world.store().identities(account) if i.upstream == "other")

    removed = unlink(link_world, browser, other.issuer, other.subject)
    assert (removed.status_code == 303 and removed.headers["Location"].endswith("/account/identities")) \
        or (removed.status_code == 200 and "Sign-in method removed" in removed.text), removed.text[:500]
    assert AuditKind.UNLINKED.value in link_world.audit_kinds(account)
    assert link_world.account_of("other", ANNA2_SUB) is None
    with Browser() as fresh:  # the same verified address: an offer again, never a link by itself
        request_id, page = until_app_or_offer(link_world.federation, fresh, "other")
        assert OFFER in page.text
        page = press(fresh, page, "continue with a separate account")
        response = link_world.federation.sps["sp1"].parse(fresh.form_fields(page)["SAMLResponse"], request_id)
    assert response is not None and response.get_subject().text != first  # a new, separate account
    assert link_world.federation.accounts() == 2


def test_the_last_sign_in_method_cannot_be_unlinked(link_world: LinkWorld, browser: Browser) -> None:
    subject_via(link_world, "op", browser)
    account = link_world.account_of("op", "anna-0001")
    assert account is not None
    only = link_world.store().identities(account)[0]

    refused = unlink(link_world, browser, only.issuer, only.subject)
    assert refused.status_code == 409 and "only way to sign in" in refused.text
    assert [i.subject for i in link_world.store().identities(account)] == ["anna-0001"]
    assert AuditKind.UNLINKED.value not in link_world.audit_kinds(account)


def test_unlinking_someone_elses_identity_is_refused(link_world: LinkWorld, browser: Browser) -> None:
    """The hidden fields are the citizen's to edit: naming another account's identity removes nothing."""
    subject_via(link_world, "op", browser)
    link(link_world, browser, "other")
    with Browser() as bobs:
        link_world.third.sign_in_as(BOB)
        subject_via(link_world, "third", bobs)
    bob = link_world.account_of("third", BOB_SUB)
    assert bob is not None
    issuer = link_world.federation.app.extensions["broker"].registry.upstream("third").issuer

    refused = unlink(link_world, browser, issuer, BOB_SUB)
    assert refused.status_code == 400 and 'class="reference"' in refused.text
    assert link_world.account_of("third", BOB_SUB) == bob


def test_linking_needs_a_signed_in_session(link_world: LinkWorld, browser: Browser) -> None:
    page = browser.get(link_world.federation.url + "/account/link")
    assert page.status_code == 200 and "You are not signed in" in page.text and "<form" not in page.text
    _, discovery = link_world.federation.login(browser)  # a page with a CSRF token, and still no SSO session
    token = browser.form_fields(discovery)["csrf_token"]
    refused = browser.post(link_world.federation.url + "/account/link/other", {"csrf_token": token},
                           initiator=discovery.url)
    assert refused.status_code == 400 and "Please sign in again" in refused.text
    assert link_world.federation.accounts() == 0
