"""Passkeys the broker enrols itself, in SQL (``broker.core.factors.Passkeys``; issue 17): WebAuthn Level 3
registration and authentication ceremonies, verified by py_webauthn (``webauthn``), the broker's own origin
being the relying party.

Each passkey is an ``authenticators`` row of kind ``passkey`` (listed and removed with the other factors by
``SqlAuthenticators``) and a ``passkeys`` row with its credential: ID (unique across accounts), COSE public key,
signature counter, transports and the user handle it was created with. Public keys are not secret: nothing is
sealed. Deleting the authenticator (or the account) deletes the credential (foreign-key cascades).

Ceremonies. The options ask for a discoverable credential (resident key required), user verification required,
no attestation, and ES256, EdDSA or RS256 keys. The ``state`` the journey keeps server-side is JSON with the
ceremony (``create``/``get``), the challenge (32 random bytes, base64url), the account (or null for a
passwordless sign-in), the user handle (registration) and the time it was issued; a state is good for
``CEREMONY_SECONDS`` from its issue, and for its own ceremony only. Making a state single-use is the journey's
part (it takes the state once); this store adds the signature counter rule below.

User handle (WebAuthn §14.6.1): 32 random bytes per account, not derived from the account ID and without personal
data; chosen when the account registers its first passkey and reused for its later ones (read from its stored
passkeys), so an authenticator sees one handle per account. Random rather than an HMAC of the account ID:
nothing to configure and no key whose rotation would change every account's handle (a stored credential keeps
the handle it was created with, and an assertion's ``userHandle`` is checked against that one).

Signature counter (WebAuthn §6.1.1, §7.2 step 21): when the stored or the new counter is nonzero the new one
must be greater, or the assertion is refused (a replayed assertion, or a cloned authenticator). The new counter
is recorded by ``UPDATE ... WHERE sign_count = :old`` whose row count decides, so of two requests with the same
assertion at once only one passes, on PostgreSQL as on SQLite. Authenticators that keep no counter (always 0,
as many synced passkeys) are protected from replay by the single-use challenge only.

Every failure is a ``ValueError`` with a short reason; the library's exception is logged, not raised.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NoReturn

import webauthn
from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError
from webauthn.helpers import bytes_to_base64url, parse_authentication_credential_json
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from broker.core.factors import Authenticator, FactorKind, NewPasskey, PasskeyChallenge, Passkeys, PasskeyUse
from broker.storage.db import reader_factory, rowcount, session_factory
from broker.storage.tables import AuthenticatorRow, PasskeyRow

log = logging.getLogger(__name__)

#: how long a ceremony's state is good for; also the options' ``timeout`` hint (WebAuthn §15.1 recommends 5 to
#: 10 minutes when user verification is required)
CEREMONY_SECONDS = 300
CHALLENGE_BYTES = 32  # §13.4.3: at least 16
USER_HANDLE_BYTES = 32  # §5.4.3: at most 64
MAX_CREDENTIAL_ID_BYTES = 1023  # §7.1 step 25 (Level 3)
NAME_LENGTH = 100
MAX_SIGN_COUNT = 2**32 - 1
#: in the order of preference the options give them (§5.4: the most preferred first)
ALGORITHMS = [
    COSEAlgorithmIdentifier.ECDSA_SHA_256,
    COSEAlgorithmIdentifier.EDDSA,
    COSEAlgorithmIdentifier.RSASSA_PKCS1_v1_5_SHA_256,
]
CREATE, GET = "create", "get"


@dataclass(frozen=True)
class _State:
    ceremony: str
    challenge: bytes
    account_id: str | None
    user_handle: bytes | None
    issued_at: datetime

    def dump(self) -> str:
        return json.dumps({
            "ceremony": self.ceremony,
            "challenge": bytes_to_base64url(self.challenge),
            "account_id": self.account_id,
            "user_handle": None if self.user_handle is None else bytes_to_base64url(self.user_handle),
            "issued_at": self.issued_at.isoformat(),
        }, separators=(",", ":"))

    @classmethod
    def load(cls, text: str, ceremony: str, now: datetime) -> _State:
        """The state ``text`` of a ``ceremony`` still good at ``now``; ``ValueError`` otherwise."""
        try:
            data = json.loads(text)
            if data["ceremony"] != ceremony:
                raise ValueError("passkey state of another ceremony")
            account_id = data["account_id"]
            user_handle = data["user_handle"]
            issued_at = datetime.fromisoformat(data["issued_at"])
            state = cls(ceremony, _unbase64url(data["challenge"]),
                        account_id if isinstance(account_id, str) else None,
                        _unbase64url(user_handle) if isinstance(user_handle, str) else None, issued_at)
        except (TypeError, KeyError, AttributeError, json.JSONDecodeError):
            raise ValueError("unreadable passkey state") from None
        if issued_at.tzinfo is None or not state.challenge:
            raise ValueError("unreadable passkey state")
        if not issued_at - timedelta(seconds=CEREMONY_SECONDS) <= now <= issued_at + timedelta(
                seconds=CEREMONY_SECONDS):
            raise ValueError("the passkey ceremony expired")
        return state


def _unbase64url(text: object) -> bytes:
    if not isinstance(text, str):
        raise TypeError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise TypeError("not base64url") from None


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("naive datetime: passkey ceremonies are timed with timezone-aware times only")
    return now


def _refuse(reason: str, exc: BaseException) -> NoReturn:
    """``ValueError(reason)`` in place of a library exception (logged, never raised up the stack)."""
    log.info("passkey refused: %s (%s: %s)", reason, type(exc).__name__, exc)
    raise ValueError(reason) from None


def _transports(values: Sequence[Any] | None) -> str:
    known = {t.value for t in AuthenticatorTransport}
    found = [str(getattr(v, "value", v)) for v in values or ()]
    return json.dumps([t for t in found if t in known])


def _descriptor(row: PasskeyRow) -> PublicKeyCredentialDescriptor:
    try:
        transports = [AuthenticatorTransport(t) for t in json.loads(row.transports)]
    except (ValueError, TypeError):
        transports = []
    return PublicKeyCredentialDescriptor(id=row.credential_id, transports=transports or None)


def _authenticator(row: AuthenticatorRow, last_used_at: datetime | None = None) -> Authenticator:
    return Authenticator(row.authenticator_id, row.account_id, FactorKind(row.kind), row.name, row.created_at,
                         last_used_at if last_used_at is not None else row.last_used_at)


class SqlPasskeys:
    def __init__(self, engine: Engine, rp_id: str, rp_name: str, origin: str) -> None:
        """``rp_id`` is the broker's host name (or a registrable suffix of it), ``origin`` its exact origin
        (``https://broker.example.org``), ``rp_name`` what authenticators show."""
        if not rp_id or not rp_name or not origin:
            raise ValueError("a passkey relying party needs an RP ID, a name and an origin")
        self._sessions = session_factory(engine)
        self._reads = reader_factory(engine)  # no transaction: one round trip per read
        self._rp_id = rp_id
        self._rp_name = rp_name
        self._origin = origin

    def _credentials(self, account_id: str) -> list[PasskeyRow]:
        query = (select(PasskeyRow)
                 .join(AuthenticatorRow, AuthenticatorRow.authenticator_id == PasskeyRow.authenticator_id)
                 .where(AuthenticatorRow.account_id == account_id,
                        AuthenticatorRow.kind == FactorKind.PASSKEY.value)
                 .order_by(AuthenticatorRow.created_at, AuthenticatorRow.authenticator_id))
        with self._reads() as session:
            return list(session.scalars(query))

    def registration_options(self, account_id: str, user_name: str, now: datetime) -> PasskeyChallenge:
        existing = self._credentials(account_id)
        user_handle = existing[0].user_handle if existing else secrets.token_bytes(USER_HANDLE_BYTES)
        challenge = secrets.token_bytes(CHALLENGE_BYTES)
        options = webauthn.generate_registration_options(
            rp_id=self._rp_id, rp_name=self._rp_name, user_name=user_name or "account", user_id=user_handle,
            challenge=challenge, timeout=CEREMONY_SECONDS * 1000,
            attestation=AttestationConveyancePreference.NONE,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.REQUIRED,
                user_verification=UserVerificationRequirement.REQUIRED),
            exclude_credentials=[_descriptor(row) for row in existing],
            supported_pub_key_algs=ALGORITHMS)
        state = _State(CREATE, challenge, account_id, user_handle, _aware(now))
        return PasskeyChallenge(webauthn.options_to_json(options), state.dump())

    def register(self, account_id: str, name: str, response_json: str, state: str,
                 now: datetime) -> Authenticator:
        if not " ".join(name.split()):
            raise ValueError("a passkey needs a name")
        return self.add(account_id, name, self.verify_registration(account_id, response_json, state, now), now)

    def verify_registration(self, account_id: str, response_json: str, state: str, now: datetime) -> NewPasskey:
        """WebAuthn §7.1 by py_webauthn (origin, RP ID hash, challenge, user verification, algorithm), then the
        credential ID's length (§7.1 step 25) and that no account holds it yet (step 26); nothing is stored."""
        ceremony = _State.load(state, CREATE, _aware(now))
        if ceremony.account_id != account_id or ceremony.user_handle is None:
            raise ValueError("passkey state of another account")
        try:
            credential = webauthn.helpers.parse_registration_credential_json(response_json)
            verified = webauthn.verify_registration_response(
                credential=credential, expected_challenge=ceremony.challenge, expected_origin=self._origin,
                expected_rp_id=self._rp_id, require_user_verification=True, supported_pub_key_algs=ALGORITHMS)
        except Exception as exc:  # untrusted input into a pure library call: any failure refuses
            _refuse("the passkey registration does not verify", exc)
        if len(verified.credential_id) > MAX_CREDENTIAL_ID_BYTES:
            raise ValueError("the passkey's credential ID is too long")
        with self._reads() as session:
            taken = session.scalar(select(PasskeyRow.authenticator_id)
                                   .where(PasskeyRow.credential_id == verified.credential_id))
        if taken is not None:
            raise ValueError("this passkey is already enrolled")
        return NewPasskey(verified.credential_id, verified.credential_public_key, verified.sign_count,
                          tuple(json.loads(_transports(credential.response.transports))), ceremony.user_handle,
                          synced=verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE)

    def add(self, account_id: str, name: str, passkey: NewPasskey, now: datetime) -> Authenticator:
        name = " ".join(name.split())[:NAME_LENGTH]
        if not name:
            raise ValueError("a passkey needs a name")
        authenticator_id = str(uuid.uuid4())
        entry = AuthenticatorRow(authenticator_id=authenticator_id, account_id=account_id,
                                 kind=FactorKind.PASSKEY.value, name=name, secret_sealed=None, last_step=None,
                                 created_at=_aware(now), last_used_at=None)
        try:
            with self._sessions.begin(savepoint=True) as session:
                session.add(entry)
                session.flush()  # the authenticator before its credential (foreign key)
                session.add(PasskeyRow(authenticator_id=authenticator_id, credential_id=passkey.credential_id,
                                       public_key=passkey.public_key, sign_count=passkey.sign_count,
                                       transports=_transports(passkey.transports),
                                       user_handle=passkey.user_handle))
        except IntegrityError:
            # enrolled by a concurrent request meanwhile (the unique credential ID), or the account is gone
            raise ValueError("this passkey is already enrolled") from None
        return _authenticator(entry)

    def authentication_options(self, account_id: str | None, now: datetime) -> PasskeyChallenge:
        allowed = [] if account_id is None else [_descriptor(row) for row in self._credentials(account_id)]
        challenge = secrets.token_bytes(CHALLENGE_BYTES)
        options = webauthn.generate_authentication_options(
            rp_id=self._rp_id, challenge=challenge, timeout=CEREMONY_SECONDS * 1000, allow_credentials=allowed,
            user_verification=UserVerificationRequirement.REQUIRED)
        state = _State(GET, challenge, account_id, None, _aware(now))
        return PasskeyChallenge(webauthn.options_to_json(options), state.dump())

    def authenticate(self, response_json: str, state: str, now: datetime) -> PasskeyUse:
        ceremony = _State.load(state, GET, _aware(now))
        try:
            credential = parse_authentication_credential_json(response_json)
        except Exception as exc:  # untrusted input into a pure library call
            _refuse("unreadable passkey assertion", exc)
        query = (select(PasskeyRow, AuthenticatorRow)
                 .join(AuthenticatorRow, AuthenticatorRow.authenticator_id == PasskeyRow.authenticator_id)
                 .where(PasskeyRow.credential_id == credential.raw_id))
        with self._reads() as session:
            found = session.execute(query).first()
        if found is None:
            raise ValueError("unknown passkey")
        passkey, entry = found
        if ceremony.account_id is not None and entry.account_id != ceremony.account_id:
            raise ValueError("a passkey of another account")
        # §7.2 step 6: the user handle, when given, is the credential's; a passwordless sign-in must give it
        user_handle = credential.response.user_handle
        if (user_handle is None and ceremony.account_id is None) or (
                user_handle is not None and not secrets.compare_digest(user_handle, passkey.user_handle)):
            raise ValueError("the passkey's user handle is not its account's")
        try:
            verified = webauthn.verify_authentication_response(
                credential=credential, expected_challenge=ceremony.challenge, expected_rp_id=self._rp_id,
                expected_origin=self._origin, credential_public_key=passkey.public_key,
                credential_current_sign_count=passkey.sign_count, require_user_verification=True)
        except Exception as exc:  # untrusted input into a pure library call
            _refuse("the passkey assertion does not verify", exc)
        new_count = verified.new_sign_count
        old_count = passkey.sign_count
        if not 0 <= new_count <= MAX_SIGN_COUNT or ((new_count or old_count) and new_count <= old_count):
            raise ValueError("the passkey's signature counter did not increase")  # checked by the library too
        if not verified.user_verified:
            raise ValueError("the passkey did not verify the person")  # checked by the library too
        with self._sessions.begin() as session:
            counted = session.execute(update(PasskeyRow)
                                      .where(PasskeyRow.authenticator_id == passkey.authenticator_id,
                                             PasskeyRow.sign_count == old_count)
                                      .values(sign_count=new_count))
            if rowcount(counted) != 1:
                raise ValueError("the passkey was used meanwhile")  # a concurrent use of this credential won
            session.execute(update(AuthenticatorRow)
                            .where(AuthenticatorRow.authenticator_id == entry.authenticator_id)
                            .values(last_used_at=now))
        return PasskeyUse(entry.account_id, _authenticator(entry, last_used_at=now), verified.user_verified,
                          synced=verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE)


_check: type[Passkeys] = SqlPasskeys
