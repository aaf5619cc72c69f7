"""Adding e-mail codes in the portal's "Sign-in security" page (issue 17; the codes: ``broker.journeys.email_codes``).

Offered only when a mail server is wired. The citizen gives an address (the page pre-fills the account's verified
one, ``notices.verified_address``); ``start`` sends a code there and keeps only its salted hash in an
``EmailEnrolment`` record bound to this browser and its SSO session; ``confirm`` takes that record once and adds
the factor only when the code entered is the one sent and still valid, so the address is proven to be the
person's. A wrong code shows the page again under a new handle (``authenticators.MAX_ATTEMPTS`` per enrolment).

The same rules as for an authenticator app hold (``broker.journeys.authenticators``): adding a factor while the
account has one needs an SSO session at the second-factor level; every factor added is audited and told by
e-mail (``notices.tell_authenticator_change``). Because ``start`` mails any address the person types, it may send
at most ``MAX_STARTS_PER_HOUR`` codes for an account (counted in the audit trail): the broker is not a way to
flood someone's mailbox.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from broker.core import errors
from broker.core.audit import AuditKind
from broker.core.factor_records import EmailEnrolment
from broker.core.factors import FactorKind
from broker.core.outcomes import Page
from broker.core.pending_records import put_record
from broker.core.texts import N_
from broker.journeys import authenticators, email_codes, notices
from broker.journeys.context import Browser, Journeys
from broker.journeys.handles import take_bound

ENROL_EMAIL = "portal_security_email.html"
MAX_STARTS_PER_HOUR = 5
ADDRESS_LENGTH = 254  # RFC 5321 §4.5.3.1.3: a path holds at most 256 octets, the address two fewer
#: the audit reason of a code sent for an enrolment (``email_codes.send`` records the send itself)
STARTED = "email-code enrolment started"


def _mailer_wired(j: Journeys) -> None:
    if j.mailer is None:
        raise errors.InvalidRequest(N_("E-mail codes are not available here."), detail="no mailer wired")


def form_address(j: Journeys, account_id: str) -> str:
    """What the address field is pre-filled with: the account's verified address, or nothing."""
    return notices.verified_address(j, account_id) or ""


def plausible(address: str) -> bool:
    """One address on one line: something, ``@``, a domain with a dot; no spaces or control characters. (Whether
    it is the person's is proven by the code, not by its form.)"""
    local, at, domain = address.rpartition("@")
    return bool(at and local and "." in domain.strip(".")) and len(address) <= ADDRESS_LENGTH \
        and not any(c.isspace() or ord(c) < 32 or c in "<>,;\"" for c in address)


def _recent_starts(j: Journeys, account_id: str) -> int:
    since = j.now() - timedelta(hours=1)
    return sum(1 for r in j.audit_trail.events(account_id, limit=100)
               if r.kind == AuditKind.SECOND_FACTOR.value and r.reason == STARTED and r.at >= since)


def start(j: Journeys, browser: Browser, name: str, address: str) -> Page:
    """Send a code to ``address`` and show the form for it; the factor is not added yet."""
    sso = authenticators.signed_in(browser)
    factors = authenticators.enrolled_factors(j)
    _mailer_wired(j)
    address = address.strip()
    name = " ".join(name.split())[:authenticators.NAME_LENGTH] or email_codes.mask(address)
    if not plausible(address):
        return authenticators.listing_page(j, sso, status=400, email_invalid=True)
    if factors.of(sso.account_id) and not authenticators.reached_second_factor(j, sso):
        return authenticators.needs_second_factor(j, sso, "add")
    if _recent_starts(j, sso.account_id) >= MAX_STARTS_PER_HOUR:
        return authenticators.listing_page(j, sso, status=429, email_too_many=True)
    j.audit(AuditKind.SECOND_FACTOR, account_id=sso.account_id, reason=STARTED)
    now = j.now()
    sent = email_codes.send(j, sso.account_id, address, "Enter it on the \"Sign-in security\" page to add this "
                            "address as a way to confirm it is you.", now)
    if sent is None:
        return authenticators.listing_page(j, sso, status=503, email_not_sent=True)
    code, until = sent
    record = EmailEnrolment(account=sso.account_id, sid=sso.sid, name=name, address=address, code=code, until=until)
    return _page(j, browser, record, wrong=False)


def _page(j: Journeys, browser: Browser, record: EmailEnrolment, *, wrong: bool) -> Page:
    handle = put_record(j.pending, record, j.now() + j.settings.pending_login_lifetime)
    browser.bind(handle)
    return Page(ENROL_EMAIL, {
        "handle": handle, "name": record.name, "sent_to": email_codes.mask(record.address), "wrong": wrong,
        "attempts_left": authenticators.MAX_ATTEMPTS - record.attempts,
        "minutes": int(email_codes.CODE_LIFETIME.total_seconds() // 60),
    }, no_store=True)


def confirm(j: Journeys, browser: Browser, handle: str, code: str) -> Page:
    """The code sent to the address: right and in time, the factor is added; wrong, the page again until
    ``MAX_ATTEMPTS``; too late, the person starts again."""
    record = take_bound(j, browser, EmailEnrolment, handle, "e-mail code enrolment")
    sso = browser.sso()
    if sso is None or sso.sid != record.sid or sso.account_id != record.account:
        raise errors.LoginStateInvalid(N_("Please sign in and start adding your e-mail address again."),
                                       detail="e-mail code enrolment outside the SSO session it began in")
    factors = authenticators.enrolled_factors(j)
    now = j.now()
    if email_codes.expired(record.until, now):
        return authenticators.listing_page(j, sso, status=400, email_expired=True)
    if email_codes.matches("".join(code.split()), record.code, record.until, now):
        added = factors.add_email(record.account, record.name, record.address, now)
        j.audit(AuditKind.AUTHENTICATOR_ADDED, account_id=sso.account_id,
                reason=f"{added.kind.value} {added.authenticator_id}")
        notices.tell_authenticator_change(j, sso.account_id, notices.added(FactorKind.EMAIL),
                                          kind=FactorKind.EMAIL, change="create")
        return authenticators.listing_page(j, sso, added=added.name)
    attempts = record.attempts + 1
    if attempts >= authenticators.MAX_ATTEMPTS:
        return authenticators.listing_page(j, sso, status=400, too_many=True)
    return _page(j, browser, replace(record, attempts=attempts), wrong=True)
