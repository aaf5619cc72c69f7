"""Adding a passkey in the portal's "Sign-in security" page (issue 17): a WebAuthn registration ceremony
(WebAuthn Level 3 §7.1) whose options (a discoverable credential, user verification required, the account's
passkeys excluded) and state the ``Passkeys`` port makes; the state waits server-side in a ``PasskeyEnrolment``
record bound to this browser and its SSO session, and the browser's answer is verified against it (origin, RP
ID, challenge) before the passkey is stored.

The same rule as for authenticator apps holds (``broker.journeys.authenticators``): adding a factor while the
account already has one needs a session that reached the second-factor level.
"""

from __future__ import annotations

import logging

from broker.core import errors
from broker.core.factor_records import PasskeyEnrolment
from broker.core.factors import Passkeys
from broker.core.outcomes import Page
from broker.core.pending_records import put_record
from broker.core.texts import N_
from broker.journeys import authenticators
from broker.journeys.context import Browser, Journeys
from broker.journeys.handles import take_bound

log = logging.getLogger(__name__)
ENROL = "portal_security_passkey.html"


def _passkeys(j: Journeys) -> Passkeys:
    if j.passkeys is None:
        raise errors.InvalidRequest(N_("Passkeys are not available here."), detail="passkeys not wired")
    return j.passkeys


def start(j: Journeys, browser: Browser, name: str) -> Page:
    """The page that asks the browser to create a passkey for the signed-in account."""
    sso = authenticators.signed_in(browser)
    factors = authenticators.enrolled_factors(j)
    name = " ".join(name.split())[:authenticators.NAME_LENGTH]
    if not name:
        return authenticators.listing_page(j, sso, status=400, name_missing=True)
    if factors.of(sso.account_id) and not authenticators.reached_second_factor(j, sso):
        return authenticators.needs_second_factor(j, sso, "add")
    ceremony = _passkeys(j).registration_options(sso.account_id, authenticators.label(j, sso.account_id), j.now())
    return _page(j, browser, PasskeyEnrolment(account=sso.account_id, sid=sso.sid, name=name,
                                              state=ceremony.state), ceremony.options_json, failed=False)


def _page(j: Journeys, browser: Browser, record: PasskeyEnrolment, options_json: str, *, failed: bool) -> Page:
    handle = put_record(j.pending, record, j.now() + j.settings.pending_login_lifetime)
    browser.bind(handle)
    return Page(ENROL, {"handle": handle, "name": record.name, "options": options_json, "failed": failed},
                no_store=True)


def confirm(j: Journeys, browser: Browser, handle: str, credential: str) -> Page:
    """The browser's registration response: verified, the passkey is added; refused, the page asks again (a new
    challenge)."""
    record = take_bound(j, browser, PasskeyEnrolment, handle, "passkey registration")
    sso = browser.sso()
    if sso is None or sso.sid != record.sid or sso.account_id != record.account:
        raise errors.LoginStateInvalid(N_("Please sign in and start adding your passkey again."),
                                       detail="passkey registration outside the SSO session it began in")
    passkeys, now = _passkeys(j), j.now()
    try:
        added = passkeys.register(record.account, record.name, credential, record.state, now)
    except ValueError as exc:
        log.info("passkey registration refused account=%s: %s", record.account, exc)
        ceremony = passkeys.registration_options(record.account, authenticators.label(j, record.account), now)
        return _page(j, browser, PasskeyEnrolment(account=record.account, sid=record.sid, name=record.name,
                                                  state=ceremony.state), ceremony.options_json, failed=True)
    return authenticators.enrolled(j, sso, authenticators.enrolled_factors(j), added)
