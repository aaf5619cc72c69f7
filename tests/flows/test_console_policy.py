"""The console's release-policy page (issue 19), over real HTTP: the version in force, the default and per-app
rules, the consent-exempt apps and where the file is; how many consent answers each version got (a citizen's real
sign-in to an app records one); and a file that does not validate shows the problem ``broker check`` reports."""

from __future__ import annotations

from broker.core.consent import Consent, ConsentHow
from broker.core.operators import Role
from tests.flows.console_support import console_operator
from tests.flows.federation import Federation, saml_status
from tests.flows.portal_support import services
from tests.peers.browser import Browser

PAGE = "/console/policy/"


def test_the_page_shows_the_policy_in_force_and_the_consents_per_version(federation: Federation,
                                                                         browser: Browser) -> None:
    operator = console_operator(federation, browser, Role.AUDITOR)
    with Browser() as citizen:
        _, answer = federation.login(citizen, "sp1")
        assert saml_status(citizen.form_fields(answer))[0].endswith(":Success")  # exempt: recorded under "test"
    svc = services(federation)
    for app in ("https://a.example", "https://b.example"):
        svc.consents.record(Consent(operator, app, frozenset({"email"}), frozenset(), "2025-old", svc.clock.now(),
                                    ConsentHow.PAGE))

    page = browser.get(federation.url + PAGE)

    assert page.status_code == 200 and 'id="version">test<' in page.text, page.text[:500]
    assert str(federation.folder / "metadata" / "release-policy.toml") in page.text
    versions = page.text.split('id="versions"')[1]
    assert "<td>test (in force)</td><td>1</td>" in versions and "<td>2025-old</td><td>2</td>" in versions
    assert "no: exempt" in page.text and 'id="problems"' not in page.text


def test_a_policy_file_that_does_not_validate_shows_its_problem(federation: Federation, browser: Browser) -> None:
    console_operator(federation, browser, Role.SUPPORT)
    (federation.folder / "metadata" / "release-policy.toml").write_text(
        'version = "2"\n[apps."https://intranet.example"]\nallow = ["email", "shoe_size"]\nconsent_exempt = true\n')
    services(federation).registry.reload()

    page = browser.get(federation.url + PAGE)

    problems = page.text.split('id="problems"')[1].split("</ul>")[0]
    assert "shoe_size" in problems and "releasing no claims" in problems
    assert 'id="version">invalid<' in page.text  # the strictest policy stands in
