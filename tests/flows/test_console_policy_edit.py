"""Changing the release policy at the console (issue 19), over real HTTP: the operator previews a text (checked
exactly as the registry loads it, the diff and what it means), applies it, and a real relying party signing in
afterwards receives what the new policy allows; a text that would not load is refused with its problems and the
file stays as it was; a new version asks a citizen who had consented again; the replaced text is a past version,
shown and restored into the form; roles without ``manage-parties`` cannot change it, and a stale sign-in is asked
to sign in again."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import requests

from broker.core.audit import AuditKind
from broker.core.operators import Role
from tests.flows.console_support import console_operator
from tests.flows.federation import Federation, FixedClock
from tests.flows.oidc_peers import relying_party
from tests.flows.oidc_to_oidc_support import sign_in
from tests.flows.portal_support import services
from tests.peers.browser import Browser

PAGE = "/console/policy/"
CURRENT = 'version = "test"\n[default]\nconsent_exempt = true\n'  # what ``running_federation`` writes
NO_EMAIL = CURRENT + '[apps.city-app]\nallow = ["given_name", "family_name", "name"]\nconsent_exempt = true\n'


def _file(federation: Federation) -> Path:
    return federation.folder / "metadata" / "release-policy.toml"


def _preview(browser: Browser, federation: Federation, text: str) -> requests.Response:
    page = browser.get(federation.url + PAGE)
    assert 'id="policy-edit"' in page.text, page.text[:500]
    return browser.submit(page, {"text": text}, form="policy-edit")


def _changes(page: requests.Response) -> str:
    return page.text.split('id="changes"')[1].split("</table>")[0]


def test_removing_email_from_an_apps_allow_list_stops_its_release(federation: Federation, browser: Browser) -> None:
    operator = console_operator(federation, browser, Role.OPERATOR)
    with relying_party(federation, scope="openid profile email") as rp, Browser() as citizen:
        sign_in(citizen, rp)
        assert rp.last.userinfo is not None and rp.last.userinfo["email"] == "anna@example.org"

        shown = _preview(browser, federation, NO_EMAIL)

        assert shown.status_code == 200 and 'id="problems"' not in shown.text, shown.text[:800]
        assert "test → test" in shown.text and "email" in _changes(shown).split("<td>")[-1]  # "Claims removed"
        assert 'data-code="claims-removed"' in shown.text and 'data-code="unknown-app"' not in shown.text
        assert _file(federation).read_text() == CURRENT  # a preview writes nothing

        applied = browser.submit(shown, form="apply")

        assert applied.status_code == 200 and 'id="applied"' in applied.text, applied.text[:800]
        assert _file(federation).read_text() == NO_EMAIL
        sign_in(citizen, rp)
        assert rp.last.userinfo is not None and "email" not in rp.last.userinfo
        assert rp.last.id_token_claims is not None and "email" not in rp.last.id_token_claims
        assert rp.last.userinfo["given_name"] == "Anna"
    record = next(r for r in services(federation).audit.events(limit=20) if r.kind == AuditKind.POLICY_CHANGED.value)
    reason = record.reason or ""
    assert reason.startswith(f"by operator {operator} (operator); version test -> test; "), reason
    assert "-email " in reason, reason
    history = browser.get(federation.url + PAGE).text.split('id="history"')[1].split("</table>")[0]
    assert "<td>test</td>" in history and f"operator {operator} (operator)" in history


def test_a_text_that_would_not_load_is_refused_and_the_file_is_unchanged(federation: Federation,
                                                                          browser: Browser) -> None:
    console_operator(federation, browser, Role.OPERATOR)

    broken = _preview(browser, federation, 'version = "2"\n[default\nallow = ["email"]\n')
    unknown = _preview(browser, federation, 'version = "2"\n[default]\nallow = ["email"]\nshare_everything = true\n')

    for page, problem in ((broken, "not readable TOML"), (unknown, "unknown settings [&#39;share_everything&#39;]")):
        problems = page.text.split('id="problems"')[1].split("</ul>")[0]
        assert problem in problems, problems
        assert 'id="apply"' not in page.text and 'id="policy-edit"' in page.text  # corrected in place
    assert _file(federation).read_text() == CURRENT
    assert services(federation).registry.snapshot.policy.version == "test"
    assert not [r for r in services(federation).audit.events(limit=50) if r.kind == AuditKind.POLICY_CHANGED.value]


def _allow(browser: Browser, page: requests.Response) -> requests.Response:
    """The citizen ticks the e-mail address and presses "Allow and continue" on the consent page."""
    return browser.submit(page, {"claim": "email"}, button="decision")


def test_a_new_version_asks_a_citizen_who_had_consented_again(federation: Federation, browser: Browser) -> None:
    console_operator(federation, browser, Role.ADMIN)
    browser.submit(_preview(browser, federation, 'version = "v1"\n'), form="apply")
    assert services(federation).registry.snapshot.policy.version == "v1"
    with relying_party(federation, scope="openid email") as rp, Browser() as citizen:
        asked = citizen.get(f"{rp.url}/login")
        assert "Share your information with" in asked.text, asked.text[:300]
        _allow(citizen, asked)
        assert rp.last.userinfo is not None and rp.last.userinfo["email"] == "anna@example.org"
        assert "Share your information with" not in sign_in(citizen, rp).text  # answered: not asked again

        shown = _preview(browser, federation, 'version = "v2"\n')
        assert 'data-code="version-changed"' in shown.text and "v1 → v2" in shown.text
        browser.submit(shown, form="apply")

        again = citizen.get(f"{rp.url}/login")
        assert "Share your information with" in again.text, again.text[:300]


def test_the_replaced_text_is_a_past_version_shown_and_restored(federation: Federation, browser: Browser) -> None:
    operator = console_operator(federation, browser, Role.OPERATOR)
    browser.submit(_preview(browser, federation, 'version = "two"\n'), form="apply")
    page = browser.get(federation.url + PAGE)
    link = page.text.split('id="history"')[1].split('href="')[1].split('"')[0]

    shown = browser.get(federation.url + link)

    assert shown.status_code == 200 and 'id="version">test<' in shown.text
    assert f'id="by">operator {operator} (operator)<' in shown.text and "consent_exempt = true" in shown.text
    restore = browser.get(federation.url + shown.text.split('id="restore" href="')[1].split('"')[0])
    assert browser.form_fields(restore, "policy-edit")["text"] == CURRENT
    browser.submit(browser.submit(restore, form="policy-edit"), form="apply")
    assert _file(federation).read_text() == CURRENT and services(federation).registry.snapshot.policy.version == "test"
    assert browser.get(federation.url + PAGE + "versions/..%2Fbroker.toml").status_code == 404


def test_roles_without_manage_parties_may_look_but_not_change(federation: Federation, browser: Browser) -> None:
    console_operator(federation, browser, Role.SUPPORT, Role.AUDITOR)
    page = browser.get(federation.url + PAGE)
    assert page.status_code == 200 and 'id="policy-edit"' not in page.text
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0] if "csrf_token" in page.text else ""

    preview = browser.post(federation.url + PAGE + "preview", {"text": 'version = "x"\n', "csrf_token": token},
                           initiator=page.url)
    apply = browser.post(federation.url + PAGE + "apply/anything", {"csrf_token": token}, initiator=page.url)

    assert (preview.status_code, apply.status_code) == (403, 403)
    refusals = [r.reason or "" for r in services(federation).audit.events(limit=20) if r.kind == "operator-refused"]
    assert len([r for r in refusals if r.startswith("manage-parties not allowed")]) == 2, refusals
    assert _file(federation).read_text() == CURRENT


def test_applying_needs_a_recent_sign_in(federation: Federation, browser: Browser) -> None:
    console_operator(federation, browser, Role.OPERATOR)
    shown = _preview(browser, federation, 'version = "later"\n')
    federation.set_clock(FixedClock(services(federation).clock.now() + timedelta(minutes=6)))

    stale = browser.submit(shown, form="apply")

    assert stale.status_code == 200 and "This needs a recent sign-in" in stale.text
    assert _file(federation).read_text() == CURRENT


def test_apply_writes_the_previewed_text_not_a_second_one(federation: Federation, browser: Browser) -> None:
    console_operator(federation, browser, Role.OPERATOR)
    shown = _preview(browser, federation, 'version = "seen"\n')
    fields = browser.form_fields(shown, "apply")
    action = federation.url + shown.text.split('id="apply" method="post" action="')[1].split('"')[0]

    applied = browser.post(action, {**fields, "text": 'version = "unseen"\n[default]\nconsent_exempt = true\n'},
                           initiator=shown.url)

    assert applied.status_code == 200 and _file(federation).read_text() == 'version = "seen"\n'
    assert browser.post(action, fields, initiator=shown.url).status_code == 400  # used once
