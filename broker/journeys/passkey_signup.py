"""Creating an account with a passkey alone (issue 17): for citizens without a social or government account, the
discovery page's "Create an account with a passkey" (wherever "Sign in with a passkey" is offered,
``passwordless.offered``) makes a new account whose only way in is the passkey created now. Later the account can
link a provider in the portal (``broker.journeys.portal_links``), and either way reaches the same account.

The ceremony is WebAuthn registration (WebAuthn Level 3 §7.1) of a discoverable credential with user
verification required, for a prospective account that does not exist yet: ``begin`` picks a new random subject
(``SUBJECT_BYTES``), asks ``Passkeys.registration_options`` for it (a new random user handle, §14.6.1, no
personal data) and keeps subject, ceremony state and the waiting login in a ``PasskeySignUp`` record bound to
this browser (single use, RFC 6749 §10.12). ``finish`` takes the record once and verifies the browser's answer
(``Passkeys.verify_registration``: origin, RP ID hash, challenge, user verification) *before* anything is
created; only then is the account created with its broker-local identity (issuer ``SIGN_UP_ISSUER``, the random
subject, upstream ``passkey``, the display name given as ``name``, no e-mail) and the passkey stored for it
(``Passkeys.add``). Should storing the passkey still fail (the same credential enrolled meanwhile by a concurrent
request), the new account is erased again, so a failed sign-up leaves no account behind. A replayed answer
finds its record used up and creates nothing.

The sign-in that follows is the one ``passwordless.finish`` makes: possession of the key plus the person's
fingerprint, face or PIN, at the second-factor level with ``amr`` of the passkey and ``mfa`` (RFC 8176 §2).

Abuse (mass account creation by bots) is limited by: a sign-up needs a login waiting on a discovery page, that
is, a request of a registered app that offers passkeys (an app that names its upstreams without ``passkey`` is
never offered it); the per-address rate limits on the sign-up views (``[limits] per_ip`` and the stricter
``per_ip_sign_up``, ``broker.web.ops.limits``); ``MAX_ATTEMPTS`` failed answers per page; and the ceremony
itself, whose challenge is single-use and bound to the browser's session. An account made this way holds no
verified claim (no e-mail), so it can never be linked to another account by e-mail (``core.linking``).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import replace

from broker.core import errors, flow
from broker.core.audit import AuditKind
from broker.core.factor_records import PasskeySignUp
from broker.core.factors import NewPasskey, Passkeys
from broker.core.model import Account, DownstreamParty, LoginRequest, UpstreamIdentity
from broker.core.operators import CONSOLE_PARTY_ID
from broker.core.outcomes import Outcome, Page
from broker.core.pending_records import LoginAtDiscovery, put_record, take_record
from broker.journeys import login, passwordless
from broker.journeys.context import Browser, DownstreamFailure, Journeys
from broker.journeys.handles import take_bound

log = logging.getLogger(__name__)
PAGE = "passkey_sign_up.html"
#: the issuer of the broker-local identities of accounts created with a passkey (a fixed name: it never changes
#: with the broker's address, and no upstream can assert it)
SIGN_UP_ISSUER = "urn:civic-broker:passkey-sign-up"
#: the random subject of a new account's broker-local identity (256 bits)
SUBJECT_BYTES = 32
MAX_ATTEMPTS = passwordless.MAX_ATTEMPTS
#: the display name a person may give, at most (the passkey's own name in the portal too)
NAME_LENGTH = 100
#: the name the new passkey is listed under in the portal's "Sign-in security" page
PASSKEY_NAME = "Passkey"


def offered(j: Journeys, party: DownstreamParty) -> bool:
    """Whether ``party``'s discovery page offers creating an account with a passkey: wherever it offers signing
    in with one, except the operator console's sign-in (a new account holds no operator role: it could only be
    refused)."""
    return party.party_id != CONSOLE_PARTY_ID and passwordless.offered(j, party)


def _passkeys(j: Journeys) -> Passkeys:
    if j.passkeys is None:
        raise errors.UnknownUpstream(detail="passkeys are not wired")
    return j.passkeys


def _check(j: Journeys, waiting: LoginRequest) -> str | None:
    """The level the sign-up reaches, after checking that the app offers it and accepts that level
    (``DownstreamFailure`` otherwise: nothing is created for an app that would refuse the result)."""
    party = flow.party_for(j.registry, waiting)
    policy = j.settings.assurance
    reached = policy.with_second_factor(None)
    if not offered(j, party):
        raise DownstreamFailure(errors.UnknownUpstream(detail=f"passkey sign-up not allowed for "
                                                              f"{party.party_id!r}"), waiting)
    if not policy.satisfies(reached, waiting.acr_values, waiting.acr_comparison):
        raise DownstreamFailure(errors.InsufficientAssurance(detail=f"passkey sign-up reaches {reached!r}, not "
                                                                    f"{waiting.acr_values!r}"), waiting)
    return reached


def begin(j: Journeys, browser: Browser, discovery: str) -> Page:
    """The page that explains the sign-up and asks the browser to create a passkey, for the login waiting on the
    discovery page ``discovery`` (which stays, so the person may go back and choose a provider)."""
    waiting = login.waiting_login(j, browser, discovery)
    _check(j, waiting)
    subject = secrets.token_urlsafe(SUBJECT_BYTES)
    return _page(j, browser, waiting, discovery, subject, attempts=0, failed=False)


def _page(j: Journeys, browser: Browser, waiting: LoginRequest, discovery: str, subject: str, *, attempts: int,
          failed: bool) -> Page:
    now = j.now()
    ceremony = _passkeys(j).registration_options(subject, j.settings.brand_name, now)  # a new challenge each page
    record = PasskeySignUp(login=waiting, discovery=discovery, subject=subject, state=ceremony.state,
                           attempts=attempts)
    handle = put_record(j.pending, record, now + j.settings.pending_login_lifetime)
    browser.bind(handle)
    party = j.registry.downstream(waiting.downstream)
    return Page(PAGE, {"handle": handle, "options": ceremony.options_json, "failed": failed,
                       "discovery": discovery, "app_name": party.display_name if party else None,
                       "max_name": NAME_LENGTH}, no_store=True)


def finish(j: Journeys, browser: Browser, handle: str, credential: str, name: str) -> Outcome:
    """The browser's registration response: verified, a new account with this passkey is created and signed in
    to the waiting app; refused, the page asks again (a new challenge), up to ``MAX_ATTEMPTS``."""
    record = take_bound(j, browser, PasskeySignUp, handle, "passkey sign-up")
    waiting, now = record.login, j.now()
    reached = _check(j, waiting)
    passkeys = _passkeys(j)
    try:
        new = passkeys.verify_registration(record.subject, credential, record.state, now)
    except ValueError as exc:
        log.info("passkey sign-up refused: %s", exc)
        return _refused(j, browser, record)
    display_name = " ".join(name.split())[:NAME_LENGTH]
    amr = (*new.amr, "mfa")
    account = _create(j, record.subject, display_name, new, reached, amr)
    if account is None:
        return _refused(j, browser, record)
    # the discovery page's waiting login is used up with this sign-in
    if browser.unbind(record.discovery):
        take_record(j.pending, LoginAtDiscovery, record.discovery, now)
    try:
        party = flow.party_for(j.registry, waiting)
        result = flow.answer_for_account(j.accounts, party, waiting, account.account_id,
                                         passwordless.PASSKEY_UPSTREAM, reached, now, amr,
                                         j.release_cap(party.party_id), j.settings.release_unverified_email,
                                         j.settings.profile, j.settings.assurance)
    except errors.BrokerError as exc:
        raise DownstreamFailure(exc, waiting) from exc
    return login.start_session(j, browser, replace(result, created_account=True), reached, (), now)


def _refused(j: Journeys, browser: Browser, record: PasskeySignUp) -> Page:
    j.audit(AuditKind.LOGIN_FAILED, upstream=passwordless.PASSKEY_UPSTREAM, downstream=record.login.downstream,
            reason="passkey sign-up refused")
    attempts = record.attempts + 1
    if attempts >= MAX_ATTEMPTS:
        raise DownstreamFailure(errors.UpstreamVerificationFailed(detail="passkey sign-up: too many tries"),
                                record.login)
    return _page(j, browser, record.login, record.discovery, record.subject, attempts=attempts, failed=True)


def _create(j: Journeys, subject: str, display_name: str, new: NewPasskey, reached: str | None,
            amr: tuple[str, ...]) -> Account | None:
    """The account with its broker-local identity and the verified passkey, audited; None (and no account left)
    when the passkey cannot be stored."""
    now = j.now()
    identity = UpstreamIdentity(passwordless.PASSKEY_UPSTREAM, SIGN_UP_ISSUER, subject,
                                {"name": display_name} if display_name else {}, reached, now, amr)
    account, created = j.accounts.create_with_identity(identity, now)
    if not created:  # a random 256-bit subject taken: never expected, and never another's account to sign in
        raise errors.LoginStateInvalid(detail="passkey sign-up subject already in use")
    try:
        added = _passkeys(j).add(account.account_id, PASSKEY_NAME, new, now)
    except ValueError as exc:
        log.info("passkey sign-up undone account=%s: %s", account.account_id, exc)
        j.accounts.delete_account(account.account_id)
        j.audit(AuditKind.ACCOUNT_DELETED, account_id=account.account_id, upstream=passwordless.PASSKEY_UPSTREAM,
                reason="passkey sign-up undone: the passkey could not be stored")
        return None
    j.audit(AuditKind.ACCOUNT_CREATED, account_id=account.account_id, upstream=passwordless.PASSKEY_UPSTREAM,
            reason="passkey sign-up")
    j.audit(AuditKind.AUTHENTICATOR_ADDED, account_id=account.account_id,
            reason=f"{added.kind.value} {added.authenticator_id}; sign-up")
    return account
