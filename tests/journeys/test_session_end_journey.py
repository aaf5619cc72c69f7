"""Whatever ends an SSO session reaches its OpenID apps (issue 18, ``broker.journeys.session_end``): a
back-channel logout token queued in the outbox for each app that registered a URI, a frame of the next page for
each front-channel app, the session's grants revoked. Fakes only (``fakes_support``)."""

from __future__ import annotations

from dataclasses import replace

from broker.core.audit import AuditKind
from broker.core.grants import Grant
from broker.core.model import Protocol
from broker.core.outbox import MessageState
from broker.core.outcomes import Page, Redirect
from broker.core.pending_records import OidcLogout
from broker.journeys import login, logout, portal, session_end
from broker.journeys.upstream_answers import upstream_answer
from tests.journeys.fakes_support import OIDC_UPSTREAM, FakeBrowser, World, app, login_request

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
    assert notices.reason == "1 grants revoked; 1 back-channel; 1 front-channel"


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
