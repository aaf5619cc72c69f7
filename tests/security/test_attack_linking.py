"""Attacks on linking sign-in methods (issue 5; ``broker.core.linking``, ``broker.web.linking``).

The rule under attack: an identity is linked to an account only by the account's own signed-in session, through
a link proof that is single-use, bound to the browser, to the SSO session (``sid``) and to the target upstream,
short-lived, and dead once the account's identities change (an unlink); an identity of another account is a
conflict that is explained, never moved. Pre-account takeover classes (Sudhodanan and Paverd, "Pre-hijacked
accounts", USENIX Security 2022) tried here: trojan identifier (an identity of another account) and unexpired
session (an attacker's session left in the victim's browser). Every attack ends in a refusal page and nothing
linked. On SQLite and, when set, PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import lxml.html  # type: ignore[import-untyped]
import pytest
import requests
from sqlalchemy import Engine

from broker.core import errors
from broker.core.audit import AuditKind
from broker.core.linking import LINK_PROOF_LIFETIME, LinkProof, check_link_proof
from broker.core.model import UpstreamIdentity
from broker.core.ports import LinkOutcome
from broker.storage import SqlAccountStore, create_engine_for, upgrade
from broker.storage.sealing import Sealer
from broker.storage.tables import LinkedIdentityRow
from tests.databases import BACKENDS, database_for
from tests.flows.linking_support import (
    ANNA2_SUB,
    BOB,
    BOB_SUB,
    CONFIRMATION,
    LinkWorld,
    confirm_link,
    link,
    link_form,
    link_world,
    subject_via,
    unlink,
)
from tests.peers.browser import Browser
from tests.security.attack_support import walk_to_callback

__all__ = ["link_world"]  # the fixture, from tests/flows/linking_support.py
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def start_link(world: LinkWorld, browser: Browser, upstream: str) -> str:
    """Press "Link <upstream>" and follow the provider up to (not into) the broker's callback: its URL."""
    page = link_form(world, browser, upstream)
    actions = [form.action for form in lxml.html.document_fromstring(page.text).forms]
    sent = browser.submit(page, form=actions.index(f"/account/link/{upstream}"), follow=False)
    assert sent.status_code == 302, sent.text[:500]
    return walk_to_callback(browser, sent.headers["Location"])


def assert_refused(page: requests.Response, status: int = 400) -> None:
    assert page.status_code == status, page.text[:600]
    assert 'class="reference"' in page.text and "Sign-in method linked" not in page.text


def identities_of(world: LinkWorld, upstream: str, subject: str) -> list[str]:
    account = world.account_of(upstream, subject)
    assert account is not None
    return sorted(i.upstream for i in world.store().identities(account))


# -- the link proof ---------------------------------------------------------------------------------------------


def test_callback_replayed_is_refused(link_world: LinkWorld, browser: Browser) -> None:
    subject_via(link_world, "op", browser)
    callback = start_link(link_world, browser, "other")
    assert "Sign-in method linked" in confirm_link(browser, browser.get(callback)).text
    assert_refused(browser.get(callback))  # the same answer again: state and proof are single-use
    assert identities_of(link_world, "op", "anna-0001") == ["op", "other"]
    assert link_world.federation.count(LinkedIdentityRow) == 2


def test_proof_used_from_another_browser_is_refused(link_world: LinkWorld, browser: Browser) -> None:
    """Link CSRF: the attacker, signed in to their own account, starts a link and makes the victim's browser
    deliver the upstream's answer (the victim's identity at that upstream) — and the other way round."""
    link_world.third.sign_in_as(BOB)
    subject_via(link_world, "third", browser)  # the attacker, Bob
    callback = start_link(link_world, browser, "other")
    with Browser() as victims:
        subject_via(link_world, "op", victims)
        assert_refused(victims.get(callback))
        victims_callback = start_link(link_world, victims, "other")
    assert_refused(browser.get(victims_callback))
    assert identities_of(link_world, "third", BOB_SUB) == ["third"]
    assert identities_of(link_world, "op", "anna-0001") == ["op"]
    assert link_world.account_of("other", ANNA2_SUB) is None


def test_proof_used_after_an_unlink_is_refused(link_world: LinkWorld, browser: Browser) -> None:
    subject_via(link_world, "op", browser)
    link(link_world, browser, "other")
    callback = start_link(link_world, browser, "third")  # outstanding proof
    account = link_world.account_of("op", "anna-0001")
    assert account is not None
    other = next(i for i in link_world.store().identities(account) if i.upstream == "other")
    assert unlink(link_world, browser, other.issuer, other.subject).status_code in (200, 303)

    assert_refused(browser.get(callback))
    assert identities_of(link_world, "op", "anna-0001") == ["op"]
    assert link_world.account_of("third", ANNA2_SUB) is None


def test_proof_aimed_at_another_upstream_is_refused(link_world: LinkWorld, browser: Browser) -> None:
    """IdP mix-up (RFC 9700 §4.4): the answer to a link of "other" delivered at the callback of "third"."""
    subject_via(link_world, "op", browser)
    callback = start_link(link_world, browser, "other")
    parts = urlsplit(callback)
    elsewhere = parts._replace(path=parts.path.replace("/other/", "/third/")).geturl()
    assert_refused(browser.get(elsewhere), status=502)
    assert_refused(browser.get(callback))  # and the journey is spent
    assert identities_of(link_world, "op", "anna-0001") == ["op"]


def test_unexpired_session_of_the_attacker_cannot_capture_the_victims_identity(link_world: LinkWorld,
                                                                              browser: Browser) -> None:
    """A shared browser: the attacker signs in, starts linking "other" and walks away; the victim signs in with
    her own provider in that browser (a new SSO session) and then completes the sign-in at "other"."""
    link_world.third.sign_in_as(BOB)
    subject_via(link_world, "third", browser)
    callback = start_link(link_world, browser, "other")
    victim = subject_via(link_world, "op", browser)  # new session in the same browser; the pending handles stay

    assert_refused(browser.get(callback))
    assert identities_of(link_world, "third", BOB_SUB) == ["third"]
    assert link_world.account_of("other", ANNA2_SUB) is None
    assert subject_via(link_world, "op") == victim


def test_trojan_identifier_is_a_conflict_and_nothing_moves(link_world: LinkWorld, browser: Browser) -> None:
    """The identity at "other" already belongs to an account; linking it to another account is explained and
    refused, and it stays where it was."""
    owner = subject_via(link_world, "other")
    owner_account = link_world.account_of("other", ANNA2_SUB)
    link_world.third.sign_in_as(BOB)
    subject_via(link_world, "third", browser)

    page = link(link_world, browser, "other")
    assert page.status_code == 409 and "belongs to another account" in page.text and "<form" not in page.text
    assert link_world.account_of("other", ANNA2_SUB) == owner_account
    assert identities_of(link_world, "third", BOB_SUB) == ["third"]
    assert subject_via(link_world, "other") == owner
    bob = link_world.account_of("third", BOB_SUB)
    assert bob is not None and AuditKind.LINKED.value not in link_world.audit_kinds(bob)


def test_linking_an_upstream_the_account_has_or_that_does_not_exist_is_refused(link_world: LinkWorld,
                                                                               browser: Browser) -> None:
    subject_via(link_world, "op", browser)
    page = link_form(link_world, browser, "other")
    token = browser.form_fields(page)["csrf_token"]
    for target in ("op", "nowhere"):
        refused = browser.post(f"{link_world.federation.url}/account/link/{target}", {"csrf_token": token},
                               initiator=page.url, follow=False)
        assert_refused(refused)
    missing_token = browser.post(f"{link_world.federation.url}/account/link/other", {}, initiator=page.url,
                                 follow=False)
    assert missing_token.status_code == 400 and "Location" not in missing_token.headers
    assert identities_of(link_world, "op", "anna-0001") == ["op"]


# -- the proof's rules, without HTTP ----------------------------------------------------------------------------

PROOF = LinkProof("acct-1", "sid-1", "other", NOW, "fp-1")
GOOD = {"account_id": "acct-1", "sid": "sid-1", "answered_by": "other", "fingerprint_now": "fp-1",
        "now": NOW + timedelta(minutes=1)}


@pytest.mark.parametrize(("proof", "changes", "why"), [
    (PROOF, {"account_id": None, "sid": None}, "without an SSO session"),
    (PROOF, {"account_id": "acct-2"}, "another account"),
    (PROOF, {"sid": "sid-2"}, "another SSO session"),
    (replace(PROOF, sid=""), {"sid": ""}, "a session without a sid"),
    (PROOF, {"answered_by": "third"}, "answered by another upstream"),
    (PROOF, {"now": NOW + LINK_PROOF_LIFETIME}, "expired"),
    (PROOF, {"now": NOW - timedelta(seconds=1)}, "issued in the future"),
    (PROOF, {"fingerprint_now": "fp-2"}, "identities changed (an unlink)"),
])
def test_check_link_proof_refuses(proof: LinkProof, changes: dict[str, object], why: str) -> None:
    with pytest.raises(errors.LoginStateInvalid):
        check_link_proof(proof, **{**GOOD, **changes})  # type: ignore[arg-type]


def test_check_link_proof_accepts_the_right_one_and_round_trips() -> None:
    check_link_proof(PROOF, **GOOD)  # type: ignore[arg-type]
    assert LinkProof.from_json(PROOF.to_json()) == PROOF
    for text in ("{}", "[]", '{"account_id": 1, "sid": "s", "target": "t", "fingerprint": "f", "issued_at": "x"}',
                 '{"account_id": "a", "sid": "s", "target": "t", "fingerprint": "f", "issued_at": "yesterday"}'):
        with pytest.raises(ValueError):
            LinkProof.from_json(text)


# -- the store ------------------------------------------------------------------------------------------------

SEALER = Sealer([secrets.token_bytes(32)])
ISSUER = "https://idp.example.org"


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlAccountStore]:
    database = database_for(request.param, tmp_path)
    url = next(database)
    upgrade(url)
    engine: Engine = create_engine_for(url)
    try:
        yield SqlAccountStore(engine, SEALER)
    finally:
        engine.dispose()
        for _ in database:
            pass


def identity(subject: str) -> UpstreamIdentity:
    return UpstreamIdentity(upstream="example-idp", issuer=ISSUER, subject=subject,
                            claims={"email": "anna@example.org"}, acr=None, auth_time=NOW)


def test_store_never_moves_an_identity(store: SqlAccountStore) -> None:
    victim, _ = store.create_with_identity(identity("victim"), NOW)
    attacker, _ = store.create_with_identity(identity("attacker"), NOW)
    assert store.link_identity(attacker.account_id, identity("victim"), NOW) is LinkOutcome.CONFLICT
    assert store.link_identity(victim.account_id, identity("victim"), NOW) is LinkOutcome.ALREADY_LINKED
    assert store.find_by_identity(ISSUER, "victim") == victim
    assert [i.subject for i in store.identities(attacker.account_id)] == ["attacker"]
    assert not store.unlink_identity(attacker.account_id, ISSUER, "victim")
    assert not store.unlink_identity(victim.account_id, ISSUER, "victim")  # the last one
    assert store.find_by_identity(ISSUER, "victim") == victim


def _unlink_both_at_once(store: SqlAccountStore, account_id: str, subjects: tuple[str, str]) -> list[bool]:
    results: list[bool] = []
    barrier = threading.Barrier(2)

    def unlink_one(subject: str) -> None:
        barrier.wait()
        results.append(store.unlink_identity(account_id, ISSUER, subject))

    threads = [threading.Thread(target=unlink_one, args=(s,)) for s in subjects]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_concurrent_unlinks_never_leave_an_account_without_identities(store: SqlAccountStore) -> None:
    for round_ in range(5):
        account, _ = store.create_with_identity(identity(f"a{round_}"), NOW)
        assert store.link_identity(account.account_id, identity(f"b{round_}"), NOW) is LinkOutcome.LINKED
        results = _unlink_both_at_once(store, account.account_id, (f"a{round_}", f"b{round_}"))
        assert sorted(results) == [False, True]
        assert len(store.identities(account.account_id)) == 1


# -- a fresh sign-in, then the citizen's confirmation (issue 15, points 1 and 6) ----------------------------------


def test_a_provider_that_signs_in_silently_proves_nothing(link_world: LinkWorld, browser: Browser,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Login CSRF at the provider, or the attacker's session there left in a shared browser: it answers without
    signing anyone in (it ignores ``prompt=login``; its ``auth_time`` is an hour old). The link asked
    ``max_age=0``: refused, nothing linked."""
    subject_via(link_world, "op", browser)
    link_world.other.sign_in_as(BOB)  # the attacker's account at "other" answers
    provider = link_world.other.provider
    monkeypatch.setattr(provider, "mischief", dataclasses.replace(
        provider.mischief, claim_overrides={"auth_time": int(time.time()) - 3600}))
    callback = start_link(link_world, browser, "other")
    assert provider.last_authorization.get("prompt") == "login" and provider.last_authorization.get("max_age") == "0"
    assert_refused(browser.get(callback), status=502)
    assert identities_of(link_world, "op", "anna-0001") == ["op"]
    assert link_world.account_of("other", BOB_SUB) is None


def test_the_confirmation_names_the_account_and_cancel_links_nothing(link_world: LinkWorld,
                                                                     browser: Browser) -> None:
    """An attacker's journey tossed into the victim's browser brings back the attacker's account at "other": the
    page says whose account answered, "Cancel" comes first with the focus, and cancelling links nothing."""
    subject_via(link_world, "op", browser)
    link_world.other.sign_in_as(BOB)
    page = link(link_world, browser, "other", confirm=False)
    assert CONFIRMATION in page.text and str(BOB.claims["email"]) in page.text, page.text[:800]
    forms = lxml.html.document_fromstring(page.text).forms
    assert forms[0].action.startswith("/account/link/cancel/") and forms[0].xpath(".//button[@autofocus]")
    assert identities_of(link_world, "op", "anna-0001") == ["op"]  # nothing before the citizen confirms
    cancelled = confirm_link(browser, page, cancel=True)
    assert cancelled.status_code == 200 and "Traceback" not in cancelled.text
    assert identities_of(link_world, "op", "anna-0001") == ["op"]
    assert link_world.account_of("other", BOB_SUB) is None


def test_a_confirmation_is_refused_after_the_session_changed_or_in_another_browser(link_world: LinkWorld,
                                                                                  browser: Browser) -> None:
    """The confirmation's form posted from another browser, and the page left open in a shared browser where
    someone else then signs in. Each post carries a valid CSRF token of the browser that sends it, so only the
    confirmation's binding (to its browser, its SSO session and account) can refuse it."""
    fed = link_world.federation
    subject_via(link_world, "op", browser)
    page = link(link_world, browser, "other", confirm=False)
    assert CONFIRMATION in page.text
    action = next(f.action for f in lxml.html.document_fromstring(page.text).forms
                  if f.action.startswith("/account/link/confirm/"))
    link_world.third.sign_in_as(BOB)
    with Browser() as thief:
        subject_via(link_world, "third", thief)
        own = link_form(link_world, thief, "other")
        stolen = thief.post(fed.url + action, {"csrf_token": thief.form_fields(own)["csrf_token"]},
                            initiator=own.url)
        assert_refused(stolen)
    subject_via(link_world, "third", browser)  # the next person, Bob, in the same browser
    token = browser.form_fields(link_form(link_world, browser, "other"))["csrf_token"]
    assert_refused(browser.post(fed.url + action, {"csrf_token": token}, initiator=fed.url + "/account/link"))
    assert link_world.account_of("other", ANNA2_SUB) is None
    assert identities_of(link_world, "third", BOB_SUB) == ["third"]
