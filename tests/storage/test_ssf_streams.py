"""Shared Signals event streams in SQL (``SqlSsfStreams``), on SQLite and PostgreSQL: streams per client, the
receiver's authorization header sealed at rest and bound to its row, the enabled streams that deliver an event,
and one verification per interval even when asked twice at once."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select, update

from broker.core.ssf_streams import SsfStream, StreamStatus
from broker.storage.delivery_tables import SsfStreamRow
from broker.storage.sealing import Sealer
from broker.storage.ssf_streams import SqlSsfStreams

NOW = datetime.now(UTC).replace(microsecond=0)
SEALER = Sealer([secrets.token_bytes(32)])
REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
PURGED = "https://schemas.openid.net/secevent/risc/event-type/account-purged"


def stream(stream_id: str, client_id: str = "permits", *, status: StreamStatus = StreamStatus.ENABLED,
           events: tuple[str, ...] = (REVOKED,), header: str | None = "Bearer receiver-secret") -> SsfStream:
    return SsfStream(stream_id, client_id, (*events, "urn:example:unsupported"), events,
                     f"https://{client_id}.example/ssf", status, NOW, NOW, header, "the permits app")


def test_a_stream_reads_back_as_written(engine: Engine) -> None:
    store = SqlSsfStreams(engine, SEALER)
    assert store.add(stream("s1"), limit=3)
    assert store.get("s1") == stream("s1")
    assert store.get("nope") is None
    assert [s.stream_id for s in store.of_client("permits")] == ["s1"]
    assert store.of_client("library") == []


def test_the_authorization_header_is_sealed_and_bound_to_its_row(engine: Engine) -> None:
    store = SqlSsfStreams(engine, SEALER)
    store.add(stream("s1"), limit=3)
    store.add(stream("s2", "library", header=None), limit=3)
    with engine.connect() as connection:
        stored = connection.execute(select(SsfStreamRow.authorization_header)
                                    .where(SsfStreamRow.stream_id == "s1")).scalar_one()
        assert stored is not None and "receiver-secret" not in stored
    with engine.begin() as connection:  # copied into another stream's row: it does not open there
        connection.execute(update(SsfStreamRow).where(SsfStreamRow.stream_id == "s2")
                           .values(authorization_header=stored))
    copied = store.get("s2")
    assert copied is not None and copied.authorization_header is None


def test_a_client_has_at_most_the_limit_of_streams(engine: Engine) -> None:
    store = SqlSsfStreams(engine, SEALER)
    assert store.add(stream("s1"), limit=2) and store.add(stream("s2"), limit=2)
    assert not store.add(stream("s3"), limit=2)
    assert store.add(stream("s4", "library"), limit=2)
    assert store.get("s3") is None


def test_enabled_for_finds_only_enabled_streams_of_the_clients_that_deliver_the_event(engine: Engine) -> None:
    store = SqlSsfStreams(engine, SEALER)
    store.add(stream("on"), limit=9)
    store.add(stream("paused", status=StreamStatus.PAUSED), limit=9)
    store.add(stream("disabled", status=StreamStatus.DISABLED), limit=9)
    store.add(stream("other-event", events=(PURGED,)), limit=9)
    store.add(stream("other-client", "library"), limit=9)
    assert [s.stream_id for s in store.enabled_for(["permits"], REVOKED)] == ["on"]
    assert {s.stream_id for s in store.enabled_for(["permits", "library"], REVOKED)} == {"on", "other-client"}
    assert [s.stream_id for s in store.enabled_for(["permits"], PURGED)] == ["other-event"]
    assert store.enabled_for([], REVOKED) == []
    assert store.enabled_for(["permits"], "urn:example:unsupported") == []  # requested, not delivered


def test_replace_and_remove_touch_only_the_owners_stream(engine: Engine) -> None:
    store = SqlSsfStreams(engine, SEALER)
    store.add(stream("s1"), limit=3)
    later = NOW + timedelta(minutes=5)
    changed = SsfStream("s1", "permits", (PURGED,), (PURGED,), "https://permits.example/v2", StreamStatus.PAUSED,
                        NOW, later, None, None, "maintenance")
    assert store.replace(changed)
    assert store.get("s1") == changed
    assert not store.replace(SsfStream("s1", "library", (), (), "https://x.example", StreamStatus.ENABLED,
                                       NOW, later))
    assert not store.remove("s1", "library") and store.get("s1") is not None
    assert store.remove("s1", "permits") and store.get("s1") is None
    assert not store.replace(changed)


def test_one_verification_per_interval(engine: Engine) -> None:
    store = SqlSsfStreams(engine, SEALER)
    store.add(stream("s1"), limit=3)
    interval = timedelta(seconds=60)
    assert store.verification_due("s1", NOW, NOW - interval)
    assert not store.verification_due("s1", NOW + timedelta(seconds=1), NOW + timedelta(seconds=1) - interval)
    assert store.verification_due("s1", NOW + interval, NOW)
    assert not store.verification_due("gone", NOW, NOW - interval)
    verified = store.get("s1")
    assert verified is not None and verified.verified_at == NOW + interval
