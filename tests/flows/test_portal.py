"""The citizen portal through real HTTP (issue 5): its own sign-in through the login pipeline, its pages, CSRF
protection of every state-changing form, "sign out everywhere" across browsers, the data download and deletion
of the account.
"""

from __future__ import annotations

import json

import lxml.html  # type: ignore[import-untyped]
import pytest
from sqlalchemy import select

from broker.app import SESSION_COOKIE_HTTPS
from broker.core.audit import AuditKind
from broker.storage import SqlAuditLog
from broker.storage.tables import AuditEventRow, ConsentRow, SsoSessionRow
from tests.flows.consent_support import audit_kinds
from tests.flows.federation import Federation
from tests.flows.portal_support import account_id, portal_sign_in, services
from tests.peers.browser import Browser

PAGES = ["/account/", "/account/identities", "/account/apps", "/account/sessions", "/account/profile",
         "/account/consents", "/account/delete"]


def app_login(federation: Federation, browser: Browser) -> None:
    _, page = federation.login(browser)
    assert page.status_code == 200 and browser.is_self_submitting(page), page.text[:300]


def rows(federation: Federation, table: type[SsoSessionRow] | type[ConsentRow]) -> list[object]:
    with services(federation).engine.connect() as connection:
        return list(connection.execute(select(table)))


def test_signing_in_to_the_portal_goes_through_the_pipeline_and_asks_no_consent(
        federation: Federation, browser: Browser) -> None:
    home = portal_sign_in(federation, browser)

    assert "Your account" in home.text and "Sign-in methods" in home.text
    assert federation.provider.hits("authorize") == 1 and federation.accounts() == 1
    assert rows(federation, ConsentRow) == []  # the broker's own portal: no consent asked or recorded
    assert len(rows(federation, SsoSessionRow)) == 1
    events = services(federation).audit.events(account_id=account_id(federation))
    assert [(e.kind, e.downstream) for e in events] == [(AuditKind.LOGIN_SUCCEEDED.value, "broker-portal")]


def test_an_app_session_signs_in_to_the_portal_without_going_upstream(
        federation: Federation, browser: Browser) -> None:
    app_login(federation, browser)
    home = browser.get(f"{federation.url}/account/")

    assert home.status_code == 200 and "Sign-in methods" in home.text and "Sign in</button>" not in home.text
    assert federation.provider.hits("authorize") == 1


def test_every_page_renders_with_the_account(federation: Federation, browser: Browser) -> None:
    app_login(federation, browser)
    sp = federation.sps["sp1"].entity_id
    app_name = services(federation).registry.downstream(sp)
    assert app_name is not None

    pages = {path: browser.get(f"{federation.url}{path}") for path in PAGES}

    assert all(p.status_code == 200 and '<html lang="' in p.text for p in pages.values())
    upstream = services(federation).registry.upstream("op")
    assert upstream is not None
    assert upstream.display_name in pages["/account/identities"].text
    # the provider by its name only, never its issuer URL (issue 20); the page reads no assurance level
    shown = lxml.html.document_fromstring(pages["/account/identities"].text).text_content()
    assert upstream.issuer not in shown and "assurance" not in shown
    assert app_name.display_name in pages["/account/apps"].text
    assert "Sign out everywhere" in pages["/account/sessions"].text
    assert "(this browser)" in pages["/account/sessions"].text
    assert "anna@example.org" in pages["/account/profile"].text
    assert "Delete my account" in pages["/account/delete"].text


def test_the_identities_page_offers_linking_only_when_linking_is_there(
        federation: Federation, browser: Browser) -> None:
    app_login(federation, browser)

    page = browser.get(f"{federation.url}/account/identities")

    forms = lxml.html.document_fromstring(page.text).forms
    if "linking.start" in federation.app.view_functions:
        # one upstream, one identity: nothing to add, and the only sign-in method cannot be removed
        assert "cannot be removed" in page.text and forms == []
    else:
        assert forms == [] and "cannot be removed" not in page.text


@pytest.mark.parametrize("path", PAGES)
def test_pages_without_a_session_offer_the_portal_sign_in(federation: Federation, browser: Browser, path: str) -> None:
    page = browser.get(f"{federation.url}{path}")

    assert page.status_code == 200 and "Sign in</button>" in page.text and "anna" not in page.text


@pytest.mark.parametrize("path", ["/account/sessions/end-all", "/account/delete", "/account/consents/withdraw"])
def test_a_post_without_its_csrf_token_is_refused_and_changes_nothing(
        federation: Federation, browser: Browser, path: str) -> None:
    app_login(federation, browser)
    consent = services(federation).consents.in_force(account_id(federation))
    before = (federation.accounts(), len(rows(federation, SsoSessionRow)), len(rows(federation, ConsentRow)),
              federation.provider.hits("authorize"))

    refused = browser.post(f"{federation.url}{path}", {"party_id": consent[0].party_id if consent else "x"},
                           initiator=f"{federation.url}/account/")

    assert refused.status_code == 400
    after = (federation.accounts(), len(rows(federation, SsoSessionRow)), len(rows(federation, ConsentRow)),
             federation.provider.hits("authorize"))
    assert after == before
    assert services(federation).sso_sessions.active(account_id(federation), services(federation).clock.now())
    assert "Sign-in methods" in browser.get(f"{federation.url}/account/").text  # still signed in


def test_sign_out_everywhere_ends_the_other_browsers_session_too(federation: Federation, browser: Browser) -> None:
    with Browser() as other:
        app_login(federation, browser)
        app_login(federation, other)
        assert federation.provider.hits("authorize") == 2
        sessions = browser.get(f"{federation.url}/account/sessions")
        assert sessions.text.count('<li class="card">') == 2  # two sessions

        done = browser.submit(sessions, form="sign-out-all")

        assert done.status_code == 200 and "signed out everywhere" in done.text
        assert all(row.ended_at is not None for row in rows(federation, SsoSessionRow))  # type: ignore[attr-defined]
        app_login(federation, other)
        assert federation.provider.hits("authorize") == 3  # the other browser had to sign in upstream again
        assert "Sign in</button>" in browser.get(f"{federation.url}/account/").text
        assert federation.accounts() == 1  # nothing else changed: same account


def test_the_data_download_holds_the_identity_and_consents_and_no_secrets(
        federation: Federation, browser: Browser) -> None:
    app_login(federation, browser)
    account = account_id(federation)

    download = browser.get(f"{federation.url}/account/data.json")

    assert download.status_code == 200 and download.headers["Content-Type"].startswith("application/json")
    assert download.headers["Content-Disposition"].startswith("attachment")
    data = json.loads(download.text)
    assert data["account"]["id"] == account
    [identity] = data["identities"]
    assert identity["upstream"] == "op" and identity["claims"]["email"] == "anna@example.org"
    assert [c["app"] for c in data["consents"]] == [federation.sps["sp1"].entity_id]
    assert len(data["sso_sessions"]) == 1 and data["audit_events"]
    text = download.text
    assert "v1." not in text  # no sealed value
    sid = rows(federation, SsoSessionRow)[0].sid  # type: ignore[attr-defined]
    for secret in (sid, browser.session.cookies.get(SESSION_COOKIE_HTTPS) or "no cookie", "csrf", "hash"):
        assert secret not in text


def test_deleting_the_account_erases_it_and_keeps_a_verifiable_audit_record(
        federation: Federation, browser: Browser) -> None:
    app_login(federation, browser)
    account = account_id(federation)
    confirm = browser.get(f"{federation.url}/account/delete")

    done = browser.submit(confirm)

    assert done.status_code == 200 and "Your account was deleted" in done.text
    assert federation.accounts() == 0
    assert rows(federation, SsoSessionRow) == [] and rows(federation, ConsentRow) == []
    svc = services(federation)
    assert isinstance(svc.audit, SqlAuditLog)  # the chain check is the SQL log's own (``broker audit verify``)
    assert svc.audit.verify() is None
    deleted = [e for e in svc.audit.events(account_id=account) if e.kind == AuditKind.ACCOUNT_DELETED.value]
    assert len(deleted) == 1 and deleted[0].reason == "portal"
    assert AuditKind.ACCOUNT_DELETED.value in audit_kinds(federation)
    assert "Sign in</button>" in browser.get(f"{federation.url}/account/").text

    app_login(federation, browser)  # the same upstream identity makes a new account

    assert federation.accounts() == 1 and federation.provider.hits("authorize") == 2
    with svc.engine.connect() as connection:
        ids = set(connection.execute(select(AuditEventRow.account_id).where(AuditEventRow.account_id.is_not(None)))
                  .scalars())
    assert len(ids) == 2 and account in ids
