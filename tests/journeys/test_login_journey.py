"""The login journey on its own: no Flask app, no database, no SAML or OIDC library; every port is a fake
(``fakes_support``). SAML and OIDC upstreams, and SAML and OIDC apps, go through the very same functions."""

from __future__ import annotations

from datetime import timedelta

import pytest

from broker.core import errors
from broker.core.audit import AuditKind
from broker.core.consent import ConsentHow, ReleasePolicy
from broker.core.model import DownstreamParty, LoginRequest, Protocol
from broker.core.outcomes import Outcome, Page, PostForm, Redirect
from broker.core.pending_records import LoginAtDiscovery, LoginAtUpstream, peek_record
from broker.core.protocol_ports import POST, DownstreamMessage
from broker.core.sessions import Participant
from broker.journeys import consent, login
from broker.journeys.context import DownstreamFailure
from broker.journeys.upstream_answers import upstream_answer
from tests.journeys.fakes_support import (
    NO_CONSENT_ASKED,
    OIDC_UPSTREAM,
    SAML_UPSTREAM,
    UPSTREAMS,
    FakeBrowser,
    World,
    app,
    handle_in,
    login_request,
)

BOTH = [Protocol.OIDC, Protocol.SAML]
BOTH_APPS = [Protocol.SAML, Protocol.OIDC]
#: the steps one login from an app through an upstream and back takes, whatever the protocols
UPSTREAM_LOGIN_STEPS = ["go_upstream", "upstream_verify", "complete_login", "answer"]


def world_for(up: Protocol, down: Protocol = Protocol.SAML,
              policy: ReleasePolicy = NO_CONSENT_ASKED) -> tuple[World, DownstreamParty]:
    """A world with one app of protocol ``down`` that may use only the upstream of protocol ``up``."""
    party = app(down, allowed=(UPSTREAMS[up],))
    return World([party], policy=policy), party


def go_upstream(w: World, browser: FakeBrowser, request: LoginRequest) -> tuple[str, dict[str, str]]:
    """``begin`` for a login that goes straight upstream; the handle and the upstream's answer to it."""
    outgoing = login.begin(w.journeys, browser, request)
    return w.upstream(Protocol.OIDC if isinstance(outgoing, Redirect) else Protocol.SAML).reply(outgoing)


def answer(w: World, browser: FakeBrowser, up: Protocol, handle: str, reply: dict[str, str]) -> Outcome:
    arrived_at = UPSTREAMS[up].name if up is Protocol.OIDC else None  # one callback per OIDC provider
    return upstream_answer(w.journeys, browser, up, handle, reply, arrived_at)


def sign_in(w: World, browser: FakeBrowser, party: DownstreamParty, up: Protocol, subject: str = "anna") -> Outcome:
    w.person(UPSTREAMS[up], subject, email=f"{subject}@example.org")
    handle, reply = go_upstream(w, browser, login_request(party))
    return answer(w, browser, up, handle, reply)


# --- begin ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("up", BOTH)
def test_begin_goes_straight_to_the_only_allowed_upstream(up: Protocol) -> None:
    w, party = world_for(up)
    browser, request = w.browser(), login_request(party)

    outgoing = login.begin(w.journeys, browser, request)

    assert isinstance(outgoing, Redirect if up is Protocol.OIDC else PostForm)  # the adapter's own request
    assert w.upstream(up).begun == [(UPSTREAMS[up].name, request, False)]
    handle = handle_in(outgoing)
    assert browser.holds(handle)  # bound to this browser (login CSRF)
    record_class = login.AT_UPSTREAM[up]
    assert w.pending.kinds_of(handle) == {record_class.KIND}
    stored = peek_record(w.pending, record_class, handle, w.clock.now())
    assert isinstance(stored, LoginAtUpstream) and stored.login == request
    assert w.observer.started == 1 and w.observer.steps == ["go_upstream"]
    assert not w.sso_sessions.records and browser.renewals == 0


@pytest.mark.parametrize("up", BOTH)
def test_the_waiting_login_expires(up: Protocol) -> None:
    w, party = world_for(up)
    browser = w.browser()
    w.person(UPSTREAMS[up], "anna", email="anna@example.org")
    handle, reply = go_upstream(w, browser, login_request(party))
    w.clock.advance(w.settings.pending_login_lifetime)

    with pytest.raises(errors.LoginStateInvalid):
        answer(w, browser, up, handle, reply)
    assert w.upstream(up).finished == 0 and not w.accounts.accounts


# --- the upstream's answer -------------------------------------------------------------------------------------

@pytest.mark.parametrize("down", BOTH_APPS)
@pytest.mark.parametrize("up", BOTH)
def test_upstream_answer_completes_the_login_through_the_same_steps(up: Protocol, down: Protocol) -> None:
    w, party = world_for(up, down)
    browser = w.browser("Firefox/128 on the library PC")
    identity = w.person(UPSTREAMS[up], "anna", email="anna@example.org")
    handle, reply = go_upstream(w, browser, login_request(party))
    w.clock.advance(timedelta(seconds=4))  # the citizen signs in at the upstream

    outgoing = answer(w, browser, up, handle, reply)

    account = w.accounts.find_by_identity(identity.issuer, identity.subject)
    assert account is not None  # the account was created for exactly this (issuer, subject)
    [answered] = w.downstream(down).answered
    assert answered.result.account == account and answered.result.created_account
    assert answered.result.released == {"email": "anna@example.org", "email_verified": True, "name": "Anna Jansen"}
    assert answered.upstream == UPSTREAMS[up]
    [record] = w.sso_sessions.records.values()  # the SSO session is registered server-side ...
    assert (record.sid, record.account_id, record.upstream) == (answered.sid, account.account_id, UPSTREAMS[up].name)
    assert record.user_agent == "Firefox/128 on the library PC"
    participant = w.downstream(down).participant_for(answered.result)
    assert w.sso_sessions.participants(record.sid) == [participant]  # ... and the app joined it there
    assert browser.renewals == 1  # a new browser identity at sign-in (session fixation)
    kept = browser.sso()
    assert kept is not None and kept.sid == record.sid and kept.participants == (participant,)
    assert kept.upstream_state == (("upstream_session", f"{UPSTREAMS[up].name}-session"),)
    [event] = w.audit.of(AuditKind.LOGIN_SUCCEEDED)
    assert (event.account_id, event.upstream, event.downstream, event.reason) == (
        account.account_id, UPSTREAMS[up].name, party.party_id, "upstream; 4000 ms")
    assert outgoing == (w.downstream(down).outgoing_for(answered.result, record.sid))  # the app's answer, as given
    assert w.observer.steps == UPSTREAM_LOGIN_STEPS
    assert w.observer.succeeded == [(UPSTREAMS[up].name, party.party_id, "upstream")]
    assert not browser.handles and not w.pending.rows  # the handle is used up on both sides


@pytest.mark.parametrize("up", BOTH)
def test_a_handle_from_another_browser_is_refused_and_left_alone(up: Protocol) -> None:
    w, party = world_for(up)
    victim, attacker = w.browser(), w.browser()
    w.person(UPSTREAMS[up], "mallory", email="mallory@example.org")
    handle, reply = go_upstream(w, attacker, login_request(party))

    with pytest.raises(errors.LoginStateInvalid):  # the answer tossed into another browser (login CSRF)
        answer(w, victim, up, handle, reply)

    assert w.upstream(up).finished == 0 and not w.accounts.accounts and victim.renewals == 0
    assert w.pending.kinds_of(handle) == {login.AT_UPSTREAM[up].KIND}  # never even looked up
    assert attacker.holds(handle)
    answer(w, attacker, up, handle, reply)  # the browser that started it can still finish it
    assert len(w.accounts.accounts) == 1


@pytest.mark.parametrize("up", BOTH)
def test_a_replayed_answer_is_refused(up: Protocol) -> None:
    w, party = world_for(up)
    browser = w.browser()
    w.person(UPSTREAMS[up], "anna", email="anna@example.org")
    handle, reply = go_upstream(w, browser, login_request(party))
    answer(w, browser, up, handle, reply)

    with pytest.raises(errors.LoginStateInvalid):
        answer(w, browser, up, handle, reply)  # the browser no longer holds the handle
    browser.bind(handle)  # even if it still did (a second tab's copy of the session), the record is used up
    with pytest.raises(errors.LoginStateInvalid):
        answer(w, browser, up, handle, reply)

    assert w.upstream(up).finished == 1
    assert len(w.audit.of(AuditKind.LOGIN_SUCCEEDED)) == 1 and len(w.sso_sessions.records) == 1


@pytest.mark.parametrize("down", BOTH_APPS)
@pytest.mark.parametrize("up", BOTH)
def test_an_answer_that_fails_verification_goes_back_to_the_app(up: Protocol, down: Protocol) -> None:
    w, party = world_for(up, down)
    browser, request = w.browser(), login_request(party)
    w.person(UPSTREAMS[up], "anna", email="anna@example.org")
    handle, reply = go_upstream(w, browser, request)
    w.upstream(up).refuse = True

    with pytest.raises(DownstreamFailure) as failed:
        answer(w, browser, up, handle, reply)

    assert isinstance(failed.value.error, errors.UpstreamVerificationFailed)
    assert failed.value.login == request  # the app that started the login hears it
    assert not w.accounts.accounts and not w.sso_sessions.records and browser.renewals == 0
    assert not w.audit.of(AuditKind.LOGIN_SUCCEEDED) and not w.downstream(down).answered
    told = login.failure_answer(w.journeys, failed.value.login, failed.value.error)
    assert told is not None and told.url.startswith(request.return_to)
    assert w.downstream(down).failures == [(request, failed.value.error)]


def test_an_oidc_answer_at_another_providers_callback_is_a_mix_up() -> None:
    w, party = world_for(Protocol.OIDC)
    browser = w.browser()
    w.person(OIDC_UPSTREAM, "anna", email="anna@example.org")
    handle, reply = go_upstream(w, browser, login_request(party))

    with pytest.raises(DownstreamFailure) as failed:  # the journey hands ``arrived_at`` to the adapter
        upstream_answer(w.journeys, browser, Protocol.OIDC, handle, reply, arrived_at="some-other-provider")
    assert isinstance(failed.value.error, errors.UpstreamVerificationFailed)
    assert not w.accounts.accounts


def test_an_answer_for_one_protocol_does_not_complete_a_login_of_the_other() -> None:
    w, party = world_for(Protocol.OIDC)
    browser = w.browser()
    w.person(OIDC_UPSTREAM, "anna", email="anna@example.org")
    handle, reply = go_upstream(w, browser, login_request(party))

    with pytest.raises(errors.LoginStateInvalid):  # the OIDC login's state at the SAML endpoint: unsolicited
        upstream_answer(w.journeys, browser, Protocol.SAML, handle, reply)
    assert w.oidc.finished == 0 and w.saml.finished == 0 and not w.accounts.accounts
    # the stray post stranded nothing: the same answer at its own endpoint still completes the login
    answer(w, browser, Protocol.OIDC, handle, reply)
    assert w.oidc.finished == 1 and len(w.accounts.accounts) == 1


# --- the SSO session -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("up", BOTH)
def test_a_second_login_of_the_browser_is_answered_from_its_sso_session(up: Protocol) -> None:
    saml_app, oidc_app = (app(p, allowed=(UPSTREAMS[up],)) for p in (Protocol.SAML, Protocol.OIDC))
    w = World([saml_app, oidc_app])
    browser = w.browser()
    sign_in(w, browser, saml_app, up)
    [record] = w.sso_sessions.records.values()

    outgoing = login.begin(w.journeys, browser, login_request(oidc_app))

    assert len(w.upstream(up).begun) == 1  # not upstream again
    [answered] = w.oidc_answers.answered
    assert answered.sid == record.sid and outgoing == w.oidc_answers.outgoing_for(answered.result, record.sid)
    assert [p.party_id for p in w.sso_sessions.participants(record.sid)] == [saml_app.party_id, oidc_app.party_id]
    assert len(w.sso_sessions.records) == 1 and browser.renewals == 1  # same session, no new identity
    assert [e.reason for e in w.audit.of(AuditKind.LOGIN_SUCCEEDED)] == ["upstream; 0 ms", "sso; 0 ms"]
    assert w.observer.succeeded[-1] == (UPSTREAMS[up].name, oidc_app.party_id, "sso")
    other = w.browser()  # the session is this browser's only
    assert isinstance(login.begin(w.journeys, other, login_request(oidc_app)), Redirect | PostForm)
    assert len(w.upstream(up).begun) == 2


@pytest.mark.parametrize("up", BOTH)
def test_forced_authentication_goes_upstream_despite_the_session(up: Protocol) -> None:
    w, party = world_for(up)
    browser = w.browser()
    sign_in(w, browser, party, up)

    outgoing = login.begin(w.journeys, browser, login_request(party, force_authn=True))

    assert browser.holds(handle_in(outgoing)) and len(w.upstream(up).begun) == 2
    assert len(w.saml_answers.answered) == 1


@pytest.mark.parametrize("up", BOTH)
def test_a_session_ended_server_side_no_longer_answers(up: Protocol) -> None:
    w, party = world_for(up)
    browser = w.browser()
    sign_in(w, browser, party, up)
    [record] = w.sso_sessions.records.values()
    w.sso_sessions.end(record.sid, w.clock.now())  # "sign out everywhere" from another browser

    with pytest.raises(DownstreamFailure) as failed:
        login.begin(w.journeys, browser, login_request(party, passive=True))
    assert isinstance(failed.value.error, errors.NoPassive)


@pytest.mark.parametrize("down", BOTH_APPS)
def test_a_passive_request_without_a_session_fails_without_going_upstream(down: Protocol) -> None:
    w, party = world_for(Protocol.OIDC, down)
    browser, request = w.browser(), login_request(party, passive=True)

    with pytest.raises(DownstreamFailure) as failed:
        login.begin(w.journeys, browser, request)

    assert isinstance(failed.value.error, errors.NoPassive) and failed.value.login == request
    assert not w.oidc.begun and not w.pending.rows and not browser.handles
    told = login.failure_answer(w.journeys, request, failed.value.error)
    assert told == w.downstream(down).failure_for(request, failed.value.error)


def test_a_passive_request_with_a_session_is_answered() -> None:
    w, party = world_for(Protocol.SAML)
    browser = w.browser()
    sign_in(w, browser, party, Protocol.SAML)

    outgoing = login.begin(w.journeys, browser, login_request(party, passive=True))

    assert isinstance(outgoing, PostForm) and len(w.saml_answers.answered) == 2 and len(w.saml.begun) == 1


# --- discovery -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("up", BOTH)
def test_with_two_upstreams_and_no_hint_the_person_chooses_once(up: Protocol) -> None:
    party = app(Protocol.SAML)  # names no upstream: both may be used
    w = World([party])
    browser, request = w.browser(), login_request(party)

    outgoing = login.begin(w.journeys, browser, request)

    assert not w.oidc.begun and not w.saml.begun
    assert isinstance(outgoing, Redirect)
    [handle] = browser.handles
    assert outgoing.url == w.places.discovery(handle)
    assert login.waiting_login(w.journeys, browser, handle) == request  # the page may reload: it stays
    with pytest.raises(errors.LoginStateInvalid):
        login.waiting_login(w.journeys, w.browser(), handle)  # not another browser's
    with pytest.raises(errors.LoginStateInvalid):
        login.choose(w.journeys, w.browser(), handle, UPSTREAMS[up].name)
    with pytest.raises(DownstreamFailure) as refused:
        login.choose(w.journeys, browser, handle, "an-unregistered-provider")
    assert isinstance(refused.value.error, errors.UnknownUpstream)
    assert w.pending.kinds_of(handle) == {LoginAtDiscovery.KIND}  # a refused choice leaves the login waiting

    chosen = login.choose(w.journeys, browser, handle, UPSTREAMS[up].name)

    assert w.upstream(up).begun == [(UPSTREAMS[up].name, request, False)]
    assert browser.holds(handle_in(chosen)) and not browser.holds(handle)
    assert w.pending.kinds_of(handle) == set()
    with pytest.raises(errors.LoginStateInvalid):  # once
        login.choose(w.journeys, browser, handle, UPSTREAMS[up].name)
    w.person(UPSTREAMS[up], "anna", email="anna@example.org")
    answer(w, browser, up, *w.upstream(up).reply(chosen))
    assert len(w.saml_answers.answered) == 1


def test_a_hint_skips_discovery() -> None:
    party = app(Protocol.OIDC)
    w = World([party])
    browser = w.browser()

    outgoing = login.begin(w.journeys, browser, login_request(party, upstream_hints=(SAML_UPSTREAM.name,)))

    assert isinstance(outgoing, PostForm) and [b[0] for b in w.saml.begun] == [SAML_UPSTREAM.name]


def test_a_hint_the_app_may_not_use_is_refused_not_replaced() -> None:
    w, party = world_for(Protocol.OIDC)

    with pytest.raises(DownstreamFailure) as failed:
        login.begin(w.journeys, w.browser(), login_request(party, upstream_hints=(SAML_UPSTREAM.name,)))
    assert isinstance(failed.value.error, errors.UnknownUpstream)
    assert not w.oidc.begun and not w.saml.begun


# --- failures, unsolicited answers ------------------------------------------------------------------------------

@pytest.mark.parametrize("down", BOTH_APPS)
def test_failure_answer_is_the_downstream_adapters(down: Protocol) -> None:
    w, party = world_for(Protocol.OIDC, down)
    request, error = login_request(party), errors.ConsentDeclined()

    told = login.failure_answer(w.journeys, request, error)

    assert told == w.downstream(down).failure_for(request, error)
    assert w.downstream(down).failures == [(request, error)]
    assert not w.downstream(Protocol.SAML if down is Protocol.OIDC else Protocol.OIDC).failures


def test_failure_answer_without_an_adapter_is_none() -> None:
    w, party = world_for(Protocol.OIDC)
    portal = login_request(party, protocol=Protocol.PORTAL)
    assert login.failure_answer(w.journeys, portal, errors.NoPassive()) is None


def test_an_unsolicited_saml_answer_signs_in_to_the_portal_only_where_allowed() -> None:
    w, _ = world_for(Protocol.SAML)
    browser = w.browser()
    w.person(SAML_UPSTREAM, "anna", email="anna@example.org")
    idp_initiated = {"SAMLResponse": "unsolicited", "idp": SAML_UPSTREAM.name}

    with pytest.raises(errors.LoginStateInvalid):
        upstream_answer(w.journeys, browser, Protocol.SAML, "", idp_initiated)
    assert not w.accounts.accounts

    w.saml.unsolicited_from.add(SAML_UPSTREAM.name)
    outgoing = upstream_answer(w.journeys, browser, Protocol.SAML, "", idp_initiated)

    assert outgoing == Redirect(w.places.portal_home(), 303)
    sso = browser.sso()
    assert sso is not None and sso.sid in w.sso_sessions.records and browser.renewals == 1
    assert [e.downstream for e in w.audit.of(AuditKind.LOGIN_SUCCEEDED)] == ["broker-portal"]
    assert not w.saml_answers.answered


# --- consent ---------------------------------------------------------------------------------------------------

def consent_page(w: World, browser: FakeBrowser, party: DownstreamParty, up: Protocol) -> Page:
    """The login's 303 to the consent page's own address (post/redirect/get), and the page shown there."""
    sent = sign_in(w, browser, party, up)
    assert isinstance(sent, Redirect) and sent.status == 303 and sent.url.startswith("/consent/")
    page = consent.show(w.journeys, browser, sent.url.removeprefix("/consent/"))
    assert page is not None and page.template == "consent.html" and page.no_store
    assert consent.show(w.journeys, browser, page.data["handle"]) == page  # a reload shows the same page
    return page


@pytest.mark.parametrize("down", BOTH_APPS)
@pytest.mark.parametrize("up", BOTH)
def test_an_app_that_needs_consent_gets_the_page_then_the_answer(up: Protocol, down: Protocol) -> None:
    w, party = world_for(up, down, policy=ReleasePolicy())  # no exemption: the citizen is asked
    browser = w.browser()

    page = consent_page(w, browser, party, up)

    handle = page.data["handle"]
    assert browser.holds(handle) and page.data["app_name"] == party.display_name
    assert [name for name, _ in page.data["optional"]] == ["email", "name"] and page.data["required"] == []
    assert not w.downstream(down).answered  # nothing released before the answer
    sso = browser.sso()
    assert sso is not None and w.sso_sessions.participants(sso.sid) == []

    w.clock.advance(timedelta(seconds=12, milliseconds=345))  # the citizen reads the page
    outgoing = consent.decide(w.journeys, browser, handle, allow=True, ticked=frozenset({"email"}))

    [answered] = w.downstream(down).answered
    assert answered.claims == frozenset({"email", "email_verified"})  # "name" was not ticked: not released
    assert "name" not in answered.result.released and answered.result.released["email"] == "anna@example.org"
    assert outgoing == w.downstream(down).outgoing_for(answered.result, sso.sid)
    [given] = w.consents.answers
    assert (given.how, given.granted, given.declined) == (ConsentHow.PAGE, frozenset({"email"}), frozenset({"name"}))
    assert [e.reason for e in w.audit.of(AuditKind.CONSENT_GIVEN)] == ["page; declined: name"]
    # the login's time runs from the app's request to its answer, the consent page included (core.login_time)
    assert [e.reason for e in w.audit.of(AuditKind.LOGIN_SUCCEEDED)] == ["consent; 12345 ms"]
    assert [p.party_id for p in w.sso_sessions.participants(sso.sid)] == [party.party_id]
    with pytest.raises(errors.LoginStateInvalid):  # the page's handle is used once
        consent.decide(w.journeys, browser, handle, allow=True, ticked=frozenset())


@pytest.mark.parametrize("up", BOTH)
def test_declining_consent_tells_the_app_and_releases_nothing(up: Protocol) -> None:
    w, party = world_for(up, Protocol.OIDC, policy=ReleasePolicy())
    browser = w.browser()
    page = consent_page(w, browser, party, up)

    declined = consent.decide(w.journeys, browser, page.data["handle"], allow=False, ticked=frozenset({"email"}))
    assert isinstance(declined, Page) and declined.template == "consent_declined.html"
    assert declined.data["app_name"] == party.display_name and not w.audit.of(AuditKind.CONSENT_DECLINED)
    assert consent.show(w.journeys, browser, page.data["handle"]) == page  # "Change my answer": still waiting
    with pytest.raises(DownstreamFailure) as failed:
        consent.give_up(w.journeys, browser, page.data["handle"])

    assert isinstance(failed.value.error, errors.ConsentDeclined)
    assert failed.value.login.downstream == party.party_id
    assert not w.oidc_answers.answered and not w.consents.answers
    assert [e.reason for e in w.audit.of(AuditKind.CONSENT_DECLINED)] == ["declined: email name"]
    assert not w.audit.of(AuditKind.LOGIN_SUCCEEDED)


def test_the_consent_page_answer_is_this_browsers_only() -> None:
    w, party = world_for(Protocol.SAML, policy=ReleasePolicy())
    page = consent_page(w, w.browser(), party, Protocol.SAML)

    with pytest.raises(errors.LoginStateInvalid):
        consent.decide(w.journeys, w.browser(), page.data["handle"], allow=True, ticked=frozenset({"email"}))
    assert not w.saml_answers.answered and not w.consents.answers


def test_an_exempt_app_is_answered_at_once_and_the_exemption_recorded() -> None:
    w, party = world_for(Protocol.OIDC)  # the default world's policy exempts every app
    outgoing = sign_in(w, w.browser(), party, Protocol.OIDC)

    assert isinstance(outgoing, PostForm)
    [recorded] = w.consents.answers
    assert recorded.how is ConsentHow.EXEMPT
    assert [e.reason for e in w.audit.of(AuditKind.CONSENT_GIVEN)] == ["exempt"]


def test_the_fakes_answer_as_their_ports_say() -> None:
    """The fakes' own promises the tests above lean on."""
    w, party = world_for(Protocol.SAML)
    browser = w.browser()
    sign_in(w, browser, party, Protocol.SAML)
    [record] = w.sso_sessions.records.values()
    join = Participant(party.party_id, Protocol.SAML, "transient-2")
    w.sso_sessions.join(record.sid, join, w.clock.now())  # a second join replaces, keeps the place
    assert w.sso_sessions.participants(record.sid) == [join]
    w.sso_sessions.join("unknown", join, w.clock.now())
    assert w.sso_sessions.participants("unknown") == []
    assert [r.kind for r in w.audit.events(limit=1)] == [AuditKind.LOGIN_SUCCEEDED.value]


# --- reading the app's request --------------------------------------------------------------------------------

@pytest.mark.parametrize("down", BOTH)
def test_an_apps_request_is_read_by_its_protocols_adapter_and_refusals_go_where_they_can(down: Protocol) -> None:
    w = World([app(down)])
    request = login_request(app(down))
    reader = w.downstream(down)
    reader.requests["r1"] = request

    assert login.read_request(w.journeys, down, DownstreamMessage(POST, (("request", "r1"),))) == request
    with pytest.raises(DownstreamFailure) as answerable:  # the return address is known: the app hears it
        login.read_request(w.journeys, down, DownstreamMessage(POST, (("request", "r1"), ("refuse", "answerable"))))
    assert answerable.value.login == request and isinstance(answerable.value.error, errors.InvalidSignature)
    with pytest.raises(errors.UnknownParty):  # no trustworthy return address: the person's page, not a redirect
        login.read_request(w.journeys, down, DownstreamMessage(POST, (("request", "unknown"),)))
