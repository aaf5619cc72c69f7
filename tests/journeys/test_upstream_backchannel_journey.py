"""A logout token from the upstream OpenID provider ends the broker's sessions that rest on that sign-in (issue 18,
``broker.journeys.upstream_backchannel``): with a ``sub`` every live session of the person's account from that
upstream, or with a ``sid`` too only those recorded with that provider session (else those recorded with none); with
a ``sid`` alone the sessions recorded with it; each audited, its grants revoked and its back-channel apps told; a
replayed token is refused; a token that names no known person or session ends nothing. Fakes only
(``fakes_support``); the token checks themselves are ``tests/upstream/test_oidc_backchannel.py``'s."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import pytest

from broker.core import errors
from broker.core.audit import AuditKind
from broker.core.model import Protocol
from broker.core.outbox import MessageState
from broker.core.ports import SsoSessionRecord
from broker.core.upstream_logout_tokens import UpstreamLogoutToken, UpstreamLogoutTokens
from broker.journeys import login, upstream_backchannel
from broker.journeys.upstream_answers import upstream_answer
from tests.journeys.fakes_support import OIDC_UPSTREAM, SAML_UPSTREAM, FakeBrowser, World, app, login_request

BACK = "back-app"


class FakeLogoutTokens:
    """Verifies nothing: a token is the jti of a prepared ``UpstreamLogoutToken`` (or refused)."""

    def __init__(self) -> None:
        self.tokens: dict[str, UpstreamLogoutToken] = {}

    def add(self, jti: str, now: datetime, identity: tuple[str, str] | None, sid: str | None = None) -> str:
        self.tokens[jti] = UpstreamLogoutToken(OIDC_UPSTREAM.name, jti, now + timedelta(minutes=12), identity, sid)
        return jti

    def knows(self, upstream: str) -> bool:
        return upstream == OIDC_UPSTREAM.name

    def verify(self, upstream: str, token: str, now: datetime) -> UpstreamLogoutToken:
        if not self.knows(upstream):
            raise errors.UnknownUpstream(detail=upstream)
        if token not in self.tokens:
            raise errors.UpstreamVerificationFailed(detail="logout token: forged")
        return self.tokens[token]


_port: type[UpstreamLogoutTokens] = FakeLogoutTokens


def world() -> tuple[World, FakeLogoutTokens]:
    w = World([app(Protocol.OIDC, allowed=(OIDC_UPSTREAM,), party_id=BACK)])
    w.session_notices.back.add(BACK)
    w.person(OIDC_UPSTREAM, "anna", email="anna@example.org")
    tokens = FakeLogoutTokens()
    w.journeys = dataclasses.replace(w.journeys, upstream_logout_tokens=tokens)
    return w, tokens


def signed_in(w: World) -> FakeBrowser:
    browser = w.browser()
    outgoing = login.begin(w.journeys, browser, login_request(w.apps[0]))
    handle, reply = w.oidc.reply(outgoing)
    upstream_answer(w.journeys, browser, Protocol.OIDC, handle, reply, OIDC_UPSTREAM.name)
    assert browser.sso() is not None
    return browser


def queued(w: World) -> int:
    return sum(1 for q in w.outbox.messages.values() if q.state is MessageState.PENDING)


ANNA = (OIDC_UPSTREAM.issuer, "anna")


def test_a_token_for_the_person_ends_every_session_from_that_upstream_and_tells_the_apps() -> None:
    w, tokens = world()
    here, there = signed_in(w), signed_in(w)
    mine, theirs = here.sso(), there.sso()
    assert mine is not None and theirs is not None and mine.sid != theirs.sid
    now = w.clock.now()
    # a session of the same account from another upstream rests on another sign-in: it stays
    w.sso_sessions.register(SsoSessionRecord("saml-sid", mine.account_id, SAML_UPSTREAM.name, now, now,
                                             now + timedelta(hours=1), "Other/1.0"))

    ended = upstream_backchannel.logout_token(w.journeys, OIDC_UPSTREAM.name, tokens.add("t1", now, ANNA, "op-sid"))

    assert ended == 2
    assert here.sso() is None and there.sso() is None
    assert w.sso_sessions.is_live("saml-sid")
    assert queued(w) == 2  # one logout token per ended session for the back-channel app
    logged_out = w.audit.of(AuditKind.LOGGED_OUT)
    assert [(e.account_id, e.upstream, e.reason) for e in logged_out] == \
        [(mine.account_id, OIDC_UPSTREAM.name, upstream_backchannel.REASON)] * 2


def test_a_replayed_token_is_refused_and_ends_nothing_more() -> None:
    w, tokens = world()
    now = w.clock.now()
    token = tokens.add("t1", now, ANNA)
    upstream_backchannel.logout_token(w.journeys, OIDC_UPSTREAM.name, token)
    browser = signed_in(w)

    with pytest.raises(errors.UpstreamVerificationFailed) as failure:
        upstream_backchannel.logout_token(w.journeys, OIDC_UPSTREAM.name, token)

    assert "replayed" in (failure.value.detail or "")
    assert browser.sso() is not None


@pytest.mark.parametrize(("identity", "sid"), [(None, "op-sid"), ((OIDC_UPSTREAM.issuer, "somebody-else"), None)])
def test_a_token_naming_nobody_known_ends_nothing(identity: tuple[str, str] | None, sid: str | None) -> None:
    """A ``sid`` alone that no session was recorded with (these sessions have none), or a subject no account is
    linked to: nothing ends, and the provider is told the logout is done."""
    w, tokens = world()
    browser = signed_in(w)

    assert upstream_backchannel.logout_token(w.journeys, OIDC_UPSTREAM.name,
                                             tokens.add("t1", w.clock.now(), identity, sid)) == 0

    assert browser.sso() is not None and queued(w) == 0 and not w.audit.of(AuditKind.LOGGED_OUT)


def test_a_refused_token_ends_nothing() -> None:
    w, _ = world()
    browser = signed_in(w)

    with pytest.raises(errors.UpstreamVerificationFailed):
        upstream_backchannel.logout_token(w.journeys, OIDC_UPSTREAM.name, "forged")
    with pytest.raises(errors.UnknownUpstream):
        upstream_backchannel.logout_token(w.journeys, "nobody", "t1")

    assert browser.sso() is not None and queued(w) == 0


def test_without_the_port_every_token_is_refused() -> None:
    w, tokens = world()
    w.journeys = dataclasses.replace(w.journeys, upstream_logout_tokens=None)
    with pytest.raises(errors.UnknownUpstream):
        upstream_backchannel.logout_token(w.journeys, OIDC_UPSTREAM.name, tokens.add("t1", w.clock.now(), ANNA))


# -- the provider's session id (``SsoSessionRecord.upstream_sid``) --------------------------------------------


def with_provider_session(w: World, browser: FakeBrowser, upstream_sid: str | None) -> str:
    """Record ``upstream_sid`` for the browser's session, as the login does from the ID token's ``sid``."""
    sso = browser.sso()
    assert sso is not None
    w.sso_sessions.records[sso.sid] = dataclasses.replace(w.sso_sessions.records[sso.sid], upstream_sid=upstream_sid)
    return sso.sid


@pytest.mark.parametrize("identity", [ANNA, None], ids=["sub-and-sid", "sid-alone"])
def test_a_token_with_the_providers_sid_ends_that_session_only(identity: tuple[str, str] | None) -> None:
    w, tokens = world()
    here, there, older = signed_in(w), signed_in(w), signed_in(w)
    with_provider_session(w, here, "op-A")
    ending = with_provider_session(w, there, "op-B")
    with_provider_session(w, older, None)  # from before the column: cannot be told apart, but B matched

    ended = upstream_backchannel.logout_token(w.journeys, OIDC_UPSTREAM.name,
                                              tokens.add("t1", w.clock.now(), identity, "op-B"))

    assert ended == 1 and there.sso() is None
    assert here.sso() is not None and older.sso() is not None
    assert [e.account_id for e in w.audit.of(AuditKind.LOGGED_OUT)] == [w.sso_sessions.records[ending].account_id]
    assert queued(w) == 1


def test_a_sub_and_sid_that_no_session_was_recorded_with_end_the_sessions_recorded_without_one() -> None:
    """Sessions from before revision 0016 (or from a provider whose ID tokens carry no sid) cannot be told apart:
    they end, the safe side; a session recorded with another provider session stays."""
    w, tokens = world()
    recorded, unrecorded = signed_in(w), signed_in(w)
    with_provider_session(w, recorded, "op-A")

    ended = upstream_backchannel.logout_token(w.journeys, OIDC_UPSTREAM.name,
                                              tokens.add("t1", w.clock.now(), ANNA, "op-unknown"))

    assert ended == 1 and unrecorded.sso() is None and recorded.sso() is not None


def test_a_sid_alone_ends_nothing_of_another_upstream_or_person() -> None:
    w, tokens = world()
    browser = signed_in(w)
    mine = with_provider_session(w, browser, "op-A")
    now = w.clock.now()
    w.sso_sessions.register(SsoSessionRecord("saml-sid", w.sso_sessions.records[mine].account_id, SAML_UPSTREAM.name,
                                             now, now, now + timedelta(hours=1), "Other/1.0", upstream_sid="op-B"))

    ended = upstream_backchannel.logout_token(w.journeys, OIDC_UPSTREAM.name, tokens.add("t1", now, None, "op-B"))

    assert ended == 0 and browser.sso() is not None and w.sso_sessions.is_live("saml-sid")
