"""Registering a passkey for an account that does not exist yet (``SqlPasskeys.verify_registration`` then
``add``; sign-up with a passkey alone, ``broker.journeys.passkey_signup``; issue 17), against a software
authenticator: verification stores nothing, so a refused answer leaves no row; the verified passkey is stored for
the account created after it and signs that account in without an allow list (WebAuthn Level 3 §6.1)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select

from broker.core.model import UpstreamIdentity
from broker.storage import SqlAccountStore, SqlPasskeys
from broker.storage.sealing import Sealer
from broker.storage.tables import AuthenticatorRow, PasskeyRow
from tests.peers.soft_authenticator import SoftAuthenticator

SEALER = Sealer([secrets.token_bytes(32)])
#: the tests' own clock: now, to the minute (no test depends on a date)
NOW = datetime.now(UTC).replace(second=0, microsecond=0)
RP_ID = "broker.example.org"
ORIGIN = "https://broker.example.org"


@pytest.fixture
def store(engine: Engine) -> SqlPasskeys:
    return SqlPasskeys(engine, RP_ID, "Example broker", ORIGIN)


def _rows(engine: Engine) -> tuple[int, int]:
    with engine.connect() as connection:
        return (int(connection.scalar(select(func.count()).select_from(AuthenticatorRow)) or 0),
                int(connection.scalar(select(func.count()).select_from(PasskeyRow)) or 0))


def test_a_verified_registration_is_stored_only_when_added_for_the_new_account(
        engine: Engine, store: SqlPasskeys, make_identity: Callable[..., UpstreamIdentity]) -> None:
    device = SoftAuthenticator(synced=True)
    challenge = store.registration_options("prospective-subject", "City sign-in", NOW)

    new = store.verify_registration("prospective-subject", device.create(challenge.options_json, ORIGIN),
                                    challenge.state, NOW)

    assert _rows(engine) == (0, 0) and new.synced and new.amr == ("swk", "user")
    account, _ = SqlAccountStore(engine, SEALER).create_with_identity(make_identity(subject="s-new"), NOW)
    added = store.add(account.account_id, "Passkey", new, NOW)
    assert _rows(engine) == (1, 1) and added.account_id == account.account_id
    sign_in = store.authentication_options(None, NOW + timedelta(minutes=1))
    use = store.authenticate(device.get(sign_in.options_json, ORIGIN), sign_in.state, NOW + timedelta(minutes=1))
    assert use.account_id == account.account_id and use.user_verified


def test_a_refused_registration_stores_nothing(engine: Engine, store: SqlPasskeys) -> None:
    challenge = store.registration_options("prospective-subject", "City sign-in", NOW)
    device = SoftAuthenticator()
    for answer, state in ((device.create(challenge.options_json, ORIGIN, user_verified=False), challenge.state),
                          (device.create(challenge.options_json, "https://evil.example"), challenge.state),
                          (device.create(challenge.options_json, ORIGIN), challenge.state.replace("e", "f", 1)),
                          ("{}", challenge.state)):
        with pytest.raises(ValueError):
            store.verify_registration("prospective-subject", answer, state, NOW)
    with pytest.raises(ValueError):  # a state made for another prospective account
        store.verify_registration("another-subject", device.create(challenge.options_json, ORIGIN),
                                  challenge.state, NOW)
    assert _rows(engine) == (0, 0)


def test_adding_for_an_account_that_does_not_exist_is_refused(engine: Engine, store: SqlPasskeys) -> None:
    challenge = store.registration_options("prospective-subject", "City sign-in", NOW)
    new = store.verify_registration("prospective-subject",
                                    SoftAuthenticator().create(challenge.options_json, ORIGIN), challenge.state, NOW)
    with pytest.raises(ValueError):
        store.add("no-such-account", "Passkey", new, NOW)
    assert _rows(engine) == (0, 0)
