"""Second factors the broker enrols itself, in SQL (``broker.core.factors.Authenticators``; issue 17).

Authenticator apps (TOTP, RFC 6238: HMAC-SHA-1, 6 digits, 30-second steps). The secret is sealed at rest by
``broker.storage.sealing`` (AES-256-GCM) with the associated data ``("authenticators", "secret_sealed",
authenticator id, account id)``: a sealed secret copied into another row, or another account's row, does not
open there; an unsealed value (the sealer's "legacy" plain text) is never taken as a secret. A code is accepted
for the current step and one step either side (§5.2: clock drift), compared in constant time, and never for a
step at or before the authenticator's last accepted one (§5.2: replay): the step is recorded by an ``UPDATE ...
WHERE last_step IS NULL OR last_step < :step`` whose row count decides, so of two requests with the same code at
once only one passes, on PostgreSQL as on SQLite. A secret sealed under an older key is sealed again under the
current one when it is next used.

Recovery codes: one ``recovery-code`` entry per account holds them (``recovery_codes`` rows), listed while any is
unused; each code is stored as a salted HMAC only (``_hash_code`` says why that is enough) and spent by an
``UPDATE ... WHERE used_at IS NULL`` whose row count decides, so a code is accepted once, also by two requests
at once.

E-mail codes (a fallback factor): the entry's address is sealed in the same column and with the same associated
data as a TOTP secret, so it is not readable in the database and does not open in another row; the codes
themselves never reach the store (the journey keeps a salted hash in its pending record).

Deleting an account deletes its factors and their codes (foreign-key cascades).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
import secrets
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pyotp
from sqlalchemy import Engine, Table, bindparam, delete, exists, or_, select, update
from sqlalchemy.orm import Session

from broker.core.factors import TOTP_CODE, Authenticator, Authenticators, FactorKind
from broker.storage.db import connection_factory, reader_factory, rowcount, session_factory
from broker.storage.sealing import Sealer, UnreadableValue, is_legacy
from broker.storage.tables import AccountRow, AuthenticatorRow, RecoveryCodeRow

log = logging.getLogger(__name__)

STEP_SECONDS = 30  # RFC 6238 §5.2's recommended time step
DIGITS = 6
#: steps accepted either side of the current one (RFC 6238 §5.2 recommends at most one)
DRIFT_STEPS = 1
#: RFC 4226 §4 R6: a shared secret of at least 128 bits (``new_totp_secret`` gives the recommended 160)
MIN_SECRET_BYTES = 16
NAME_LENGTH = 100
#: the name of the recovery codes' entry (the portal may show its own, by kind)
RECOVERY_NAME = "recovery codes"
#: Crockford's base32 (no i, l, o, u): read aloud or copied by hand without confusion; 5 bits a character
RECOVERY_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
#: 12 characters = 60 bits a code, shown in groups of four
RECOVERY_GROUPS = (4, 4, 4)
#: what a recovery code must have after normalising (``replace_recovery_codes`` refuses shorter ones)
MIN_RECOVERY_LENGTH = 10
MAX_RECOVERY_LENGTH = 64
SALT_BYTES = 16

_RECOVERY_CODE = re.compile(rf"[0-9a-z]{{{MIN_RECOVERY_LENGTH},{MAX_RECOVERY_LENGTH}}}")
_BASE32 = re.compile(r"[A-Z2-7]+")
_HASH = re.compile(r"([0-9a-f]{32})\$([0-9a-f]{64})")
# what a person may type for a Crockford character: O for zero, I and L for one; group separators dropped
_CONFUSABLES = str.maketrans({"o": "0", "i": "1", "l": "1", "-": None})


def new_totp_secret() -> str:
    """A new authenticator app secret: 160 random bits in base32 (RFC 4226 §4 R6 recommends 160)."""
    return pyotp.random_base32()


def totp_uri(secret: str, account_label: str, issuer: str) -> str:
    """The ``otpauth://totp/`` provisioning URI of ``secret`` (Key Uri Format), for the enrolment QR code."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
        name=account_label, issuer_name=issuer)


def new_recovery_codes(count: int = 10) -> list[str]:
    """``count`` new recovery codes such as ``k7m2-9xq4-p3vd``: 60 random bits each, from ``secrets``."""
    def one() -> str:
        return "-".join("".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(n)) for n in RECOVERY_GROUPS)
    return [one() for _ in range(count)]


def time_step(now: datetime) -> int:
    """RFC 6238 §4.2's T: whole ``STEP_SECONDS`` since the Unix epoch at ``now`` (timezone-aware)."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("naive datetime: time steps are counted from timezone-aware times only")
    return int(now.timestamp()) // STEP_SECONDS


def _row_authenticator(row: AuthenticatorRow, last_used_at: datetime | None = None) -> Authenticator:
    return Authenticator(row.authenticator_id, row.account_id, FactorKind(row.kind), row.name, row.created_at,
                         last_used_at if last_used_at is not None else row.last_used_at)


def _secret_context(authenticator_id: str, account_id: str) -> tuple[str, ...]:
    return ("authenticators", "secret_sealed", authenticator_id, account_id)


def _normal_secret(secret: str) -> str:
    """``secret`` as unpadded upper-case base32 of at least ``MIN_SECRET_BYTES``; ``ValueError`` otherwise."""
    text = "".join(secret.split()).upper().rstrip("=")
    if not _BASE32.fullmatch(text):
        raise ValueError("a TOTP secret must be base32 (RFC 4648)")
    try:
        decoded = base64.b32decode(text + "=" * (-len(text) % 8))
    except (binascii.Error, ValueError):
        raise ValueError("a TOTP secret must be base32 (RFC 4648)") from None
    if len(decoded) < MIN_SECRET_BYTES:
        raise ValueError(f"a TOTP secret must have at least {MIN_SECRET_BYTES * 8} bits")
    return text


def _normal_recovery_code(code: str) -> str | None:
    """What is compared of a typed recovery code: no white space or dashes, lower case, Crockford's confusable
    letters read as digits; None when that is not 10 to 64 ASCII letters and digits."""
    text = "".join(code.split()).lower().translate(_CONFUSABLES)
    return text if _RECOVERY_CODE.fullmatch(text) else None


def _hash_code(code: str, salt: bytes) -> str:
    """``<salt>$<HMAC-SHA256(salt, code)>``. A fast salted hash suffices here, unlike for passwords: a code from
    ``new_recovery_codes`` has 60 random bits, not a person's choice, so there is no dictionary to try and an
    offline search of a stolen hash costs about 2^59 HMACs per code; the per-code salt
    keeps equal codes apart and defeats precomputed tables. A slow KDF would cost every attempt up to ten
    derivations (one per unused code, since each has its own salt) and make recovery-code guessing a cheap
    way to load the server."""
    return f"{salt.hex()}${hmac.new(salt, code.encode('ascii'), hashlib.sha256).hexdigest()}"


def _matches(code: str, stored: str) -> bool:
    parsed = _HASH.fullmatch(stored)
    if parsed is None:
        return False
    return hmac.compare_digest(_hash_code(code, bytes.fromhex(parsed.group(1))), stored)


_FACTORS: Table = AuthenticatorRow.__table__  # type: ignore[assignment]
_CODES: Table = RecoveryCodeRow.__table__  # type: ignore[assignment]
# SQLAlchemy Core on the tables (issue 21: the ORM only added CPU to this login-path read); no secret is read
_OF = (select(_FACTORS.c.authenticator_id, _FACTORS.c.account_id, _FACTORS.c.kind, _FACTORS.c.name,
              _FACTORS.c.created_at, _FACTORS.c.last_used_at)
       .where(_FACTORS.c.account_id == bindparam("account_id"),
              or_(_FACTORS.c.kind != FactorKind.RECOVERY.value,
                  exists().where(_CODES.c.authenticator_id == _FACTORS.c.authenticator_id, _CODES.c.used_at.is_(None))))
       .order_by(_FACTORS.c.created_at, _FACTORS.c.authenticator_id))


class SqlAuthenticators:
    def __init__(self, engine: Engine, sealer: Sealer) -> None:
        self._sessions = session_factory(engine)
        self._reads = reader_factory(engine)  # no transaction: one round trip per read
        self._core = connection_factory(engine)  # the look-up a login makes
        self._sealer = sealer

    def of(self, account_id: str) -> Sequence[Authenticator]:
        """The account's factors, recovery codes while any is unused: the read a login makes to know whether
        there is a second factor to ask for (``broker.journeys.step_up``), so a Core select built once."""
        with self._core() as connection:
            return [Authenticator(row.authenticator_id, row.account_id, FactorKind(row.kind), row.name,
                                  row.created_at, row.last_used_at)
                    for row in connection.execute(_OF, {"account_id": account_id})]

    def add_totp(self, account_id: str, name: str, secret: str, now: datetime) -> Authenticator:
        """``ValueError`` for a secret that is not base32 of at least 128 bits, or an empty name."""
        return self._add_sealed(account_id, FactorKind.TOTP, name, _normal_secret(secret), now)

    def _add_sealed(self, account_id: str, kind: FactorKind, name: str, value: str, now: datetime) -> Authenticator:
        """A new factor whose ``value`` (a TOTP secret, an e-mail address) is sealed to its row."""
        name = " ".join(name.split())[:NAME_LENGTH]
        if not name:
            raise ValueError("an authenticator needs a name")
        authenticator_id = str(uuid.uuid4())
        row = AuthenticatorRow(authenticator_id=authenticator_id, account_id=account_id, kind=kind.value, name=name,
                               secret_sealed=self._sealer.seal(value, _secret_context(authenticator_id, account_id)),
                               last_step=None, created_at=now, last_used_at=None)
        with self._sessions.begin() as session:
            session.add(row)
        return _row_authenticator(row)

    def verify_totp(self, account_id: str, code: str, now: datetime) -> Authenticator | None:
        code = "".join(code.split())
        if not TOTP_CODE.fullmatch(code):
            return None  # refused before any database access
        step = time_step(now)
        query = (select(AuthenticatorRow)
                 .where(AuthenticatorRow.account_id == account_id, AuthenticatorRow.kind == FactorKind.TOTP.value)
                 .order_by(AuthenticatorRow.created_at, AuthenticatorRow.authenticator_id))
        with self._reads() as session:
            rows = list(session.scalars(query))
        for row in rows:
            secret = self._open_secret(row)
            if secret is None:
                continue
            accepted = _accepted_step(secret, code, step, row.last_step)
            if accepted is not None and self._record_step(row, accepted, secret, now):
                return _row_authenticator(row, last_used_at=now)
        return None

    def add_email(self, account_id: str, name: str, address: str, now: datetime) -> Authenticator:
        """``ValueError`` for an address that is not one line with an ``@``, or an empty name."""
        address = address.strip()
        if "@" not in address or len(address) > 254 or any(c.isspace() or ord(c) < 32 for c in address):
            raise ValueError("an e-mail code factor needs one e-mail address")
        return self._add_sealed(account_id, FactorKind.EMAIL, name, address, now)

    def email_address(self, account_id: str, authenticator_id: str) -> str | None:
        query = select(AuthenticatorRow).where(AuthenticatorRow.authenticator_id == authenticator_id,
                                               AuthenticatorRow.account_id == account_id,
                                               AuthenticatorRow.kind == FactorKind.EMAIL.value)
        with self._reads() as session:
            row = session.scalars(query).one_or_none()
        return None if row is None else self._open_secret(row)

    def mark_used(self, account_id: str, authenticator_id: str, now: datetime) -> None:
        with self._sessions.begin() as session:
            session.execute(update(AuthenticatorRow)
                            .where(AuthenticatorRow.authenticator_id == authenticator_id,
                                   AuthenticatorRow.account_id == account_id)
                            .values(last_used_at=now))

    def _open_secret(self, row: AuthenticatorRow) -> str | None:
        """The row's TOTP secret (or e-mail address); None (logged) when it is missing, not sealed, or does not open."""
        stored = row.secret_sealed
        try:
            if stored is None or is_legacy(stored):
                raise UnreadableValue("not a sealed value")
            return self._sealer.open(stored, _secret_context(row.authenticator_id, row.account_id))
        except UnreadableValue as exc:
            log.warning("secret of authenticator %s is unreadable, the authenticator is skipped: %s",
                        row.authenticator_id, exc)
            return None

    def _record_step(self, row: AuthenticatorRow, step: int, secret: str, now: datetime) -> bool:
        """Record ``step`` as the row's last accepted step unless it (or a later one) already is: the row count of
        one conditional UPDATE decides, so only one of concurrent requests wins."""
        values: dict[str, Any] = {"last_step": step, "last_used_at": now}
        if row.secret_sealed is not None and not self._sealer.is_current(row.secret_sealed):
            values["secret_sealed"] = self._sealer.seal(secret, _secret_context(row.authenticator_id, row.account_id))
        with self._sessions.begin() as session:
            result = session.execute(
                update(AuthenticatorRow)
                .where(AuthenticatorRow.authenticator_id == row.authenticator_id,
                       AuthenticatorRow.account_id == row.account_id,
                       or_(AuthenticatorRow.last_step.is_(None), AuthenticatorRow.last_step < step))
                .values(**values))
            return rowcount(result) == 1

    def replace_recovery_codes(self, account_id: str, codes: Sequence[str], now: datetime) -> None:
        """``ValueError`` when a code is not 10 to 64 letters and digits (after normalising), or two are equal."""
        normal = [_normal_recovery_code(code) for code in codes]
        if any(code is None for code in normal):
            raise ValueError(f"a recovery code must have {MIN_RECOVERY_LENGTH} to {MAX_RECOVERY_LENGTH} letters "
                             "and digits")
        if len(set(normal)) != len(normal):
            raise ValueError("recovery codes must differ")
        authenticator_id = str(uuid.uuid4())
        with self._sessions.begin() as session:
            # Two replacements at once must not leave two entries: on PostgreSQL the account's row lock orders
            # them; on SQLite (where FOR UPDATE is ignored and the driver begins the transaction at the first
            # write) the DELETE takes the database's write lock, held until commit.
            session.execute(select(AccountRow.account_id).where(AccountRow.account_id == account_id)
                            .with_for_update())
            self._delete_recovery(session, account_id)
            session.add(AuthenticatorRow(authenticator_id=authenticator_id, account_id=account_id,
                                         kind=FactorKind.RECOVERY.value, name=RECOVERY_NAME, secret_sealed=None,
                                         last_step=None, created_at=now, last_used_at=None))
            session.flush()  # the entry before its codes (foreign key)
            session.add_all(RecoveryCodeRow(authenticator_id=authenticator_id,
                                            code_hash=_hash_code(code, secrets.token_bytes(SALT_BYTES)), used_at=None)
                            for code in normal if code is not None)

    @staticmethod
    def _delete_recovery(session: Session, account_id: str) -> None:
        entries = (select(AuthenticatorRow.authenticator_id)
                   .where(AuthenticatorRow.account_id == account_id,
                          AuthenticatorRow.kind == FactorKind.RECOVERY.value))
        session.execute(delete(RecoveryCodeRow).where(RecoveryCodeRow.authenticator_id.in_(entries)))
        session.execute(delete(AuthenticatorRow).where(AuthenticatorRow.account_id == account_id,
                                                       AuthenticatorRow.kind == FactorKind.RECOVERY.value))

    def use_recovery_code(self, account_id: str, code: str, now: datetime) -> Authenticator | None:
        typed = _normal_recovery_code(code)
        if typed is None:
            return None  # refused before any database access
        query = (select(RecoveryCodeRow.id, RecoveryCodeRow.code_hash, AuthenticatorRow)
                 .join(AuthenticatorRow, AuthenticatorRow.authenticator_id == RecoveryCodeRow.authenticator_id)
                 .where(AuthenticatorRow.account_id == account_id,
                        AuthenticatorRow.kind == FactorKind.RECOVERY.value, RecoveryCodeRow.used_at.is_(None)))
        with self._reads() as session:
            candidates = list(session.execute(query))
        found: tuple[int, AuthenticatorRow] | None = None
        for code_id, code_hash, entry in candidates:  # every one is hashed: the time says nothing of which matched
            if _matches(typed, code_hash) and found is None:
                found = (code_id, entry)
        if found is None:
            return None
        code_id, entry = found
        with self._sessions.begin() as session:
            spent = session.execute(update(RecoveryCodeRow)
                                    .where(RecoveryCodeRow.id == code_id, RecoveryCodeRow.used_at.is_(None))
                                    .values(used_at=now))
            if rowcount(spent) != 1:
                return None  # a concurrent request spent it first
            session.execute(update(AuthenticatorRow)
                            .where(AuthenticatorRow.authenticator_id == entry.authenticator_id)
                            .values(last_used_at=now))
        return _row_authenticator(entry, last_used_at=now)

    def remove(self, account_id: str, authenticator_id: str) -> bool:
        with self._sessions.begin() as session:
            owned = (select(AuthenticatorRow.authenticator_id)
                     .where(AuthenticatorRow.authenticator_id == authenticator_id,
                            AuthenticatorRow.account_id == account_id))
            session.execute(delete(RecoveryCodeRow).where(RecoveryCodeRow.authenticator_id.in_(owned)))
            result = session.execute(delete(AuthenticatorRow)
                                     .where(AuthenticatorRow.authenticator_id == authenticator_id,
                                            AuthenticatorRow.account_id == account_id))
            return rowcount(result) == 1


def _accepted_step(secret: str, code: str, step: int, last_step: int | None) -> int | None:
    """The time step within ``DRIFT_STEPS`` of ``step`` whose code is ``code`` and that is after ``last_step``;
    of two (a 1 in 10^6 coincidence), the later, so the same six digits cannot be accepted a second time for the
    other. Every candidate's code is computed and compared in constant time."""
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    accepted = None
    for candidate in range(max(step - DRIFT_STEPS, 0), step + DRIFT_STEPS + 1):
        same = hmac.compare_digest(totp.generate_otp(candidate).encode("ascii"), code.encode("ascii"))
        if same and (last_step is None or candidate > last_step):
            accepted = candidate
    return accepted


_check: type[Authenticators] = SqlAuthenticators
