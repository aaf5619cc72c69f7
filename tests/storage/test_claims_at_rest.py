"""Stored claim values are not readable in the database without the key; rotating the key keeps old values
readable; ``broker keys rotate-claims`` re-seals them so the old key can go. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, make_url, select, update

from broker.app import close_app, create_app
from broker.cli.main import main
from broker.config.settings import load_settings
from broker.core.audit import AuditKind
from broker.core.model import UpstreamIdentity
from broker.storage import SqlAccountStore, SqlAuditLog, create_engine_for
from broker.storage.claims_rotation import PLAIN, ClaimsKeyError, check_claims_keys
from broker.storage.sealing import Sealer, key_id
from broker.storage.tables import LinkedIdentityRow
from tests.storage.rotation_support import clean_environment, instance, rotate, write_keys  # noqa: F401

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
ANNA = {"email": "anna@example.org", "given_name": "Anna"}
K1, K2, K3 = (secrets.token_bytes(32) for _ in range(3))

Identity = Callable[..., UpstreamIdentity]


def _raw_values(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.scalars(select(LinkedIdentityRow.last_claims).order_by(LinkedIdentityRow.id)))


def _database_bytes(engine: Engine) -> bytes:
    """Every byte SQLite keeps on disk for the database: the file and its write-ahead log."""
    path = make_url(engine.url).database
    assert path
    return b"".join(Path(path + suffix).read_bytes() for suffix in ("", "-wal") if Path(path + suffix).exists())


def _login(store: SqlAccountStore, identity: UpstreamIdentity) -> str:
    """What a login does to the store: find or create the account, then record this use with the claims."""
    found = store.find_by_identity(identity.issuer, identity.subject)
    account = found or store.create_with_identity(identity, NOW)[0]
    store.record_use(account.account_id, identity, NOW + timedelta(minutes=1))
    return account.account_id


def test_stored_claim_values_are_not_readable_without_the_key(engine: Engine, make_identity: Identity) -> None:
    store = SqlAccountStore(engine, Sealer([K1]))

    account_id = _login(store, make_identity(claims=ANNA))
    _login(store, make_identity(claims=ANNA))  # a second login rewrites the value

    [raw] = _raw_values(engine)
    assert raw.startswith(f"v1.{key_id(K1)}.")
    assert "anna@example.org" not in raw and "Anna" not in raw
    if engine.dialect.name == "sqlite":
        on_disk = _database_bytes(engine)
        assert b"subject-1" in on_disk  # the file read is the one holding the rows
        assert b"anna@example.org" not in on_disk and b"Anna" not in on_disk
    assert store.last_claims(account_id) == ANNA  # through the store, with the key


def test_rotating_the_key_keeps_old_values_readable(engine: Engine, make_identity: Identity) -> None:
    account_id = _login(SqlAccountStore(engine, Sealer([K1])), make_identity(claims=ANNA))
    rotated = SqlAccountStore(engine, Sealer([K2, K1]))

    assert rotated.last_claims(account_id) == ANNA  # sealed under K1, opened by the ring's previous key

    _login(rotated, make_identity(claims={**ANNA, "locale": "nl"}))  # re-sealed on write, under K2
    [raw] = _raw_values(engine)
    assert raw.startswith(f"v1.{key_id(K2)}.")
    assert SqlAccountStore(engine, Sealer([K2])).last_claims(account_id) == {**ANNA, "locale": "nl"}


def test_legacy_plain_values_are_read_and_sealed_on_the_next_write(engine: Engine, make_identity: Identity) -> None:
    store = SqlAccountStore(engine, Sealer([K1]))
    account_id = _login(store, make_identity(claims={"email": "placeholder@example.org"}))
    with engine.begin() as connection:  # as the broker stored it before sealing existed
        connection.execute(update(LinkedIdentityRow).values(last_claims=json.dumps(ANNA, sort_keys=True)))

    assert store.last_claims(account_id) == ANNA

    _login(store, make_identity(claims=ANNA))
    [raw] = _raw_values(engine)
    assert raw.startswith(f"v1.{key_id(K1)}.") and "anna@example.org" not in raw
    assert store.last_claims(account_id) == ANNA


def test_a_wrong_key_reads_no_claims_logs_why_and_the_next_login_refills(
    engine: Engine, make_identity: Identity, caplog: pytest.LogCaptureFixture,
) -> None:
    account_id = _login(SqlAccountStore(engine, Sealer([K1])), make_identity(claims=ANNA))
    wrong = SqlAccountStore(engine, Sealer([K2]))

    with caplog.at_level(logging.WARNING, logger="broker.security"):
        assert wrong.last_claims(account_id) == {}  # never an exception in the middle of a login

    [record] = caplog.records
    assert record.name == "broker.security"
    assert f"sealed under key {key_id(K1)}" in record.getMessage()
    assert "anna" not in caplog.text.lower()
    _login(wrong, make_identity(claims={"email": "anna@example.org"}))  # the upstream's claims of today
    assert wrong.last_claims(account_id) == {"email": "anna@example.org"}


def test_a_changed_or_moved_value_reads_as_no_claims(
    engine: Engine, make_identity: Identity, caplog: pytest.LogCaptureFixture,
) -> None:
    store = SqlAccountStore(engine, Sealer([K1]))
    anna = _login(store, make_identity(subject="anna", claims=ANNA))
    bert = _login(store, make_identity(subject="bert", claims={"email": "bert@example.org"}))
    anna_raw, bert_raw = _raw_values(engine)

    with engine.begin() as connection:  # Anna's sealed value copied over Bert's
        connection.execute(update(LinkedIdentityRow).where(LinkedIdentityRow.subject == "bert")
                           .values(last_claims=anna_raw))
    with caplog.at_level(logging.WARNING, logger="broker.security"):
        assert store.last_claims(bert) == {}
    assert store.last_claims(anna) == ANNA

    flipped = anna_raw[:-5] + ("A" if anna_raw[-5] != "A" else "B") + anna_raw[-4:]
    with engine.begin() as connection:
        connection.execute(update(LinkedIdentityRow).where(LinkedIdentityRow.subject == "anna")
                           .values(last_claims=flipped))
    with caplog.at_level(logging.WARNING, logger="broker.security"):
        assert store.last_claims(anna) == {}
    assert [r.getMessage().count("fails authentication") for r in caplog.records] == [1, 1]
    assert bert_raw != anna_raw


def test_the_start_up_check_refuses_keys_that_do_not_open_the_newest_value(
    engine: Engine, make_identity: Identity,
) -> None:
    check_claims_keys(engine, Sealer([K2]))  # an empty database: nothing to check
    _login(SqlAccountStore(engine, Sealer([K1])), make_identity(claims=ANNA))

    with pytest.raises(ClaimsKeyError) as refused:
        check_claims_keys(engine, Sealer([K2]))

    message = str(refused.value)
    assert f"sealed under key {key_id(K1)}" in message and f"key ids {key_id(K2)}" in message
    assert "claims_previous_keys_file" in message and "--forget-unreadable" in message
    check_claims_keys(engine, Sealer([K2, K1]))  # with the old key among the previous ones: fine


# -- the instance, the command and the app ----------------------------------------------------------------------


def test_rotate_claims_reseals_every_value_so_the_old_key_can_go(
    database_url: str, tmp_path: Path, make_identity: Identity, capsys: pytest.CaptureFixture[str],
) -> None:
    config = instance(tmp_path, database_url)
    engine = create_engine_for(database_url)
    try:
        old = SqlAccountStore(engine, Sealer([K1]))
        accounts = [_login(old, make_identity(subject=f"citizen-{n}", claims={**ANNA, "locale": f"l{n}"}))
                    for n in range(5)]
        with engine.begin() as connection:  # and one value from before sealing existed
            connection.execute(insert(LinkedIdentityRow).values(
                account_id=accounts[0], issuer="https://legacy.example.org", subject="old", upstream="legacy",
                first_used=NOW, last_used=NOW - timedelta(days=1), last_acr=None, last_claims=json.dumps(ANNA)))
        write_keys(config.parent, K2, K1)  # the operator's rotation: new key, old one among the previous

        code, report = rotate(config, capsys)

        assert code == 0
        assert report["current_key_id"] == key_id(K2)
        assert (report["resealed"], report["already_current"], report["unreadable"]) == (6, 0, 0)
        assert report["by_key"] == {key_id(K2): 6}
        assert all(raw.startswith(f"v1.{key_id(K2)}.") and "anna" not in raw.lower() for raw in _raw_values(engine))

        code, again = rotate(config, capsys)  # idempotent
        assert (code, again["resealed"], again["already_current"]) == (0, 0, 6)
        rotations = SqlAuditLog(engine).events(limit=10)
        assert [e.kind for e in rotations].count(AuditKind.KEY_ROTATED.value) == 2  # each run is an audit event
        assert SqlAuditLog(engine).verify() is None

        write_keys(config.parent, K2)  # the old key removed
        new = SqlAccountStore(engine, Sealer(load_settings(config, {}).claims_keys))
        assert [new.last_claims(a)["locale"] for a in accounts] == [f"l{n}" for n in range(5)]
    finally:
        engine.dispose()


def test_rotate_claims_reports_values_no_key_opens_and_can_forget_them(
    database_url: str, tmp_path: Path, make_identity: Identity, capsys: pytest.CaptureFixture[str],
) -> None:
    config = instance(tmp_path, database_url)
    engine = create_engine_for(database_url)
    try:
        lost = _login(SqlAccountStore(engine, Sealer([K3])), make_identity(subject="lost", claims=ANNA))
        kept = _login(SqlAccountStore(engine, Sealer([K1])), make_identity(subject="kept", claims=ANNA))
        write_keys(config.parent, K2, K1)

        code, report = rotate(config, capsys)
        assert code == 1  # K3's value is still there: the old keys must not be dropped blindly
        assert (report["resealed"], report["unreadable"], report["forgotten"]) == (1, 1, 0)
        assert report["by_key"] == {key_id(K2): 1, key_id(K3): 1}

        code, report = rotate(config, capsys, "--forget-unreadable")
        assert code == 0
        assert (report["resealed"], report["already_current"], report["forgotten"]) == (0, 1, 1)
        assert report["by_key"] == {key_id(K2): 2}
        store = SqlAccountStore(engine, Sealer([K2]))
        assert (store.last_claims(lost), store.last_claims(kept)) == ({}, ANNA)
    finally:
        engine.dispose()


def test_rotate_claims_counts_legacy_values_as_plain(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    config = instance(tmp_path, database_url)
    engine = create_engine_for(database_url)
    try:
        account = SqlAccountStore(engine, Sealer([K1])).create_with_identity(
            UpstreamIdentity(upstream="u", issuer="https://idp.example.org", subject="s", claims={}, acr=None,
                             auth_time=NOW), NOW)[0]
        with engine.begin() as connection:
            connection.execute(update(LinkedIdentityRow).values(last_claims="{not json"))  # broken legacy text

        code, report = rotate(config, capsys)

        assert code == 1 and report["unreadable"] == 1 and report["by_key"] == {PLAIN: 1}
        assert SqlAccountStore(engine, Sealer([K1])).last_claims(account.account_id) == {}  # read as none
    finally:
        engine.dispose()


def test_the_app_refuses_to_start_with_a_claims_key_that_opens_nothing_stored(
    database_url: str, tmp_path: Path, make_identity: Identity,
) -> None:
    config = instance(tmp_path, database_url)
    first_key = load_settings(config, {}).claims_keys[0]
    engine = create_engine_for(database_url)
    try:
        _login(SqlAccountStore(engine, Sealer([first_key])), make_identity(claims=ANNA))
    finally:
        engine.dispose()
    write_keys(config.parent, K2)  # the key replaced, the old one not kept

    with pytest.raises(ClaimsKeyError, match=f"sealed under key {key_id(first_key)}"):
        create_app(load_settings(config, {}))

    write_keys(config.parent, K2, first_key)
    app = create_app(load_settings(config, {}))
    try:
        assert app.extensions["broker"].accounts.last_claims is not None
    finally:
        close_app(app)


def test_generate_claims_key_writes_a_private_hex_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "certs" / "claims.key"

    assert main(["keys", "generate-claims-key", str(path)]) == 0  # needs no configuration

    assert capsys.readouterr().out == f"created {path}\n"
    assert path.stat().st_mode & 0o777 == 0o600
    text = path.read_text().strip()
    assert len(bytes.fromhex(text)) == 32
    assert main(["keys", "generate-claims-key", str(path)]) == 1
    assert "already exists; use --force" in capsys.readouterr().err
    assert path.read_text().strip() == text
    assert main(["keys", "generate-claims-key", "--force", str(path)]) == 0
    assert path.read_text().strip() != text
