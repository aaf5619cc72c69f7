"""Passkeys in SQL (``broker.storage.passkeys``; issue 17), against a software authenticator
(``tests.peers.soft_authenticator``): registration and sign-in (step-up and passwordless) verified by py_webauthn,
and every way a response must be refused (origin, RP ID, challenge, user verification, counter, owner)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import webauthn
from sqlalchemy import Engine, func, select, update

from broker.core.factors import Authenticator, FactorKind
from broker.core.model import UpstreamIdentity
from broker.storage import SqlAccountStore, SqlAuthenticators, SqlPasskeys
from broker.storage import passkeys as module
from broker.storage.sealing import Sealer
from broker.storage.tables import AuthenticatorRow, PasskeyRow
from tests.peers.soft_authenticator import SoftAuthenticator, b64url, unb64url

SEALER = Sealer([secrets.token_bytes(32)])
#: the tests' own clock: now, to the minute (no test depends on a date)
NOW = datetime.now(UTC).replace(second=0, microsecond=0)
LATER = NOW + timedelta(minutes=10)
RP_ID = "broker.example.org"
ORIGIN = "https://broker.example.org"


@pytest.fixture
def store(engine: Engine) -> SqlPasskeys:
    return SqlPasskeys(engine, RP_ID, "Example broker", ORIGIN)


def _account(engine: Engine, identity: UpstreamIdentity) -> str:
    account, _ = SqlAccountStore(engine, SEALER).create_with_identity(identity, NOW)
    return account.account_id


@pytest.fixture
def account(engine: Engine, make_identity: Callable[..., UpstreamIdentity]) -> str:
    return _account(engine, make_identity())


@pytest.fixture
def other(engine: Engine, make_identity: Callable[..., UpstreamIdentity]) -> str:
    return _account(engine, make_identity(subject="subject-2"))


def _register(store: SqlPasskeys, device: SoftAuthenticator, account: str, name: str = "laptop",
              at: datetime = NOW) -> Authenticator:
    challenge = store.registration_options(account, "anna@example.org", at)
    return store.register(account, name, device.create(challenge.options_json, ORIGIN), challenge.state, at)


def _count(engine: Engine, table: type[AuthenticatorRow] | type[PasskeyRow]) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(table)) or 0)


def _sign_count(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(select(PasskeyRow.sign_count)) or 0)


# --- registration -----------------------------------------------------------------------------------------

def test_registration_options_ask_for_a_discoverable_verified_credential(store: SqlPasskeys, account: str) -> None:
    challenge = store.registration_options(account, "anna@example.org", NOW)
    options = json.loads(challenge.options_json)
    assert options["rp"] == {"id": RP_ID, "name": "Example broker"}
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["requireResidentKey"] is True
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert options["attestation"] == "none"
    assert [p["alg"] for p in options["pubKeyCredParams"]] == [-7, -8, -257]
    assert options["excludeCredentials"] == []
    state = json.loads(challenge.state)
    assert state["challenge"] == options["challenge"] and len(unb64url(state["challenge"])) == 32
    assert state["account_id"] == account and state["ceremony"] == "create"
    handle = unb64url(options["user"]["id"])
    assert len(handle) == 32 and account.encode() not in handle and options["user"]["name"] == "anna@example.org"


def test_register_then_step_up(engine: Engine, store: SqlPasskeys, account: str) -> None:
    device = SoftAuthenticator()
    added = _register(store, device, account)
    assert added.kind is FactorKind.PASSKEY and added.account_id == account and added.name == "laptop"
    assert added.created_at == NOW and added.last_used_at is None
    assert SqlAuthenticators(engine, SEALER).of(account) == [added]

    challenge = store.authentication_options(account, LATER)
    options = json.loads(challenge.options_json)
    assert options["userVerification"] == "required" and options["rpId"] == RP_ID
    assert [item["id"] for item in options["allowCredentials"]] == [b64url(cid) for cid in device.credentials]
    use = store.authenticate(device.get(challenge.options_json, ORIGIN), challenge.state, LATER)
    assert use.account_id == account and use.user_verified is True
    assert use.synced is False and use.amr == ("hwk", "user")  # a device-bound key (no BE flag)
    assert use.authenticator.authenticator_id == added.authenticator_id and use.authenticator.last_used_at == LATER
    assert SqlAuthenticators(engine, SEALER).of(account)[0].last_used_at == LATER
    assert _sign_count(engine) == 1


def test_a_synced_passkey_is_a_software_key(store: SqlPasskeys, account: str) -> None:
    """RFC 8176 §2: a passkey copied between devices (WebAuthn §6.1.3 backup eligible) is ``swk``, not ``hwk``."""
    device = SoftAuthenticator(synced=True)
    _register(store, device, account)
    challenge = store.authentication_options(account, LATER)
    use = store.authenticate(device.get(challenge.options_json, ORIGIN), challenge.state, LATER)
    assert use.synced is True and use.amr == ("swk", "user")


def test_passwordless_sign_in_finds_the_account(store: SqlPasskeys, account: str, other: str) -> None:
    mine, theirs = SoftAuthenticator(), SoftAuthenticator()
    _register(store, mine, account)
    _register(store, theirs, other)
    challenge = store.authentication_options(None, LATER)
    assert json.loads(challenge.options_json)["allowCredentials"] == []
    assert json.loads(challenge.state)["account_id"] is None
    assert store.authenticate(theirs.get(challenge.options_json, ORIGIN), challenge.state, LATER).account_id == other
    challenge = store.authentication_options(None, LATER)
    assert store.authenticate(mine.get(challenge.options_json, ORIGIN), challenge.state, LATER).account_id == account


def test_a_second_passkey_is_excluded_and_shares_the_user_handle(store: SqlPasskeys, account: str,
                                                                 other: str) -> None:
    first, second = SoftAuthenticator(), SoftAuthenticator()
    _register(store, first, account)
    challenge = store.registration_options(account, "anna@example.org", NOW)
    options = json.loads(challenge.options_json)
    assert [item["id"] for item in options["excludeCredentials"]] == [b64url(cid) for cid in first.credentials]
    assert options["excludeCredentials"][0]["transports"] == ["internal", "hybrid"]
    [credential] = first.credentials.values()
    assert unb64url(options["user"]["id"]) == credential.user_handle
    store.register(account, "phone", second.create(challenge.options_json, ORIGIN), challenge.state, NOW)
    assert [c.user_handle for c in second.credentials.values()] == [credential.user_handle]
    other_options = json.loads(store.registration_options(other, "ben@example.org", NOW).options_json)
    assert unb64url(other_options["user"]["id"]) != credential.user_handle


def test_the_same_credential_is_enrolled_once(engine: Engine, store: SqlPasskeys, account: str, other: str) -> None:
    device = SoftAuthenticator()
    challenge = store.registration_options(account, "anna@example.org", NOW)
    response = device.create(challenge.options_json, ORIGIN)
    store.register(account, "laptop", response, challenge.state, NOW)
    with pytest.raises(ValueError, match="already enrolled"):
        store.register(account, "laptop", response, challenge.state, NOW)
    [credential_id] = device.credentials
    challenge = store.registration_options(other, "ben@example.org", NOW)
    with pytest.raises(ValueError, match="already enrolled"):
        store.register(other, "stolen", device.create(challenge.options_json, ORIGIN, reuse=credential_id),
                       challenge.state, NOW)
    assert _count(engine, PasskeyRow) == 1 and _count(engine, AuthenticatorRow) == 1


@pytest.mark.parametrize(("misbehave", "reason", "logged"), [
    ("origin", "does not verify", "Unexpected client data origin"),
    ("rp_id", "does not verify", "Unexpected RP ID hash"),
    ("no_uv", "does not verify", "User verification is required"),
    ("challenge", "does not verify", "challenge was not expected"),
    ("account", "another account", None),
    ("expired", "expired", None),
    ("name", "needs a name", None),
    ("garbage", "does not verify", "attestationObject was malformed"),
])
def test_a_registration_that_does_not_verify_is_refused(engine: Engine, store: SqlPasskeys, account: str,
                                                        other: str, misbehave: str, reason: str, logged: str | None,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    device = SoftAuthenticator()
    challenge = store.registration_options(account, "anna@example.org", NOW)
    state, at, name, owner = challenge.state, NOW, "laptop", account
    kwargs: dict[str, Any] = {}
    origin = ORIGIN
    if misbehave == "origin":
        origin = "https://broker.example.org.evil.example"
    elif misbehave == "rp_id":
        kwargs["rp_id"] = "evil.example"
    elif misbehave == "no_uv":
        kwargs["user_verified"] = False
    elif misbehave == "challenge":
        state = store.registration_options(account, "anna@example.org", NOW).state  # another ceremony's
    elif misbehave == "account":
        owner = other
    elif misbehave == "expired":
        at = NOW + timedelta(seconds=module.CEREMONY_SECONDS + 1)
    elif misbehave == "name":
        name = "  \t "
    response = device.create(challenge.options_json, origin, **kwargs)
    if misbehave == "garbage":
        response = response.replace('"attestationObject": "', '"attestationObject": "AAAA')
    with caplog.at_level("INFO", logger=module.__name__), pytest.raises(ValueError, match=reason) as refused:
        store.register(owner, name, response, state, at)
    assert refused.value.__cause__ is None
    if logged is not None:  # the library's own reason, logged only
        assert logged in caplog.text and logged not in str(refused.value)
    assert _count(engine, PasskeyRow) == 0 and _count(engine, AuthenticatorRow) == 0


def test_a_state_of_the_other_ceremony_is_refused(store: SqlPasskeys, account: str) -> None:
    device = SoftAuthenticator()
    _register(store, device, account)
    registration = store.registration_options(account, "anna@example.org", NOW)
    sign_in = store.authentication_options(account, NOW)
    with pytest.raises(ValueError, match="another ceremony"):
        store.authenticate(device.get(sign_in.options_json, ORIGIN), registration.state, NOW)
    with pytest.raises(ValueError, match="unreadable"):
        store.authenticate(device.get(sign_in.options_json, ORIGIN), "not json", NOW)
    with pytest.raises(ValueError, match="naive"):
        store.authentication_options(account, NOW.replace(tzinfo=None))


# --- authentication ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("misbehave", "reason", "logged"), [
    ("origin", "does not verify", "Unexpected client data origin"),
    ("rp_id", "does not verify", "Unexpected RP ID hash"),
    ("no_uv", "does not verify", "User verification is required"),
    ("challenge", "does not verify", "challenge was not expected"),
    ("expired", "expired", None),
    ("signature", "does not verify", "Could not verify authentication signature"),
    ("user_handle", "user handle", None),
    ("no_user_handle", "user handle", None),
    ("garbage", "unreadable", "missing required id"),
    ("unknown", "unknown passkey", None),
])
def test_an_assertion_that_does_not_verify_is_refused(engine: Engine, store: SqlPasskeys, account: str,
                                                      misbehave: str, reason: str, logged: str | None,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    device = SoftAuthenticator()
    added = _register(store, device, account)
    challenge = store.authentication_options(None, LATER)
    state, at = challenge.state, LATER
    kwargs: dict[str, Any] = {}
    origin = ORIGIN
    if misbehave == "origin":
        origin = "https://evil.example"
    elif misbehave == "rp_id":
        kwargs["rp_id"] = "example.org"
    elif misbehave == "no_uv":
        kwargs["user_verified"] = False
    elif misbehave == "challenge":
        state = store.authentication_options(None, LATER).state  # another ceremony's
    elif misbehave == "expired":
        at = LATER + timedelta(seconds=module.CEREMONY_SECONDS + 1)
    elif misbehave == "user_handle":
        kwargs["user_handle"] = secrets.token_bytes(32)
    elif misbehave == "no_user_handle":
        kwargs["user_handle"] = False
    response = device.get(challenge.options_json, ORIGIN if misbehave != "origin" else origin, **kwargs)
    if misbehave == "signature":
        data = json.loads(response)
        signature = bytearray(unb64url(data["response"]["signature"]))
        signature[-1] ^= 1
        data["response"]["signature"] = b64url(bytes(signature))
        response = json.dumps(data)
    elif misbehave == "garbage":
        response = '{"id": 1}'
    elif misbehave == "unknown":
        data = json.loads(response)
        data["id"] = data["rawId"] = b64url(secrets.token_bytes(32))
        response = json.dumps(data)
    with caplog.at_level("INFO", logger=module.__name__), pytest.raises(ValueError, match=reason) as refused:
        store.authenticate(response, state, at)
    assert refused.value.__cause__ is None
    if logged is not None:
        assert logged in caplog.text and logged not in str(refused.value)
    assert _sign_count(engine) == 0
    assert SqlAuthenticators(engine, SEALER).of(account) == [added]  # last_used_at not set


def test_step_up_refuses_a_passkey_of_another_account(store: SqlPasskeys, account: str, other: str) -> None:
    mine, theirs = SoftAuthenticator(), SoftAuthenticator()
    _register(store, mine, account)
    _register(store, theirs, other)
    challenge = store.authentication_options(account, LATER)
    [their_id] = theirs.credentials
    with pytest.raises(ValueError, match="another account"):
        store.authenticate(theirs.get(challenge.options_json, ORIGIN, credential_id=their_id), challenge.state,
                           LATER)


def test_a_replayed_assertion_is_refused_by_the_counter(engine: Engine, store: SqlPasskeys, account: str) -> None:
    device = SoftAuthenticator()
    _register(store, device, account)
    challenge = store.authentication_options(account, LATER)
    response = device.get(challenge.options_json, ORIGIN)
    store.authenticate(response, challenge.state, LATER)
    with pytest.raises(ValueError, match="does not verify"):
        store.authenticate(response, challenge.state, LATER)
    assert _sign_count(engine) == 1


def test_a_counter_going_back_is_refused(engine: Engine, store: SqlPasskeys, account: str) -> None:
    """WebAuthn §6.1.1: a counter at or below the stored one means a cloned authenticator (or a replay)."""
    device = SoftAuthenticator(counter_step=5)
    _register(store, device, account)
    for _ in range(2):
        challenge = store.authentication_options(account, LATER)
        store.authenticate(device.get(challenge.options_json, ORIGIN), challenge.state, LATER)
    assert _sign_count(engine) == 10
    for count in (3, 10, 0):
        challenge = store.authentication_options(account, LATER)
        with pytest.raises(ValueError):
            store.authenticate(device.get(challenge.options_json, ORIGIN, sign_count=count), challenge.state, LATER)
    assert _sign_count(engine) == 10
    challenge = store.authentication_options(account, LATER)
    store.authenticate(device.get(challenge.options_json, ORIGIN, sign_count=11), challenge.state, LATER)
    assert _sign_count(engine) == 11


def test_an_authenticator_without_a_counter_is_accepted(engine: Engine, store: SqlPasskeys, account: str) -> None:
    """Counters of 0 (many synced passkeys): nothing to compare; the single-use challenge guards replay."""
    device = SoftAuthenticator(counter_step=0)
    _register(store, device, account)
    for _ in range(2):
        challenge = store.authentication_options(None, LATER)
        assert store.authenticate(device.get(challenge.options_json, ORIGIN), challenge.state, LATER).account_id \
            == account
    assert _sign_count(engine) == 0


def test_a_use_meanwhile_wins_over_this_one(engine: Engine, store: SqlPasskeys, account: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Two requests with one assertion at once: both verify against the counter they read, one records it; the
    conditional UPDATE refuses the other."""
    device = SoftAuthenticator()
    _register(store, device, account)
    challenge = store.authentication_options(account, LATER)
    response = device.get(challenge.options_json, ORIGIN)
    verify = webauthn.verify_authentication_response

    def verify_then_the_other_request_records(**kwargs: Any) -> Any:
        verified = verify(**kwargs)
        with engine.begin() as connection:
            connection.execute(update(PasskeyRow).values(sign_count=verified.new_sign_count))
        return verified

    monkeypatch.setattr(webauthn, "verify_authentication_response", verify_then_the_other_request_records)
    with pytest.raises(ValueError, match="used meanwhile"):
        store.authenticate(response, challenge.state, LATER)
    assert SqlAuthenticators(engine, SEALER).of(account)[0].last_used_at is None


# --- listed and removed with the other factors ------------------------------------------------------------

def test_removing_the_passkey_removes_its_credential(engine: Engine, store: SqlPasskeys, account: str,
                                                     other: str) -> None:
    device = SoftAuthenticator()
    added = _register(store, device, account)
    factors = SqlAuthenticators(engine, SEALER)
    assert factors.remove(other, added.authenticator_id) is False
    assert _count(engine, PasskeyRow) == 1
    assert factors.remove(account, added.authenticator_id) is True
    assert factors.of(account) == [] and _count(engine, PasskeyRow) == 0  # the foreign key's cascade
    challenge = store.authentication_options(None, LATER)
    with pytest.raises(ValueError, match="unknown passkey"):
        store.authenticate(device.get(challenge.options_json, ORIGIN), challenge.state, LATER)
    assert json.loads(store.registration_options(account, "anna@example.org", NOW).options_json)[
        "excludeCredentials"] == []


def test_deleting_the_account_deletes_its_passkeys(engine: Engine, store: SqlPasskeys, account: str,
                                                   other: str) -> None:
    _register(store, SoftAuthenticator(), account)
    _register(store, SoftAuthenticator(), other)
    assert SqlAccountStore(engine, SEALER).delete_account(account) is True
    assert _count(engine, PasskeyRow) == 1 and _count(engine, AuthenticatorRow) == 1
    assert [a.account_id for a in SqlAuthenticators(engine, SEALER).of(other)] == [other]
