"""Adding a passkey in the portal (``broker.journeys.passkeys``; issue 17), over the fakes (``fakes_support``):
the registration ceremony's state waits server-side, bound to the browser and its SSO session; a response to
another ceremony is refused and asked again; the same rules as for authenticator apps."""

from __future__ import annotations

from dataclasses import replace

import pytest

from broker.core import errors
from broker.core.assurance import REFEDS_MFA
from broker.core.audit import AuditKind
from broker.core.factors import FactorKind
from broker.core.model import Protocol
from broker.core.outcomes import Page
from broker.core.sessions import SsoSession
from broker.journeys import authenticators, login, passkeys
from broker.journeys.upstream_answers import upstream_answer
from tests.journeys.fakes_support import OIDC_UPSTREAM, FakeBrowser, World, app, login_request, registration


def signed_in(w: World) -> tuple[FakeBrowser, SsoSession]:
    browser = w.browser()
    w.person(OIDC_UPSTREAM, "anna", email="anna@example.org")
    handle, reply = w.oidc.reply(login.begin(w.journeys, browser, login_request(w.apps[0])))
    upstream_answer(w.journeys, browser, Protocol.OIDC, handle, reply, OIDC_UPSTREAM.name)
    sso = browser.sso()
    assert sso is not None
    return browser, sso


def ceremony(w: World, browser: FakeBrowser, name: str = "laptop") -> tuple[str, str]:
    page = passkeys.start(w.journeys, browser, name)
    assert page.template == passkeys.ENROL and page.no_store, page
    return str(page.data["handle"]), str(page.data["options"])


def test_a_first_passkey_is_added_and_recovery_codes_are_shown_once() -> None:
    w = World([app(Protocol.OIDC, allowed=(OIDC_UPSTREAM,))])
    browser, sso = signed_in(w)
    handle, options = ceremony(w, browser)

    shown = passkeys.confirm(w.journeys, browser, handle, registration("cred-a", options))

    assert shown.template == authenticators.CODES and len(shown.data["codes"]) == 10
    kinds = sorted(f.kind for f in w.authenticators.of(sso.account_id))
    assert kinds == [FactorKind.RECOVERY, FactorKind.PASSKEY] or kinds == [FactorKind.PASSKEY, FactorKind.RECOVERY]
    assert [e.reason for e in w.audit.of(AuditKind.AUTHENTICATOR_ADDED)][:1] == ["passkey passkey-cred-a"]
    with pytest.raises(errors.LoginStateInvalid):  # the ceremony's handle is used up
        passkeys.confirm(w.journeys, browser, handle, registration("cred-b", options))


def test_a_response_to_another_ceremony_adds_nothing_and_asks_again() -> None:
    w = World([app(Protocol.OIDC, allowed=(OIDC_UPSTREAM,))])
    browser, sso = signed_in(w)
    handle, options = ceremony(w, browser)
    _, other = ceremony(w, browser)

    again = passkeys.confirm(w.journeys, browser, handle, registration("cred-a", other))

    assert isinstance(again, Page) and again.data["failed"] and again.data["options"] not in (options, other)
    assert w.authenticators.of(sso.account_id) == []


def test_the_ceremony_belongs_to_its_browser_and_sso_session() -> None:
    w = World([app(Protocol.OIDC, allowed=(OIDC_UPSTREAM,))])
    browser, sso = signed_in(w)
    handle, options = ceremony(w, browser)
    with pytest.raises(errors.LoginStateInvalid):
        passkeys.confirm(w.journeys, w.browser(), handle, registration("cred-a", options))

    handle, options = ceremony(w, browser)
    browser.keep_sso(replace(sso, sid="another-session"))
    with pytest.raises(errors.LoginStateInvalid):
        passkeys.confirm(w.journeys, browser, handle, registration("cred-a", options))
    assert w.authenticators.of(sso.account_id) == []


def test_a_second_factor_is_added_only_from_a_session_that_reached_that_level() -> None:
    w = World([app(Protocol.OIDC, allowed=(OIDC_UPSTREAM,))])
    browser, sso = signed_in(w)
    handle, options = ceremony(w, browser)
    passkeys.confirm(w.journeys, browser, handle, registration("cred-a", options))

    refused = passkeys.start(w.journeys, browser, "phone")
    assert refused.status == 403 and refused.data["needs_second_factor"] == "add"

    browser.keep_sso(replace(sso, acr=REFEDS_MFA, factor_at=w.clock.now()))
    assert passkeys.start(w.journeys, browser, "phone").template == passkeys.ENROL
