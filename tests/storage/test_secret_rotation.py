"""Claims-key rotation covers authenticator apps' TOTP secrets (``authenticators.secret_sealed``), sealed with the
same key ring as the claims: ``reseal_claims`` re-seals them, the census counts them, a secret re-sealed by a
code's use meanwhile is left alone, and an unreadable one is counted and kept, also with ``forget_unreadable``.
On SQLite and PostgreSQL."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import Engine, select, update

from broker.cli.main import main
from broker.core.model import UpstreamIdentity
from broker.storage import SqlAccountStore, create_engine_for
from broker.storage.authenticators import SqlAuthenticators
from broker.storage.claims_rotation import PLAIN, claims_by_key, reseal_claims
from broker.storage.sealing import Sealer, key_id
from broker.storage.tables import AuthenticatorRow
from tests.storage.rotation_support import (  # noqa: F401  (clean_environment: an autouse fixture)
    clean_environment,
    instance,
    rotate,
    write_keys,
)

K1, K2, K3 = (secrets.token_bytes(32) for _ in range(3))
#: now, 7 s into a 30-second time step (codes are computed for it, relative to the real time)
NOW = datetime.now(UTC).replace(second=7, microsecond=0)
STEP = timedelta(seconds=30)

Identity = Callable[..., UpstreamIdentity]


def _code(secret: str, at: datetime) -> str:
    return pyotp.TOTP(secret).at(at)


def _account(engine: Engine, identity: UpstreamIdentity, sealer: Sealer) -> str:
    return SqlAccountStore(engine, sealer).create_with_identity(identity, NOW)[0].account_id


def _secrets(engine: Engine) -> dict[str, str | None]:
    with engine.connect() as connection:
        rows = connection.execute(select(AuthenticatorRow.authenticator_id, AuthenticatorRow.secret_sealed))
        return {row.authenticator_id: row.secret_sealed for row in rows}


def test_rotation_reseals_authenticator_secrets_which_still_verify(engine: Engine, make_identity: Identity) -> None:
    old = Sealer([K1])
    account = _account(engine, make_identity(), old)
    apps = SqlAuthenticators(engine, old)
    keys = [pyotp.random_base32() for _ in range(3)]
    added = [apps.add_totp(account, f"phone {n}", secret, NOW) for n, secret in enumerate(keys)]
    apps.replace_recovery_codes(account, ["k7m2-9xq4-p3vd"], NOW)  # an entry without a secret: not counted
    assert claims_by_key(engine) == {key_id(K1): 4}  # the identity's claims and three secrets

    report = reseal_claims(engine, Sealer([K2, K1]), batch_size=2)

    assert (report.resealed, report.secrets_resealed, report.secrets_already_current) == (1, 3, 0)
    assert (report.secrets_changed_meanwhile, report.secrets_unreadable) == (0, 0)
    assert report.by_key == claims_by_key(engine) == {key_id(K2): 4}
    stored = _secrets(engine)
    assert all(str(stored[a.authenticator_id]).startswith(f"v1.{key_id(K2)}.") for a in added)
    assert all(secret not in str(stored) for secret in keys)
    new = SqlAuthenticators(engine, Sealer([K2]))  # the old key dropped
    for n, secret in enumerate(keys):
        at = NOW + n * STEP
        verified = new.verify_totp(account, _code(secret, at), at)
        assert verified is not None and verified.authenticator_id == added[n].authenticator_id

    again = reseal_claims(engine, Sealer([K2, K1]), batch_size=2)  # idempotent
    assert (again.secrets_resealed, again.secrets_already_current, again.by_key) == (0, 3, {key_id(K2): 4})


class _UsedMeanwhile(Sealer):
    """A ring that lets the citizen use the app (which re-seals its secret) just before rotation seals it."""

    def __init__(self, keys: Sequence[bytes], use: Callable[[], None]) -> None:
        super().__init__(keys)
        self._use: Callable[[], None] | None = use

    def seal(self, plaintext: str, context: Sequence[str]) -> str:
        if context[0] == "authenticators" and self._use is not None:
            use, self._use = self._use, None
            use()
        return super().seal(plaintext, context)


def test_a_secret_resealed_by_a_use_meanwhile_is_left_alone(engine: Engine, make_identity: Identity) -> None:
    account = _account(engine, make_identity(), Sealer([K1]))
    secret = pyotp.random_base32()
    app = SqlAuthenticators(engine, Sealer([K1])).add_totp(account, "phone", secret, NOW)
    serving = SqlAuthenticators(engine, Sealer([K2, K1]))  # an instance restarted with the new key
    meanwhile: list[str | None] = []

    def use() -> None:
        assert serving.verify_totp(account, _code(secret, NOW), NOW) is not None
        meanwhile.append(_secrets(engine)[app.authenticator_id])

    report = reseal_claims(engine, _UsedMeanwhile([K2, K1], use))

    assert (report.secrets_resealed, report.secrets_changed_meanwhile, report.secrets_unreadable) == (0, 1, 0)
    [written] = meanwhile
    assert written is not None and written.startswith(f"v1.{key_id(K2)}.")
    assert _secrets(engine)[app.authenticator_id] == written  # as the use wrote it
    assert report.by_key == {key_id(K2): 2}
    later = NOW + STEP
    assert SqlAuthenticators(engine, Sealer([K2])).verify_totp(account, _code(secret, later), later) is not None


def test_an_unreadable_secret_is_counted_and_kept_also_when_forgetting(
    engine: Engine, make_identity: Identity,
) -> None:
    account = _account(engine, make_identity(), Sealer([K1]))
    lost = SqlAuthenticators(engine, Sealer([K3])).add_totp(account, "lost key", pyotp.random_base32(), NOW)
    plain = SqlAuthenticators(engine, Sealer([K1])).add_totp(account, "plain", pyotp.random_base32(), NOW)
    with engine.begin() as connection:  # unsealed text where a sealed secret belongs: never taken as one
        connection.execute(update(AuthenticatorRow).where(AuthenticatorRow.authenticator_id == plain.authenticator_id)
                           .values(secret_sealed=pyotp.random_base32()))
    before = _secrets(engine)
    assert claims_by_key(engine) == dict(sorted({key_id(K1): 1, key_id(K3): 1, PLAIN: 1}.items()))

    report = reseal_claims(engine, Sealer([K2, K1]), forget_unreadable=True)

    assert (report.resealed, report.forgotten) == (1, 0)
    assert (report.secrets_resealed, report.secrets_unreadable, report.secrets_changed_meanwhile) == (0, 2, 0)
    assert _secrets(engine) == before  # both kept as they were: the citizen removes and re-adds them
    assert report.by_key == dict(sorted({key_id(K2): 1, key_id(K3): 1, PLAIN: 1}.items()))
    listed = {a.authenticator_id for a in SqlAuthenticators(engine, Sealer([K2])).of(account)}
    assert listed == {lost.authenticator_id, plain.authenticator_id}


# -- the command --------------------------------------------------------------------------------------------------


def test_rotate_claims_reseals_authenticator_secrets_and_keeps_unreadable_ones(
    database_url: str, tmp_path: Path, make_identity: Identity, capsys: pytest.CaptureFixture[str],
) -> None:
    config = instance(tmp_path, database_url)
    engine = create_engine_for(database_url)
    try:
        account = _account(engine, make_identity(), Sealer([K1]))
        secret = pyotp.random_base32()
        app = SqlAuthenticators(engine, Sealer([K1])).add_totp(account, "phone", secret, NOW)
        write_keys(config.parent, K2, K1)

        code, report = rotate(config, capsys)

        assert code == 0
        assert (report["resealed"], report["secrets_resealed"], report["secrets_unreadable"]) == (1, 1, 0)
        assert report["by_key"] == {key_id(K2): 2}
        assert SqlAuthenticators(engine, Sealer([K2])).verify_totp(account, _code(secret, NOW), NOW) is not None

        lost = SqlAuthenticators(engine, Sealer([K3])).add_totp(account, "lost", pyotp.random_base32(), NOW)
        code, report = rotate(config, capsys, "--forget-unreadable")
        assert code == 1  # K3's secret is still there: the old keys must not be dropped blindly
        assert (report["secrets_already_current"], report["secrets_unreadable"], report["forgotten"]) == (1, 1, 0)
        assert report["by_key"] == {key_id(K2): 2, key_id(K3): 1}
        assert set(_secrets(engine)) == {app.authenticator_id, lost.authenticator_id}

        capsys.readouterr()
        assert main(["--config", str(config), "keys", "rotate-claims", "--forget-unreadable"]) == 1
        out = capsys.readouterr().out
        assert (f"re-sealed 0 authenticator secrets under key {key_id(K2)}; 1 already were, 0 changed meanwhile, "
                "1 unreadable (kept: never forgotten)") in out
        census = ", ".join(f"{kid}: {n}" for kid, n in sorted({key_id(K2): 2, key_id(K3): 1}.items()))
        assert f"stored values by key: {census}\n" in out
        assert "1 authenticator secrets no configured key opens are kept, never forgotten" in out
    finally:
        engine.dispose()
