"""Whatever ends an SSO session reaches its OpenID apps (issue 18, ``broker.journeys.session_end``): a
back-channel logout token queued in the outbox for each app that registered a URI, a frame of the next page for
each front-channel app, the session's grants revoked. Fakes only (``fakes_support``)."""

from __future__ import annotations

from dataclasses import replace

from broker.core.audit import AuditKind
from broker.core.grants import Grant
from broker.core.model import Protocol, UpstreamIdentity, UpstreamParty
from broker.core.outbox import MessageState
from broker.core.outcomes import Page, Redirect
from broker.core.pending_records import OidcLogout
from broker.core.security_events import SecurityEvent
from broker.journeys import login, logout, portal, portal_links, session_end
from broker.journeys.upstream_answers import upstream_answer
from tests.journeys.fakes_support import OIDC_UPSTREAM, SAML_UPSTREAM, FakeBrowser, World, app, login_request

BACK, FRONT = "back-app", "front-app"


def world() -> World:
    apps = [app(Protocol.OIDC, allowed=(OIDC_UPSTREAM,), party_id=name) for name in (BACK, FRONT)]
    w = World(apps)
    w.session_notices.back.add(BACK)
    w.session_notices.front.add(FRONT)
    w.person(OIDC_UPSTREAM, "anna", email="anna@example.org")
    return w


def signed_in_to_both(w: World) -> FakeBrowser:
    browser = w.browser()
    for party in w.apps:
        outgoing = login.begin(w.journeys, browser, login_request(party))
        if not w.oidc_answers.answered or w.oidc_answers.answered[-1].result.request.downstream != party.party_id:
            handle, reply = w.oidc.reply(outgoing)
            upstream_answer(w.journeys, browser, Protocol.OIDC, handle, reply, OIDC_UPSTREAM.name)
    assert [a.result.request.downstream for a in w.oidc_answers.answered] == [BACK, FRONT]
    return browser


def grant_in(w: World, sid: str, grant_id: str) -> None:
    [first, *_] = w.oidc_answers.answered
    result = first.result
    w.grants.create_grant(Grant(grant_id, BACK, result.account.account_id, ("openid",), frozenset(),
                                "https://back-app.example/cb", None, None, result.auth_time, result.acr, result.amr,
                                sid, result.upstream, w.clock.now()))


def queued(w: World) -> list[tuple[str, str]]:
    return [(q.message.receiver, q.message.kind) for q in w.outbox.messages.values()
            if q.state is MessageState.PENDING]


def test_an_rp_initiated_logout_reaches_the_back_and_front_channel_apps_and_revokes_the_grants() -> None:
    w = world()
    browser = signed_in_to_both(w)
    sso = browser.sso()
    assert sso is not None
    grant_in(w, sso.sid, "grant-1")
    grant_in(w, "another-session", "grant-2")

    done = OidcLogout(target="https://front-app.example/bye", state=None, client=FRONT)
    outcome = logout.oidc_logout(w.journeys, browser, done, "https://front-app.example/bye", sso.sid, None, None)

    assert queued(w) == [(BACK, "backchannel-logout")]
    assert isinstance(outcome, Page) and outcome.template == session_end.FRAMES
    assert outcome.frames == (f"https://{FRONT}.example/frontchannel?sid={sso.sid}",)
    assert outcome.data["redirect"] == "https://front-app.example/bye" and outcome.no_store
    assert w.grants.revoked == {"grant-1"}  # only this session's
    assert browser.sso() is None and not w.sso_sessions.is_live(sso.sid)
    [notices] = w.audit.of(AuditKind.LOGOUT_NOTICES)
    assert notices.reason == "1 grants revoked; 1 back-channel; 1 front-channel; 0 session-revoked events"


def test_without_a_front_channel_app_the_redirect_stays_a_redirect() -> None:
    w = world()
    w.session_notices.front.clear()
    browser = signed_in_to_both(w)
    sso = browser.sso()
    assert sso is not None
    done = OidcLogout(target="https://back-app.example/bye", state=None, client=BACK)

    outcome = logout.oidc_logout(w.journeys, browser, done, "https://back-app.example/bye", sso.sid, None, None)

    assert outcome == Redirect("https://back-app.example/bye", 303)
    assert queued(w) == [(BACK, "backchannel-logout")]


def test_sign_out_everywhere_reaches_the_other_browsers_apps_by_the_back_channel() -> None:
    w = world()
    elsewhere = signed_in_to_both(w)
    other = elsewhere.sso()
    w.oidc_answers.answered.clear()
    here = signed_in_to_both(w)
    mine = here.sso()
    assert other is not None and mine is not None and other.sid != mine.sid

    sso = portal.sign_out_everywhere(w.journeys, here)
    page = logout.after_sign_out_everywhere(w.journeys, here, sso)

    assert sorted(queued(w)) == [(BACK, "backchannel-logout")] * 2  # one per session
    bodies = sorted(q.message.body for q in w.outbox.messages.values())
    assert any(other.sid in b for b in bodies) and any(mine.sid in b for b in bodies)
    assert isinstance(page, Page) and page.template == "portal_done.html"
    assert page.frames == (f"https://{FRONT}.example/frontchannel?sid={mine.sid}",)  # this browser's only


def test_deleting_the_account_tells_the_apps_before_the_sessions_are_erased() -> None:
    w = world()
    browser = signed_in_to_both(w)
    sso = browser.sso()
    assert sso is not None

    portal.delete_account(w.journeys, browser)

    assert queued(w) == [(BACK, "backchannel-logout")]
    [message] = w.outbox.messages.values()
    assert sso.sid in message.message.body


def test_a_session_ended_twice_is_told_once() -> None:
    w = world()
    browser = signed_in_to_both(w)
    sso = browser.sso()
    assert sso is not None
    logout.oidc_logout(w.journeys, browser, OidcLogout(None, None, BACK), None, sso.sid, None, None)
    again = logout.oidc_logout(w.journeys, browser, OidcLogout(None, None, BACK), None, sso.sid, None, None)

    assert again == logout.SIGNED_OUT  # this browser has no session left: nothing more to tell
    assert len(queued(w)) == 1


def test_with_frames_keeps_a_page_and_adds_its_frames() -> None:
    page = session_end.with_frames(("https://a.example/fc",), Page("signed_out.html", {"still_signed_in": False}))
    assert page == replace(Page("signed_out.html", {"still_signed_in": False,
                                                    "front_channel": ("https://a.example/fc",)}),
                           frames=("https://a.example/fc",))
    assert session_end.with_frames((), Redirect("https://x.example/")) == Redirect("https://x.example/")


def through(w: World, browser: FakeBrowser, upstream: UpstreamParty) -> None:
    outgoing = login.begin(w.journeys, browser, login_request(w.apps[0], upstream_hints=(upstream.name,)))
    handle, reply = w.upstream(upstream.protocol).reply(outgoing)
    upstream_answer(w.journeys, browser, upstream.protocol, handle, reply,
                    upstream.name if upstream.protocol is Protocol.OIDC else None)


def two_ways_in() -> tuple[World, FakeBrowser, FakeBrowser, UpstreamIdentity]:
    """Anna's account has a Citizen ID and a City IdP identity; browser ``by_oidc`` signed in with the first,
    ``by_saml`` with the second, both at the back-channel app."""
    w = World([app(Protocol.OIDC, allowed=(OIDC_UPSTREAM, SAML_UPSTREAM), party_id=BACK)])
    w.session_notices.back.add(BACK)
    w.person(OIDC_UPSTREAM, "anna", email="anna@example.org")
    by_oidc = w.browser()
    through(w, by_oidc, OIDC_UPSTREAM)
    sso = by_oidc.sso()
    assert sso is not None
    city = w.person(SAML_UPSTREAM, "anna-at-city")
    w.accounts.link_identity(sso.account_id, city, w.clock.now())
    by_saml = w.browser()
    through(w, by_saml, SAML_UPSTREAM)
    other = by_saml.sso()
    assert other is not None and other.account_id == sso.account_id and other.upstream == SAML_UPSTREAM.name
    return w, by_oidc, by_saml, city


def test_unlinking_a_method_ends_the_sessions_resting_on_it_elsewhere() -> None:
    w, by_oidc, by_saml, city = two_ways_in()
    elsewhere = by_saml.sso()
    assert elsewhere is not None

    done = portal_links.unlink(w.journeys, by_oidc, city.issuer, city.subject)

    assert isinstance(done, portal_links.Unlinked)
    assert not w.sso_sessions.is_live(elsewhere.sid)  # the City IdP session ended, its app told
    [message] = w.outbox.messages.values()
    assert elsewhere.sid in message.message.body
    mine = by_oidc.sso()
    assert mine is not None and w.sso_sessions.is_live(mine.sid)  # this browser's rests on Citizen ID: it goes on


def test_unlinking_the_method_this_session_rests_on_signs_this_browser_out() -> None:
    w, by_oidc, _, _ = two_ways_in()
    mine = by_oidc.sso()
    assert mine is not None
    [citizen_id] = [i for i in w.accounts.identities(mine.account_id) if i.upstream == OIDC_UPSTREAM.name]

    done = portal_links.unlink(w.journeys, by_oidc, citizen_id.issuer, citizen_id.subject)

    assert isinstance(done, Page) and done.template == "signed_out.html" and done.data["unlinked"] == "Citizen ID"
    assert by_oidc.sso() is None and not w.sso_sessions.is_live(mine.sid)
    assert any(mine.sid in q.message.body for q in w.outbox.messages.values())


def test_security_events_go_to_the_apps_streams_for_a_session_end_and_an_erasure() -> None:
    w = world()
    browser = signed_in_to_both(w)
    sso = browser.sso()
    assert sso is not None
    logout.oidc_logout(w.journeys, browser, OidcLogout(None, None, BACK), None, sso.sid, None, None)
    assert [(e.event, e.account_id) for e in w.security_events.emitted] == [
        (SecurityEvent.SESSION_REVOKED, sso.account_id)]

    w.oidc_answers.answered.clear()
    again = signed_in_to_both(w)
    portal.delete_account(w.journeys, again)

    assert [e.event for e in w.security_events.emitted][1:] == [SecurityEvent.SESSION_REVOKED,
                                                                 SecurityEvent.ACCOUNT_PURGED]
