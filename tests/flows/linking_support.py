"""The account-linking world (two upstreams, their users) and the steps of linking and unlinking, shared by the
linking flow tests and the linking attack tests.
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

from broker.demo.oidc_provider import DemoClient, DemoProvider, DemoProviderSettings, DemoUser, create_demo_provider
from broker.keys.keyring import write_private
from tests.databases import BACKENDS, database_for
from tests.flows.federation import ExtraUpstream, Federation, running_federation
from tests.peers.browser import Browser
from tests.security.attack_support import login_with_hint

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
