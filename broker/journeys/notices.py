"""E-mail notices to the citizen (issue 17): every change to their second factors (a factor added or removed,
new recovery codes) is told to them by e-mail, so that a change they did not make (someone holding their upstream
sign-in) does not go unnoticed.

A notice goes only to the address of the account's profile that its upstream marked verified (``email`` with
``email_verified: true``): an unverified address may belong to someone else. It says what changed and when, never
a secret, a code or the factor's name (which whoever made the change chose), and what to do if it was not them.
Sending is best effort: no mailer wired, no verified address, or a refusal (``MailNotSent``: logged and audited
as ``notice-not-sent``) never undoes the change or breaks its page.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from broker.core.audit import AuditKind
from broker.core.factors import FactorKind
from broker.core.notify import MailNotSent, Notice, deliver
from broker.core.security_events import SecurityEvent
from broker.journeys.context import Journeys

log = logging.getLogger(__name__)

#: what changed, in the notice's words, by (kind, added)
ADDED = {FactorKind.TOTP: "An authenticator app was added to your account.",
         FactorKind.PASSKEY: "A passkey was added to your account.",
         FactorKind.RECOVERY: "New recovery codes were made for your account; any earlier codes no longer work.",
         FactorKind.EMAIL: "An e-mail address was added to your account to receive sign-in codes."}
REMOVED = {FactorKind.TOTP: "An authenticator app was removed from your account.",
           FactorKind.PASSKEY: "A passkey was removed from your account.",
           FactorKind.RECOVERY: "The recovery codes were removed from your account.",
           FactorKind.EMAIL: "An e-mail address for sign-in codes was removed from your account."}


def added(kind: FactorKind) -> str:
    return ADDED[kind]


def removed(kind: FactorKind) -> str:
    return REMOVED[kind]


def verified_address(j: Journeys, account_id: str) -> str | None:
    """The account's e-mail address when its upstream said it is verified; else None."""
    claims = j.accounts.last_claims(account_id)
    email = claims.get("email")
    if claims.get("email_verified") is not True or not isinstance(email, str) or not email.strip():
        return None
    return email.strip()


MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")


def when(at: datetime) -> str:
    """``7 December 2026 at 14:05 UTC`` (English month names whatever the process's locale)."""
    at = at.astimezone(UTC)
    return f"{at.day} {MONTHS[at.month - 1]} {at.year} at {at:%H:%M} UTC"


def authenticator_notice(j: Journeys, to: str, what: str) -> Notice:
    brand = j.settings.brand_name
    text = (
        "Hello,\n\n"
        f"{what}\n"
        f"When: {when(j.now())}\n\n"
        "If this was not you, sign in to the portal at once, remove any sign-in factor you do not know on its "
        "\"Sign-in security\" page, and contact support: someone else may be able to sign in as you.\n\n"
        f"This message was sent by {brand} because the sign-in security of your account changed. "
        "Please do not reply to it.\n"
    )
    return Notice(to, f"{brand}: the sign-in security of your account changed", text)


#: CAEP 1.0 §3.3 ``credential_type`` of each factor; the e-mail and recovery codes have no registered value
CREDENTIAL_TYPES = {FactorKind.TOTP: "app", FactorKind.PASSKEY: "fido2-platform",
                    FactorKind.EMAIL: "x-email-code", FactorKind.RECOVERY: "x-recovery-code"}


def tell_authenticator_change(j: Journeys, account_id: str, what: str, *, kind: FactorKind,
                              change: str) -> bool:
    """E-mail the account's verified address that ``what`` changed (a sentence such as ``added(kind)``), and
    tell the apps that asked for it (CAEP ``credential-change``: ``change`` is its ``change_type``, "create",
    "update" or "delete"); True when the mail server took the notice. Never raises for the mail: the change
    stands either way."""
    if j.security_events is not None:
        j.security_events.emit(SecurityEvent.CREDENTIAL_CHANGE, account_id, j.now(),
                               {"change_type": change, "credential_type": CREDENTIAL_TYPES[kind]})
    if j.mailer is None:
        log.info("notice of a sign-in factor change skipped: no mail server configured ([mail] smtp_host) "
                 "account=%s", account_id)
        return False
    to = verified_address(j, account_id)
    if to is None:
        log.info("notice of a sign-in factor change skipped: no verified e-mail address account=%s", account_id)
        return False
    try:
        deliver(j.mailer, authenticator_notice(j, to, what))
    except MailNotSent as exc:
        log.warning("notice of a sign-in factor change not sent account=%s: %s", account_id, exc.reason)
        j.audit(AuditKind.NOTICE_NOT_SENT, account_id=account_id, reason=f"authenticator change: {exc.reason}",
                reference=j.observer.reference())
        return False
    return True
