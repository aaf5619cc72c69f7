"""The pending records of second factors (issue 17), stored and read by the codec of
``broker.core.pending_records``: a sign-in waiting at the step-up page, the enrolments of an authenticator app,
an e-mail address or a passkey (in the portal, or at the step-up), and the passkey sign-in and sign-up pages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from broker.core.model import LoginRequest, UpstreamIdentity
from broker.core.pending_kinds import Kind
from broker.core.pending_records import PendingRecord


@dataclass(frozen=True)
class StepUp(PendingRecord):
    """A sign-in at the upstream that needs the person's second factor before the app is answered
    (``broker.journeys.step_up``): the login, who signed in, their account, what the upstream needs at logout
    (name/value pairs, flattened), and the wrong codes entered so far."""

    KIND: ClassVar[Kind] = Kind.STEP_UP
    login: LoginRequest
    identity: UpstreamIdentity
    account: str
    upstream_state: tuple[str, ...]
    attempts: int
    #: the passkey challenge this page asked (``Passkeys.authentication_options``), "" when it offers none
    passkey_state: str
    #: the e-mail code sent for this sign-in as ``<salt>$<HMAC-SHA256(salt, code)>`` (never the code), "" for none
    email_code: str = ""
    #: when that code stops working, in whole seconds since the Unix epoch
    email_code_until: int = 0
    #: the e-mail code factor it was sent to
    email_factor: str = ""
    #: codes sent for this sign-in so far (``broker.journeys.email_codes.MAX_SENDS``)
    email_sends: int = 0
    #: the SSO session raised in place (``broker.journeys.step_up.challenge_session``), "" for a sign-in at the
    #: upstream; then ``identity`` holds only how that session signed in (upstream, acr, amr, auth_time)
    sid: str = ""


@dataclass(frozen=True)
class StepUpEnrolment(PendingRecord):
    """A sign-in at the upstream whose account has no second factor yet, adding an authenticator app at the
    step-up (``broker.journeys.step_up_enrol``): the login, who signed in, their account ("" on a first
    sign-in, until the first code), what the upstream needs at logout (flattened), the app's secret and the
    wrong codes so far."""

    KIND: ClassVar[Kind] = Kind.STEP_UP_ENROLMENT
    login: LoginRequest
    identity: UpstreamIdentity
    account: str
    upstream_state: tuple[str, ...]
    secret: str
    attempts: int


@dataclass(frozen=True)
class StepUpEnrolled(PendingRecord):
    """That sign-in once its new app's first code was right, at the level reached (``identity``'s acr and amr),
    while the person reads their recovery codes."""

    KIND: ClassVar[Kind] = Kind.STEP_UP_ENROLLED
    login: LoginRequest
    identity: UpstreamIdentity
    upstream_state: tuple[str, ...]


@dataclass(frozen=True)
class TotpEnrolment(PendingRecord):
    """An authenticator app shown its secret in the portal, waiting for its first code
    (``broker.journeys.authenticators``): the account, the SSO session it was started in, the name and secret,
    and the wrong codes entered so far."""

    KIND: ClassVar[Kind] = Kind.TOTP_ENROLMENT
    account: str
    sid: str
    name: str
    secret: str
    #: wrong first codes entered so far (``broker.journeys.authenticators.MAX_ATTEMPTS``)
    attempts: int = 0


@dataclass(frozen=True)
class EmailEnrolment(PendingRecord):
    """An e-mail address sent a code from the portal, waiting for that code (``broker.journeys.email_enrolment``):
    the account, the SSO session, the name, the address, the code's salted hash and end (as ``StepUp``), and the
    wrong codes entered so far."""

    KIND: ClassVar[Kind] = Kind.EMAIL_ENROLMENT
    account: str
    sid: str
    name: str
    address: str
    code: str
    until: int
    attempts: int = 0


@dataclass(frozen=True)
class PasskeyEnrolment(PendingRecord):
    """A passkey registration started in the portal (``broker.journeys.passkeys``): the account, the SSO session
    it was started in, the name the person gave it, and the ceremony's state (``Passkeys.registration_options``)."""

    KIND: ClassVar[Kind] = Kind.PASSKEY_ENROLMENT
    account: str
    sid: str
    name: str
    state: str


@dataclass(frozen=True)
class PasskeySignIn(PendingRecord):
    """A login waiting for a passkey alone (``broker.journeys.passwordless``): the login, the discovery page's
    handle it came from, the ceremony's state and the failed tries so far."""

    KIND: ClassVar[Kind] = Kind.PASSKEY_SIGN_IN
    login: LoginRequest
    discovery: str
    state: str
    attempts: int


@dataclass(frozen=True)
class PasskeySignUp(PendingRecord):
    """A new account waiting for its first passkey (``broker.journeys.passkey_signup``): the login, the discovery
    page's handle it came from, the broker-local subject the account will be created with (also the account the
    ceremony was made for, ``Passkeys.registration_options``), the ceremony's state and the failed tries so far.
    Nothing is created before the browser's answer verifies."""

    KIND: ClassVar[Kind] = Kind.PASSKEY_SIGN_UP
    login: LoginRequest
    discovery: str
    subject: str
    state: str
    attempts: int
