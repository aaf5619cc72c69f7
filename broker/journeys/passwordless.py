"""Signing in with a passkey alone (issue 17): for citizens without a social or government account, a passkey
enrolled in the portal is a sign-in method of its own, offered on the discovery page as the broker-local
upstream ``passkey``. The account is the one the passkey was enrolled for, the same one their linked identities
reach.

The ceremony is WebAuthn authentication with no allow list (a discoverable credential names its account,
WebAuthn §6.1) and user verification required: possession of the key plus the person's fingerprint, face or PIN,
which is two factors (RFC 8176 ``hwk``, ``user``, ``mfa``), so the sign-in reaches the second-factor level
(``[assurance] second_factor_level``). An app that names its upstreams must name ``passkey`` to be offered it.
"""

from __future__ import annotations

import logging

from broker.core import errors, flow
from broker.core.audit import AuditKind
from broker.core.factor_records import PasskeySignIn
from broker.core.factors import PASSKEY_UPSTREAM as PASSKEY_UPSTREAM  # the local upstream's name, named here too
from broker.core.factors import Passkeys
from broker.core.model import DownstreamParty, LoginRequest
from broker.core.outcomes import Outcome, Page
from broker.core.pending_records import LoginAtDiscovery, put_record, take_record
from broker.journeys import account_status, login
from broker.journeys.context import Browser, DownstreamFailure, Journeys
from broker.journeys.handles import take_bound

log = logging.getLogger(__name__)
PAGE = "passkey_sign_in.html"
MAX_ATTEMPTS = 5


def offered(j: Journeys, party: DownstreamParty) -> bool:
    """Whether ``party``'s discovery page offers signing in with a passkey."""
    return j.passkeys is not None and (not party.allowed_upstreams or PASSKEY_UPSTREAM in party.allowed_upstreams)


def _passkeys(j: Journeys) -> Passkeys:
    if j.passkeys is None:
        raise errors.UnknownUpstream(detail="passkeys are not wired")
    return j.passkeys


def begin(j: Journeys, browser: Browser, discovery: str) -> Page:
    """The page that asks the browser for a passkey, for the login waiting on the discovery page ``discovery``
    (which stays, so the person may go back and choose a provider)."""
    waiting = login.waiting_login(j, browser, discovery)
    party = flow.party_for(j.registry, waiting)
    if not offered(j, party):
        raise DownstreamFailure(errors.UnknownUpstream(detail=f"{PASSKEY_UPSTREAM} not allowed for "
                                                              f"{party.party_id!r}"), waiting)
    return _page(j, browser, waiting, discovery, attempts=0, failed=False)


def _page(j: Journeys, browser: Browser, waiting: LoginRequest, discovery: str, *, attempts: int,
          failed: bool) -> Page:
    now = j.now()
    ceremony = _passkeys(j).authentication_options(None, now)  # a new challenge for every page
    record = PasskeySignIn(login=waiting, discovery=discovery, state=ceremony.state, attempts=attempts)
    handle = put_record(j.pending, record, now + j.settings.pending_login_lifetime)
    browser.bind(handle)
    party = j.registry.downstream(waiting.downstream)
    return Page(PAGE, {"handle": handle, "options": ceremony.options_json, "failed": failed,
                       "discovery": discovery, "app_name": party.display_name if party else None}, no_store=True)


def finish(j: Journeys, browser: Browser, handle: str, credential: str) -> Outcome:
    """The browser's assertion: a passkey of some account, with the person verified, signs that account in."""
    record = take_bound(j, browser, PasskeySignIn, handle, "passkey sign-in")
    waiting, now = record.login, j.now()
    try:
        use = _passkeys(j).authenticate(credential, record.state, now)
    except ValueError as exc:
        log.info("passwordless sign-in refused: %s", exc)
        use = None
    if use is None or not use.user_verified:
        j.audit(AuditKind.LOGIN_FAILED, upstream=PASSKEY_UPSTREAM, downstream=waiting.downstream,
                reason="passkey refused")
        attempts = record.attempts + 1
        if attempts >= MAX_ATTEMPTS:
            raise DownstreamFailure(errors.UpstreamVerificationFailed(detail="passkey sign-in: too many tries"),
                                    waiting)
        return _page(j, browser, waiting, record.discovery, attempts=attempts, failed=True)
    # the discovery page's waiting login is used up with this sign-in
    if browser.unbind(record.discovery):
        take_record(j.pending, LoginAtDiscovery, record.discovery, now)
    assurance = j.settings.assurance
    reached = assurance.with_second_factor(None)
    try:
        party = flow.party_for(j.registry, waiting)
        if not offered(j, party):
            raise errors.UnknownUpstream(detail=f"{PASSKEY_UPSTREAM} not allowed for {party.party_id!r}")
        result = flow.answer_for_account(j.accounts, party, waiting, use.account_id, PASSKEY_UPSTREAM, reached,
                                         now, (*use.amr, "mfa"), j.release_cap(party.party_id),
                                         j.settings.release_unverified_email, j.settings.profile, assurance)
    except errors.BrokerError as exc:
        raise DownstreamFailure(exc, waiting) from exc
    account_status.refuse_disabled(j, result.account, waiting, PASSKEY_UPSTREAM)
    return login.start_session(j, browser, result, reached, (), now)
