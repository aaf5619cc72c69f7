"""Linking sign-in methods from the portal, end to end (issue 5; ``broker.web.linking``, ``broker.core.linking``).

A citizen signs in through a pysaml2 SP with the demo provider "op", links a second provider from
``/account/link``, and afterwards either provider reaches the same account; unlinking makes the other provider a
stranger again, and the last sign-in method cannot be unlinked. On SQLite and, when set, PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lxml.html  # type: ignore[import-untyped]
import pytest
import requests

from broker.core.audit import AuditKind
from broker.demo.oidc_provider import DemoClient, DemoProvider, DemoProviderSettings, DemoUser, create_demo_provider
from broker.keys import write_private
from broker.storage.tables import LinkedIdentityRow
from tests.databases import BACKENDS, database_for
from tests.flows.federation import ExtraUpstream, Federation, running_federation
from tests.peers.browser import Browser
from tests.security.attack_support import OFFER, login_with_hint, press, until_app_or_offer

ANNA2_SUB, BOB_SUB = "anna-at-other-17", "bob-0002"
ANNA_ELSEWHERE = DemoUser("anna2", "pw", {"sub": ANNA2_SUB, "email": "anna@example.org",
                                          "email_verified": True, "given_name": "Anna", "family_name": "Virtanen"})
BOB = DemoUser("bob", "pw", {"sub": BOB_SUB, "email": "bob@example.org", "email_verified": True,
                             "given_name": "Bob", "family_name": "Builder"})


class DemoUpstream:
    """Another ordinary OpenID provider, registered as ``name``, signing in whoever ``sign_in_as`` chose."""

    provider: DemoProvider

    def __init__(self, name: str) -> None:
        self.name = name

    def build(self, base_url: str, redirect_uri: str, folder: Path) -> tuple[Any, dict[str, Any]]:
        secret = secrets.token_urlsafe(24)
        write_private(folder / "certs" / f"{self.name}.secret", secret.encode())
        self.provider = create_demo_provider(DemoProviderSettings(
            issuer=base_url,
            clients=(DemoClient(f"{self.name}-client", secret, (redirect_uri,)),),
            users=(ANNA_ELSEWHERE, BOB),
            auto_login=ANNA_ELSEWHERE.username,
        ))
        return self.provider.app, {"protocol": "oidc", "issuer": base_url, "client_id": f"{self.name}-client",
                                   "display_name": f"Provider {self.name}",
                                   "client_secret_file": f"certs/{self.name}.secret"}

    def sign_in_as(self, user: DemoUser) -> None:
        self.provider.settings = dataclasses.replace(self.provider.settings, auto_login=user.username)


@dataclasses.dataclass
class LinkWorld:
    federation: Federation
    other: DemoUpstream
    third: DemoUpstream

    def store(self) -> Any:
        return self.federation.app.extensions["broker"].accounts

    def account_of(self, issuer_upstream: str, subject: str) -> str | None:
        issuer = self.federation.app.extensions["broker"].registry.upstream(issuer_upstream).issuer
        account = self.store().find_by_identity(issuer, subject)
        return account.account_id if account is not None else None

    def audit_kinds(self, account_id: str) -> list[str]:
        return [r.kind for r in self.federation.app.extensions["broker"].audit.events(account_id)]


#: every upstream here verifies addresses: a matching address leads to an offer (``[linking]``)
ALL_TRUSTED_FOR_EMAIL = '[linking]\nemail_authoritative = ["op", "other", "third"]\n'


@pytest.fixture(params=BACKENDS)
def link_world(request: pytest.FixtureRequest, tmp_path: Path, key_folder: Path) -> Iterator[LinkWorld]:
    other, third = DemoUpstream("other"), DemoUpstream("third")
    database = database_for(request.param, tmp_path)
    try:
        with running_federation(tmp_path / "instance", key_folder, next(database),
                                extra_upstreams=[ExtraUpstream("other", other.build),
                                                 ExtraUpstream("third", third.build)],
                                extra_config=ALL_TRUSTED_FOR_EMAIL) as federation:
            assert federation.app.extensions["broker"].registry.snapshot.problems == ()
            yield LinkWorld(federation, other, third)
    finally:
        for _ in database:
            pass


def subject_via(world: LinkWorld, upstream: str, browser: Browser | None = None) -> str:
    """Sign in at sp1 through ``upstream`` (a fresh browser unless one is given): the SP's NameID."""
    if browser is not None:
        return str(login_with_hint(world.federation, browser, upstream).get_subject().text)
    with Browser() as fresh:
        return str(login_with_hint(world.federation, fresh, upstream).get_subject().text)


def link_form(world: LinkWorld, browser: Browser, upstream: str) -> requests.Response:
    """The portal's linking page, checked to offer ``upstream``."""
    page = browser.get(world.federation.url + "/account/link")
    assert page.status_code == 200 and f'action="/account/link/{upstream}"' in page.text, page.text[:800]
    return page


def link(world: LinkWorld, browser: Browser, upstream: str, *, confirm: bool = True) -> requests.Response:
    """Press "Link <upstream>" and follow the provider round trip to the broker's answer page; with ``confirm``,
    press "Link" on the confirmation that follows a new identity (``broker.web.link_confirm``)."""
    page = link_form(world, browser, upstream)
    actions = [form.action for form in lxml.html.document_fromstring(page.text).forms]
    answer = browser.submit(page, form=actions.index(f"/account/link/{upstream}"))
    return confirm_link(browser, answer) if confirm else answer


#: the confirmation page after the upstream answered
CONFIRMATION = "Link these sign-in methods?"


def confirm_link(browser: Browser, page: requests.Response, *, cancel: bool = False) -> requests.Response:
    """Press "Link" (or "Cancel") on the confirmation page; any other page is returned as it is."""
    if CONFIRMATION not in page.text:
        return page
    actions = [form.action or "" for form in lxml.html.document_fromstring(page.text).forms]
    wanted = "/account/link/cancel/" if cancel else "/account/link/confirm/"
    return browser.submit(page, form=next(i for i, a in enumerate(actions) if a.startswith(wanted)))


def csrf_token(world: LinkWorld, browser: Browser) -> str:
    return browser.form_fields(browser.get(world.federation.url + "/account/link"))["csrf_token"]


def unlink(world: LinkWorld, browser: Browser, issuer: str, subject: str) -> requests.Response:
    """The unlink form's POST; its answer itself (a redirect to the portal's identities page, when the portal has
    one, or a confirmation page), not followed."""
    return browser.post(world.federation.url + "/account/identities/unlink",
                        {"csrf_token": csrf_token(world, browser), "issuer": issuer, "subject": subject},
                        initiator=world.federation.url + "/account/link", follow=False)


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
