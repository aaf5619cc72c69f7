"""``broker.core.sessions``: when an SSO session may answer a login without going upstream."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from broker.core.model import Protocol
from broker.core.sessions import Participant, SsoSession, new_session, satisfies, still_signed_in
from tests.core.builders import NOW, party, request

SESSION = SsoSession(
    account_id="acc-1",
    upstream="digid",
    acr="loa2",
    auth_time=NOW - timedelta(minutes=10),
    expires_at=NOW + timedelta(hours=1),
    sid="sid-1",
)

CASES: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any], bool]] = [
    # (case, session changes, request changes, satisfies() argument changes, expected)
    ("happy path", {}, {}, {}, True),
    ("expires exactly now", {"expires_at": NOW}, {}, {}, False),
    ("expired", {"expires_at": NOW - timedelta(seconds=1)}, {}, {}, False),
    ("force_authn", {}, {"force_authn": True}, {}, False),
    ("older than max_age", {}, {"max_age": 300}, {}, False),
    ("exactly max_age old", {}, {"max_age": 600}, {}, True),
    ("younger than max_age", {}, {"max_age": 3600}, {}, True),
    ("max_age zero", {}, {"max_age": 0}, {}, False),
    ("upstream not allowed by party", {}, {}, {"party": party(allowed_upstreams=("itsme",))}, False),
    ("party allows every upstream", {}, {}, {"party": party(allowed_upstreams=())}, True),
    ("hint names another upstream", {}, {"upstream_hints": ("itsme",)}, {}, False),
    ("hint names this upstream", {}, {"upstream_hints": ("itsme", "digid")}, {}, True),
    ("acr not accepted", {}, {"acr_values": ("loa3",)}, {}, False),
    ("no acr reached, one required", {"acr": None}, {"acr_values": ("loa2",)}, {}, False),
    ("acr among accepted", {}, {"acr_values": ("loa3", "loa2")}, {}, True),
    ("no acr reached, none required", {"acr": None}, {}, {}, True),
]


@pytest.mark.parametrize(("session_changes", "request_changes", "kwargs", "expected"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_satisfies(session_changes: dict[str, Any], request_changes: dict[str, Any], kwargs: dict[str, Any],
                   expected: bool) -> None:
    arguments: dict[str, Any] = {"party": party()} | kwargs
    session = replace(SESSION, **session_changes)
    assert satisfies(session, request(**request_changes), arguments["party"], NOW) is expected


def test_no_session_satisfies_nothing() -> None:
    assert satisfies(None, request(), party(), NOW) is False
    assert still_signed_in(None, request(), party(), NOW) is False


@pytest.mark.parametrize(("case", "session_changes", "request_changes", "kwargs", "expected"), CASES,
                         ids=[c[0] for c in CASES])
def test_still_signed_in_is_every_rule_but_the_level(case: str, session_changes: dict[str, Any],
                                                     request_changes: dict[str, Any], kwargs: dict[str, Any],
                                                     expected: bool) -> None:
    """What a second factor may still raise (``journeys.step_up``): only the acr cases differ from ``satisfies``."""
    arguments: dict[str, Any] = {"party": party()} | kwargs
    session = replace(SESSION, **session_changes)
    level_only = case.startswith(("acr not", "no acr reached, one"))
    assert still_signed_in(session, request(**request_changes), arguments["party"], NOW) is (expected or level_only)


PARTICIPANTS = (
    Participant("https://sp.city.example/", Protocol.SAML, "pairwise-1"),
    Participant("portal-client", Protocol.OIDC, "pairwise-2"),
)


@pytest.mark.parametrize(
    "session",
    [
        replace(SESSION, participants=PARTICIPANTS),
        replace(SESSION, acr=None),
        replace(SESSION, amr=("fed", "swk", "user", "mfa"), factor_at=NOW - timedelta(minutes=2)),
        replace(SESSION, auth_time=datetime(2024, 6, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))),
    ],
)
def test_json_round_trip(session: SsoSession) -> None:
    back = SsoSession.from_json(session.to_json())
    assert back == session
    assert back.auth_time.utcoffset() == session.auth_time.utcoffset()
    assert back.expires_at.tzinfo is not None


def test_a_session_stored_before_sids_gets_one() -> None:
    raw = json.loads(SESSION.to_json())
    del raw["sid"]
    back = SsoSession.from_json(json.dumps(raw))
    assert back.sid and back.sid != SESSION.sid
    assert replace(back, sid=SESSION.sid) == SESSION


def test_a_new_session_records_a_factor_given_now_only_with_mfa() -> None:
    assert new_session("acc-1", "op", None, NOW, NOW, timedelta(hours=1), amr=("pwd",)).factor_at is None
    assert new_session("acc-1", "op", None, NOW, NOW, timedelta(hours=1), amr=("otp", "mfa")).factor_at == NOW


def test_a_session_stored_before_amr_has_none() -> None:
    raw = json.loads(replace(SESSION, amr=("otp", "mfa"), factor_at=NOW).to_json())
    del raw["amr"], raw["factor_at"]
    assert SsoSession.from_json(json.dumps(raw)) == SESSION


def test_with_participant_adds_once_and_keeps_order() -> None:
    first, second = PARTICIPANTS
    one = SESSION.with_participant(first)
    assert one.participants == (first,)
    assert SESSION.participants == ()  # the original is unchanged
    assert one.with_participant(Participant(first.party_id, first.protocol, first.subject)) is one
    both = one.with_participant(second).with_participant(first)
    assert both.participants == (first, second)
    other_subject = both.with_participant(replace(first, subject="pairwise-3"))
    assert len(other_subject.participants) == 3


def test_new_session_expires_after_its_lifetime() -> None:
    session = new_session("acc-1", "digid", "loa2", NOW - timedelta(minutes=1), NOW, timedelta(hours=8))
    assert session == SsoSession("acc-1", "digid", "loa2", NOW - timedelta(minutes=1), NOW + timedelta(hours=8),
                                 sid=session.sid)
    assert len(session.sid) >= 22  # 128 random bits: the OIDC sid must not be guessable
    assert new_session("acc-1", "digid", None, NOW, NOW, timedelta(hours=1)).sid != session.sid
    assert satisfies(session, request(), party(), NOW + timedelta(hours=8) - timedelta(seconds=1))
    assert not satisfies(session, request(), party(), NOW + timedelta(hours=8))
    assert session.expires_at.tzinfo is UTC
