"""Paused and disabled event streams against a running broker (issue 18, SSF 1.0 §8.1.2): a paused stream holds
its events, the delivery worker sends it none, and once the receiver enables it again each held event arrives once
and passes the receiver's own check; disabling or deleting the stream drops what it held; a paused stream holds at
most ``MAX_HELD_PER_STREAM`` events; the verification event is for enabled streams only (§8.1.4.2)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from broker.core.outbox import MessageState
from broker.core.security_events import SecurityEvent
from broker.downstream.ssf import transmitter as transmitter_module
from tests.databases import BACKENDS
from tests.flows.federation import Federation
from tests.flows.oidc_peers import RelyingParty, relying_party
from tests.flows.oidc_registration_support import sign_in
from tests.flows.ssf_receiver_support import SsfReceiver, validate_set
from tests.flows.ssf_support import (
    REVOKED,
    account_of,
    call,
    deliver,
    new_stream,
    published,
    queued_for,
    set_status,
    ssf_federation,
    transmitter,
)
from tests.peers.browser import Browser

HELD, PENDING, DELIVERED = MessageState.HELD, MessageState.PENDING, MessageState.DELIVERED


@pytest.fixture(scope="module", params=BACKENDS)
def fed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
        key_folder: Path) -> Iterator[Federation]:
    with ssf_federation(request.param, tmp_path_factory.mktemp("ssf-paused"), key_folder) as running:
        yield running


def signed_in(fed: Federation, rp: RelyingParty, browser: Browser) -> tuple[tuple[str, str], str, str]:
    """The app's credentials, the ``sub`` of its ID token and the account, once the citizen signed in to it."""
    assert sign_in(browser, rp).status_code == 200
    claims = rp.last.id_token_claims
    assert claims is not None and rp.secret is not None
    return (rp.client_id, rp.secret), claims["sub"], account_of(fed, claims["sid"])


def test_a_paused_stream_gets_the_events_it_held_once_it_is_enabled(fed: Federation) -> None:
    with relying_party(fed, "ssf-paused") as rp, Browser() as browser, SsfReceiver().start() as receiver:
        app, sub, _ = signed_in(fed, rp, browser)
        stream_id = new_stream(fed, app, receiver.url, [REVOKED])["stream_id"]
        set_status(fed, app, stream_id, "paused")
        # no verification event for a paused stream (SSF 1.0 §8.1.4.2): nothing is held for it either
        assert call(fed, "POST", "/ssf/verify", app, json={"stream_id": stream_id}).status_code == 409

        sessions = browser.get(f"{fed.url}/account/sessions")
        assert browser.submit(sessions).status_code == 200  # "Sign out everywhere": session-revoked
        held = queued_for(fed, stream_id, HELD)  # one per session of the account that was still live
        assert held
        deliver(fed)
        assert receiver.pushed == [], "a paused stream gets nothing"
        assert queued_for(fed, stream_id, HELD) == held

        set_status(fed, app, stream_id, "enabled")
        assert queued_for(fed, stream_id, HELD) == []
        deliver(fed)
        deliver(fed)  # and only once
    metadata, jwks = published(fed)
    jtis = [m.message.jti for m in held]
    for pushed in receiver.pushed:
        claims = validate_set(pushed.body, jwks, metadata["issuer"], "ssf-paused")
        assert set(claims["events"]) == {REVOKED}
        assert claims["sub_id"] == {"format": "iss_sub", "iss": metadata["issuer"], "sub": sub}
    assert [validate_set(p.body, jwks, metadata["issuer"], "ssf-paused")["jti"] for p in receiver.pushed] == jtis
    assert [m.message.jti for m in queued_for(fed, stream_id, DELIVERED)] == jtis


@pytest.mark.parametrize("end", ["disabled", "deleted"])
def test_disabling_or_deleting_a_paused_stream_drops_what_it_held(fed: Federation, end: str) -> None:
    client_id = f"ssf-dropped-{end}"
    with relying_party(fed, client_id) as rp, Browser() as browser, SsfReceiver().start() as receiver:
        app, _, account_id = signed_in(fed, rp, browser)
        stream_id = new_stream(fed, app, receiver.url, [REVOKED])["stream_id"]
        set_status(fed, app, stream_id, "paused")
        transmitter(fed).emit(SecurityEvent.SESSION_REVOKED, account_id, datetime.now(UTC))
        assert len(queued_for(fed, stream_id, HELD)) == 1

        if end == "disabled":
            set_status(fed, app, stream_id, "disabled")
            transmitter(fed).emit(SecurityEvent.SESSION_REVOKED, account_id, datetime.now(UTC))  # not held
            set_status(fed, app, stream_id, "enabled")  # what was dropped does not come back
        else:
            assert call(fed, "DELETE", "/ssf/streams", app, params={"stream_id": stream_id}).status_code == 204
        deliver(fed)
    assert receiver.pushed == []
    assert [queued_for(fed, stream_id, state) for state in (HELD, PENDING, DELIVERED)] == [[], [], []]


def test_a_paused_stream_holds_a_bounded_number_of_events(fed: Federation, monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    """Beyond ``MAX_HELD_PER_STREAM`` a new event is not held: the first ones are kept, the rest logged and
    counted."""
    monkeypatch.setattr(transmitter_module, "MAX_HELD_PER_STREAM", 2)
    with relying_party(fed, "ssf-bounded") as rp, Browser() as browser, SsfReceiver().start() as receiver:
        app, _, account_id = signed_in(fed, rp, browser)
        stream_id = new_stream(fed, app, receiver.url, [REVOKED])["stream_id"]
        set_status(fed, app, stream_id, "paused")
        ssf = transmitter(fed)
        held: list[int] = []
        with caplog.at_level(logging.WARNING, logger=transmitter_module.__name__):
            for _ in range(4):
                ssf.emit(SecurityEvent.SESSION_REVOKED, account_id, datetime.now(UTC))
                held.append(len(queued_for(fed, stream_id, HELD)))
        assert held == [1, 2, 2, 2]
        jtis = [m.message.jti for m in queued_for(fed, stream_id, HELD)]
        assert ssf.not_held[stream_id] == 2
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and stream_id in
                    r.getMessage()]
        assert len(warnings) == 2 and "not held" in warnings[-1]

        set_status(fed, app, stream_id, "enabled")
        deliver(fed)
    metadata, jwks = published(fed)
    assert [validate_set(p.body, jwks, metadata["issuer"], "ssf-bounded")["jti"] for p in receiver.pushed] == jtis
