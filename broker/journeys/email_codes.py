"""E-mail one-time codes (issue 17): a fallback second factor, a code sent to an address the citizen proved in
the portal (``broker.journeys.email_enrolment``) and asked for at step-up (``broker.journeys.step_up``).

A code is ``CODE_DIGITS`` decimal digits from ``secrets`` (26.6 bits), valid ``CODE_LIFETIME``. Only
``<salt>$<HMAC-SHA256(salt, code)>`` with a fresh 128-bit salt is kept, in the pending record of the sign-in or
the enrolment it was sent for (never in the database of factors, never in a log); a code entered is compared with
``hmac.compare_digest``, and is good for that one record only, which is taken once. Guessing is bounded by the
record's wrong attempts (``step_up.MAX_ATTEMPTS``: at most 5 in 10^8) and ``MAX_SENDS`` codes per sign-in.

RFC 8176 §2 has no ``amr`` value for e-mail: a one-time code is ``otp`` (``broker.core.factors.AMR``). When the
address is at the same provider as the upstream sign-in (a Gmail address and Google sign-in), one stolen account
opens both: the broker cannot tell, so the factor is documented as a fallback, not an independent one.

The message is plain text: the code, how long it works, what it is for, and what to do if it was not the person;
nothing else secret (no handle, no link).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from datetime import datetime, timedelta

from broker.core.audit import AuditKind
from broker.core.notify import Mailer, MailNotSent, Notice, deliver
from broker.journeys.context import Journeys

log = logging.getLogger(__name__)

CODE_DIGITS = 8
CODE_LIFETIME = timedelta(minutes=10)
#: codes one waiting sign-in may have sent
MAX_SENDS = 3
#: an e-mail code as typed, spaces removed: eight ASCII digits (``\d`` would take other scripts' digits too)
EMAIL_CODE = re.compile(rf"[0-9]{{{CODE_DIGITS}}}")
SALT_BYTES = 16
_HASHED = re.compile(r"([0-9a-f]{32})\$([0-9a-f]{64})")
MASK = "\u2022\u2022\u2022"  # •••


def new_code() -> str:
    """``CODE_DIGITS`` random decimal digits (``secrets``)."""
    return f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"


def hashed(code: str, salt: bytes | None = None) -> str:
    """``<salt>$<HMAC-SHA256(salt, code)>``, with a fresh salt unless one is given."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    return f"{salt.hex()}${hmac.new(salt, code.encode('ascii'), hashlib.sha256).hexdigest()}"


def matches(entered: str, stored: str, until: int, now: datetime) -> bool:
    """Whether ``entered`` (spaces removed) is the code hashed in ``stored`` and ``now`` is before ``until`` (Unix
    seconds). The hash is compared in constant time."""
    parsed = _HASHED.fullmatch(stored)
    if parsed is None or not EMAIL_CODE.fullmatch(entered) or now.timestamp() >= until:
        return False
    return hmac.compare_digest(hashed(entered, bytes.fromhex(parsed.group(1))), stored)


def expired(until: int, now: datetime) -> bool:
    return now.timestamp() >= until


def until_of(now: datetime) -> int:
    """When a code sent at ``now`` stops working (Unix seconds)."""
    return int((now + CODE_LIFETIME).timestamp())


def mask(address: str) -> str:
    """``jane@example.org`` -> ``j•••@example.org``: enough for the person to recognise, little for anyone
    looking over their shoulder."""
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}{MASK}@{domain}" if local else f"{MASK}@{domain}"


def code_notice(j: Journeys, to: str, code: str, purpose: str) -> Notice:
    """The message carrying ``code``; ``purpose`` says what it is for (one sentence)."""
    brand = j.settings.brand_name
    minutes = int(CODE_LIFETIME.total_seconds() // 60)
    text = (
        "Hello,\n\n"
        f"Your {brand} code is: {code}\n\n"
        f"{purpose} The code works once, for {minutes} minutes.\n\n"
        "If you did not ask for it, do not give it to anyone and ignore this message: without the code, nothing "
        "changes. If this keeps happening, sign in to the portal, look at its \"Sign-in security\" page and "
        "contact support.\n\n"
        f"This message was sent by {brand}. Please do not reply to it.\n"
    )
    return Notice(to, f"{brand}: your code", text)


def send(j: Journeys, account_id: str, to: str, purpose: str, now: datetime) -> tuple[str, int] | None:
    """Send a new code to ``to``: its stored form (``hashed``) and end (``until_of``), or None when the mail
    server refused or could not be reached (logged and audited; the person is told on the page)."""
    code = new_code()
    try:
        deliver(mail_of(j), code_notice(j, to, code, purpose))
    except MailNotSent as exc:
        log.warning("e-mail code not sent account=%s: %s", account_id, exc.reason)
        j.audit(AuditKind.NOTICE_NOT_SENT, account_id=account_id, reason=f"email code: {exc.reason}",
                reference=j.observer.reference())
        return None
    j.audit(AuditKind.SECOND_FACTOR, account_id=account_id, reason="email-code sent")
    return hashed(code), until_of(now)


def mail_of(j: Journeys) -> Mailer:
    if j.mailer is None:
        raise MailNotSent("no mail server configured")
    return j.mailer
