"""Second factors a citizen enrols with the broker itself (issue 17): what they are, what signing in with one
proves, and the port their store implements.

A second factor raises the assurance of a sign-in above what the upstream asserted (step-up): the operator's
``[assurance] second_factor_level`` is the level an upstream sign-in reaches together with a verified factor
(never lower than what the upstream gave). ``amr`` values are those of RFC 8176 §2: an authenticator app code
and a recovery code are one-time passwords (``otp``), a passkey proves possession of a key with the person verified
(``user``): ``swk`` for a synced passkey (the authenticator data's backup-eligible flag, WebAuthn §6.1.3: the key
is copied between devices by a cloud account, so it is held in software somewhere), ``hwk`` for one bound to its
device. The broker asks for no attestation, so ``hwk`` says what the authenticator claims, not a certified
hardware key. Any factor after an upstream sign-in makes the authentication multi-factor (``mfa``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol


class FactorKind(StrEnum):
    """A kind of second factor; the values are stored."""

    TOTP = "totp"  # an authenticator app (RFC 6238)
    RECOVERY = "recovery-code"  # one-time codes shown once at enrolment, stored hashed
    PASSKEY = "passkey"  # WebAuthn
    EMAIL = "email-code"  # a one-time code sent to a proven e-mail address (a fallback)


#: the broker-local upstream of signing in with a passkey alone (``broker.journeys.passwordless``): its name in
#: ``allowed_upstreams``, an SSO session's ``upstream``, the audit
PASSKEY_UPSTREAM = "passkey"

#: an authenticator app's code as typed, spaces removed: six ASCII digits (RFC 6238 with its default length;
#: ``\d`` would take other scripts' digits too)
TOTP_CODE = re.compile(r"[0-9]{6}")

#: what verifying each kind adds to the sign-in's ``amr`` (RFC 8176 §2), besides ``mfa``; a passkey's depends
#: on the passkey (``passkey_amr``)
AMR: dict[FactorKind, tuple[str, ...]] = {
    FactorKind.TOTP: ("otp",),
    FactorKind.RECOVERY: ("otp",),
    FactorKind.PASSKEY: ("hwk", "user"),
    FactorKind.EMAIL: ("otp",),
}


def passkey_amr(synced: bool) -> tuple[str, ...]:
    """What a verified passkey adds to ``amr`` (RFC 8176 §2): ``swk`` when it is synced between devices
    (WebAuthn §6.1.3 backup eligibility), else ``hwk``; ``user`` always (user verification is required)."""
    return ("swk", "user") if synced else AMR[FactorKind.PASSKEY]


@dataclass(frozen=True)
class Authenticator:
    """One enrolled factor of an account, as the portal lists it: never its secret."""

    authenticator_id: str
    account_id: str
    kind: FactorKind
    #: the person's own name for it ("phone", "work laptop"), shown in the portal
    name: str
    created_at: datetime
    last_used_at: datetime | None = None


class Authenticators(Protocol):
    """The enrolled second factors (``broker.storage.authenticators``). Secrets are sealed at rest, recovery
    codes stored hashed; every comparison of a code is constant-time, and a code is accepted once."""

    def of(self, account_id: str) -> Sequence[Authenticator]:
        """The account's factors, oldest first (recovery codes as one entry, while any is unused)."""
        ...

    def add_totp(self, account_id: str, name: str, secret: str, now: datetime) -> Authenticator:
        """Enrol an authenticator app with ``secret`` (base32, RFC 4648), once its first code was checked
        (``check_new_totp``)."""
        ...

    def verify_totp(self, account_id: str, code: str, now: datetime) -> Authenticator | None:
        """The account's authenticator app whose code ``code`` is at ``now`` (RFC 6238 §5.2: one step of clock
        drift either way), or None. A time step accepted once for an authenticator is never accepted again
        (§5.2: replay), also by two requests at once."""
        ...

    def replace_recovery_codes(self, account_id: str, codes: Sequence[str], now: datetime) -> None:
        """Store ``codes`` (hashed) as the account's recovery codes, in place of any before."""
        ...

    def use_recovery_code(self, account_id: str, code: str, now: datetime) -> Authenticator | None:
        """Spend one unused recovery code of the account (the entry it belongs to), or None."""
        ...

    def add_email(self, account_id: str, name: str, address: str, now: datetime) -> Authenticator:
        """Enrol e-mail codes to ``address`` (sealed at rest like a TOTP secret), once a code sent there was
        entered (the address is proven)."""
        ...

    def email_address(self, account_id: str, authenticator_id: str) -> str | None:
        """The address of the account's e-mail code factor ``authenticator_id``; None when there is no such
        factor or its address does not open."""
        ...

    def mark_used(self, account_id: str, authenticator_id: str, now: datetime) -> None:
        """Record that the account's factor was used at ``now`` (an e-mail code checked by the journey)."""
        ...

    def remove(self, account_id: str, authenticator_id: str) -> bool:
        """Remove one factor of the account (the recovery entry removes every recovery code); False when the
        account has no such factor."""
        ...


@dataclass(frozen=True)
class PasskeyChallenge:
    """A WebAuthn ceremony started: the options the browser passes to ``navigator.credentials.create`` or
    ``.get`` (JSON, as WebAuthn Level 3 §5.4 / §5.5 describe them, binary values base64url-encoded), and what the
    verification needs back (the challenge; kept server-side by the journey, never sent to the browser again)."""

    options_json: str
    state: str


@dataclass(frozen=True)
class PasskeyUse:
    """A verified WebAuthn assertion: whose passkey it was, and whether the authenticator verified the person
    (WebAuthn §6.1 UV flag; needed for the MFA level)."""

    account_id: str
    authenticator: Authenticator
    user_verified: bool
    #: backup eligible (WebAuthn §6.1.3 BE flag): a synced, multi-device passkey
    synced: bool = False

    @property
    def amr(self) -> tuple[str, ...]:
        return passkey_amr(self.synced)


@dataclass(frozen=True)
class NewPasskey:
    """A registration response verified (WebAuthn Level 3 §7.1: origin, RP ID hash, challenge, user verification)
    but not stored yet: what ``Passkeys.add`` stores for an account. Sign-up with a passkey alone
    (``broker.journeys.passkey_signup``) verifies first and creates the account only then, so a response that does
    not verify leaves nothing behind. Public data only (WebAuthn §6.5: the credential's public key)."""

    credential_id: bytes
    public_key: bytes
    sign_count: int
    #: the authenticator's transports as the browser reported them (WebAuthn §5.8.4), known values only
    transports: tuple[str, ...]
    #: the user handle the ceremony gave the credential (WebAuthn §14.6.1)
    user_handle: bytes
    #: backup eligible (WebAuthn §6.1.3 BE flag): a synced, multi-device passkey
    synced: bool = False

    @property
    def amr(self) -> tuple[str, ...]:
        return passkey_amr(self.synced)


class Passkeys(Protocol):
    """Passkeys (WebAuthn Level 3) enrolled at the broker (``broker.storage.passkeys``): the relying party is the
    broker's own origin; registration and authentication are verified with a well-kept library (py_webauthn),
    including the origin, the RP ID hash, the challenge, the signature and the signature counter."""

    def registration_options(self, account_id: str, user_name: str, now: datetime) -> PasskeyChallenge:
        """Options to create a discoverable credential for the account (its existing ones excluded), user
        verification required."""
        ...

    def register(self, account_id: str, name: str, response_json: str, state: str,
                 now: datetime) -> Authenticator:
        """Verify the browser's registration response against ``state`` and store the credential;
        ``ValueError`` when it does not verify (wrong origin, RP ID, challenge, a credential already enrolled).
        The same as ``add`` after ``verify_registration``."""
        ...

    def verify_registration(self, account_id: str, response_json: str, state: str, now: datetime) -> NewPasskey:
        """Verify the browser's registration response against ``state`` (made for ``account_id``, which need not
        exist yet) and store nothing; ``ValueError`` as ``register``."""
        ...

    def add(self, account_id: str, name: str, passkey: NewPasskey, now: datetime) -> Authenticator:
        """Store a verified passkey for the account (which must exist now); ``ValueError`` when its credential
        was enrolled meanwhile, the name is empty, or the account is gone."""
        ...

    def authentication_options(self, account_id: str | None, now: datetime) -> PasskeyChallenge:
        """Options to sign in with a passkey: the account's credentials (step-up), or any discoverable one of
        this broker (``account_id`` None: passwordless), user verification required."""
        ...

    def authenticate(self, response_json: str, state: str, now: datetime) -> PasskeyUse:
        """Verify an assertion against ``state``: a known credential, its signature, a signature counter that
        did not go back (a cloned authenticator, WebAuthn §6.1.1); the counter and last use are recorded.
        ``ValueError`` when it does not verify."""
        ...
