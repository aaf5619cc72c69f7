"""Property-based tests of the JSON decoders of the broker's own pending state: ``LoginRequest.from_json`` (a
pending login, stored server-side), ``SsoSession.from_json`` (the SSO session, in the server-side browser
session) and ``PendingAuthorization.from_json`` (an upstream authorization on its way).

Only the broker writes these texts, so what they must survive is a stored value that is not what the running
code writes: a damaged row, or a deploy that changes a format while logins are in flight. What each raises:

- ``LoginRequest.from_json``: ``ValueError`` (not JSON, unknown protocol, a ``protocol_state`` pair that is not
  two items), ``KeyError`` (a member missing), ``TypeError`` (not an object, an unhashable claim name),
  ``RecursionError`` (deeply nested JSON); member types are not checked (``"downstream": 5`` is taken).
  Its callers ``login._pending_login`` and ``login.oidc_callback`` catch none of these: a 500.
- ``SsoSession.from_json``: the same, plus ``IndexError`` (a participant with fewer than three items); times
  without a time zone are taken. Its caller ``login.current_sso`` catches ``ValueError``, ``KeyError`` and
  ``TypeError``; ``begin`` then compares the session's times with an aware ``now``.
- ``PendingAuthorization.from_json``: ``LoginStateInvalid`` (its documented contract), and ``RecursionError``.

Every decoder round-trips what its ``to_json`` writes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask, session
from hypothesis import event, example, given
from hypothesis import strategies as st

from broker.core import errors, sessions
from broker.core.model import DownstreamParty, LoginRequest, Protocol
from broker.core.sessions import Participant, SsoSession
from broker.upstream.oidc_settings import PendingAuthorization
from broker.web.http.browser_state import current_sso
from tests.security.fuzz_support import deep_nesting, fuzz_settings, json_text, json_values, junk_text

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)

# -- strategies: real values, their JSON, and that JSON damaged ------------------------------------------------

texts = junk_text(30)
login_requests = st.builds(
    LoginRequest, downstream=texts, protocol=st.sampled_from(Protocol), return_to=texts,
    request_id=st.none() | texts, relay_state=st.none() | texts, requested_claims=st.frozensets(texts, max_size=3),
    acr_values=st.lists(texts, max_size=3).map(tuple), force_authn=st.booleans(), passive=st.booleans(),
    upstream_hints=st.lists(texts, max_size=3).map(tuple),
    protocol_state=st.lists(st.tuples(texts, texts), max_size=3).map(tuple),
)
aware_times = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC))
sso_sessions = st.builds(
    SsoSession, account_id=texts, upstream=texts, acr=st.none() | texts, auth_time=aware_times, expires_at=aware_times,
    participants=st.lists(st.builds(Participant, texts, st.sampled_from(Protocol), texts), max_size=3).map(tuple),
)
pending_authorizations = st.builds(
    PendingAuthorization, upstream=texts, state=texts, nonce=texts, code_verifier=texts, redirect_uri=texts,
    created_at=aware_times,
)


@st.composite
def _damaged(draw: st.DrawFn, valid: st.SearchStrategy[Any]) -> str:
    """The JSON of a real value with members removed or replaced by anything JSON holds, or not that at all."""
    raw = json.loads(draw(valid).to_json())
    for key in draw(st.lists(st.sampled_from(sorted(raw)), max_size=2, unique=True)):
        del raw[key]
    replacement = json_values(5) | st.sampled_from(("2026-01-01T00:00:00", "2026-01-01", "saml", "oidc", [[]], [["a"]],
                                                    ["ab"], [[1, 2, 3]], [["a", "saml"]], [{}], "")) | json_text(20)
    raw.update(draw(st.dictionaries(st.sampled_from(sorted(raw) or ["x"]) | json_text(8), replacement, max_size=3)))
    return json.dumps(raw)


def _documents(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[str]:
    return _damaged(valid) | st.one_of(json_values(8).map(json.dumps), junk_text(), deep_nesting())


# -- LoginRequest ------------------------------------------------------------------------------------------


@fuzz_settings(100)
@given(login=login_requests)
def test_login_request_round_trips(login: LoginRequest) -> None:
    assert LoginRequest.from_json(login.to_json()) == login


@fuzz_settings(150)
@given(text=_documents(login_requests))
@example(text='{"downstream": 5}')
def test_login_request_from_json_raises_only_what_its_doc_says(text: str) -> None:
    try:
        login = LoginRequest.from_json(text)
    except (ValueError, KeyError, TypeError, RecursionError) as refused:
        event(f"raises {type(refused).__name__}")
        return
    event("decoded")
    assert isinstance(login, LoginRequest)


@pytest.mark.parametrize("text", ["", "[]", '{"downstream": "x"}', json.dumps({
    "downstream": "x", "protocol": "ws-fed", "return_to": "x", "request_id": None, "relay_state": None,
    "requested_claims": [], "acr_values": [], "force_authn": False, "passive": False, "upstream_hints": [],
    "protocol_state": []})], ids=["empty", "array", "members-missing", "unknown-protocol"])
def test_login_request_decoding_fails_with_one_error_type(text: str) -> None:
    """Its callers (login._pending_login, login.oidc_callback) turn this ValueError into LoginStateInvalid."""
    with pytest.raises(ValueError, match=r"not a stored login request|Expecting value|must be text|is not a valid"):
        LoginRequest.from_json(text)


# -- SsoSession and its caller -----------------------------------------------------------------------------


@fuzz_settings(100)
@given(sso=sso_sessions)
def test_sso_session_round_trips(sso: SsoSession) -> None:
    assert SsoSession.from_json(sso.to_json()) == sso


@fuzz_settings(150)
@given(text=_documents(sso_sessions))
def test_sso_session_from_json_raises_only_what_its_doc_says(text: str) -> None:
    try:
        sso = SsoSession.from_json(text)
    except (ValueError, KeyError, TypeError, IndexError, RecursionError) as refused:
        event(f"raises {type(refused).__name__}")
        return
    event("decoded")
    assert isinstance(sso, SsoSession)


_app = Flask("fuzz-sessions")
_app.secret_key = "fuzz"
_PARTY = DownstreamParty("http://127.0.0.1:9/sp", Protocol.SAML, "SP", frozenset())
_REQUEST = LoginRequest("http://127.0.0.1:9/sp", Protocol.SAML, "http://127.0.0.1:9/sp/acs", "id-1", None,
                        frozenset(), upstream_hints=("op",), acr_values=("urn:example:loa",), max_age=3600)


def _begin_with(stored: object) -> bool:
    """What ``login.begin`` does with the browser session's ``sso`` value: ``current_sso``, then ``satisfies``."""
    with _app.test_request_context("/"):
        session["sso"] = stored
        sso = current_sso()
        return sso is not None and sessions.satisfies(sso, _REQUEST, _PARTY, NOW)


#: crashes of the caller found here, pinned by test_a_damaged_sso_session_is_dropped; tolerated in the fuzz test
#: until fixed (remove an entry when that test passes)
#: crashes found and fixed (SsoSession.from_json raises only ValueError); empty so a new one fails
KNOWN_SSO_CRASHES: tuple[type[BaseException], ...] = ()


@fuzz_settings(150)
@given(text=_documents(sso_sessions))
def test_a_stored_sso_session_is_used_or_dropped(text: str) -> None:
    try:
        used = _begin_with(text)
    except KNOWN_SSO_CRASHES as crash:
        event(f"known crash: {type(crash).__name__}")
        return
    event(f"used: {used}")


@pytest.mark.parametrize("change", [
    {"participants": [["only-one"]]},
    {"expires_at": "2030-01-01T00:00:00"},
    {"auth_time": "2000-01-01T00:00:00"},
    None,
], ids=["short-participant", "naive-expires_at", "naive-auth_time", "deeply-nested"])
def test_a_damaged_sso_session_is_dropped(change: dict[str, object] | None) -> None:
    good = SsoSession("acct", "op", "urn:example:loa", NOW - timedelta(minutes=5), NOW + timedelta(hours=1))
    text = json.dumps({**json.loads(good.to_json()), **change}) if change is not None else "[" * 100_000
    assert _begin_with(good.to_json()) is True
    assert _begin_with(text) is False


# -- PendingAuthorization --------------------------------------------------------------------------------------


@fuzz_settings(100)
@given(pending=pending_authorizations)
def test_pending_authorization_round_trips(pending: PendingAuthorization) -> None:
    assert PendingAuthorization.from_json(pending.to_json()) == pending


@fuzz_settings(150)
@given(text=_documents(pending_authorizations))
@example(text="[" * 100_000)
def test_pending_authorization_from_json_raises_login_state_invalid(text: str) -> None:
    try:
        pending = PendingAuthorization.from_json(text)
    except errors.LoginStateInvalid:
        event("LoginStateInvalid")
        return
    except RecursionError:  # known: test_deeply_nested_pending_authorization_is_login_state_invalid
        event("known crash: RecursionError")
        return
    assert all(isinstance(getattr(pending, f), str) for f in ("upstream", "state", "nonce", "code_verifier",
                                                              "redirect_uri"))
    assert pending.created_at.tzinfo is not None


def test_deeply_nested_pending_authorization_is_login_state_invalid() -> None:
    with pytest.raises(errors.LoginStateInvalid):
        PendingAuthorization.from_json("[" * 100_000)
