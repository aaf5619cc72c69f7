"""Operator roles from the upstream's groups (issue 19, ``[[console.role_mappings]]``), over real HTTP with the
authlib demo provider upstream: a member of the mapped group signs in to the console with that role and nothing
granted; the same person signing in without the group is refused; the roles last as long as the console session
and the audit record says where they came from."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest

from broker.core.audit import AuditKind
from broker.demo.oidc_provider_config import Mischief
from broker.storage.authenticators import new_totp_secret
from tests.databases import database_for
from tests.flows.federation import UPSTREAM, Federation, running_federation
from tests.flows.portal_support import account_id, portal_sign_in, services
from tests.peers.browser import Browser

HELP_DESK = "3f6c1a52-0d7e-4b1e-9a43-help-desk"
MAPPING = f'\n[[console.role_mappings]]\nrole = "support"\nupstream = "{UPSTREAM}"\ngroup = "{HELP_DESK}"\n'


@pytest.fixture
def mapped(tmp_path: Path, key_folder: Path) -> Iterator[Federation]:
    database = database_for("sqlite", tmp_path)
    try:
        with running_federation(tmp_path / "instance", key_folder, next(database), extra_config=MAPPING) as running:
            yield running
    finally:
        for _ in database:
            pass


def _console_sign_in(federation: Federation, browser: Browser, groups: list[str]) -> tuple[str, str]:
    """The citizen (no role granted) signs in to the console while the upstream says they are in ``groups``; the
    page reached and the account id."""
    federation.provider.mischief = Mischief(claim_overrides={"groups": groups})
    portal_sign_in(federation, browser)
    account, svc = account_id(federation), services(federation)
    secret = new_totp_secret()
    svc.authenticators.add_totp(account, "phone", secret, svc.clock.now())
    factor = browser.submit(browser.get(f"{federation.url}/console/"))
    assert "Confirm it is you" in factor.text, factor.text[:300]
    reached = browser.submit(factor, {"code": pyotp.TOTP(secret).now()})
    return reached.text if reached.status_code == 200 else f"{reached.status_code} {reached.text}", account


def test_a_member_of_the_mapped_group_gets_the_role_for_this_console_session(mapped: Federation,
                                                                             browser: Browser) -> None:
    page, account = _console_sign_in(mapped, browser, [HELP_DESK, "g-other"])

    assert "Operator console" in page and "support" in page, page[:500]
    grants = services(mapped).operators
    assert grants is not None and not grants.roles_of(account)  # not granted: mapped
    assert browser.get(f"{mapped.url}/console/citizens").status_code == 200  # support's page
    assert browser.get(f"{mapped.url}/console/audit").status_code == 403  # not support's
    [opened] = [r for r in services(mapped).audit.events(account_id=account, limit=50)
                if r.kind == AuditKind.OPERATOR_SIGNED_IN.value]
    assert opened.reason == f"roles support; from {UPSTREAM} groups: support"


def test_without_the_group_the_same_person_is_refused(mapped: Federation, browser: Browser) -> None:
    page, account = _console_sign_in(mapped, browser, ["g-other"])

    assert page.startswith("403") and "may not use" in page
    refused = [r for r in services(mapped).audit.events(account_id=account, limit=50)
               if r.kind == AuditKind.OPERATOR_REFUSED.value]
    assert refused and refused[0].upstream == UPSTREAM
