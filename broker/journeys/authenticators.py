"""The portal's "Sign-in security" page (issue 17): the second factors a citizen enrols with the broker itself
(``broker.core.factors``), listed, added and removed.

An authenticator app is added in two steps. ``start_totp`` makes a secret (160 random bits, RFC 4226 §4 R6),
keeps it in a ``TotpEnrolment`` record bound to this browser and its SSO session, and shows it as a QR code of
its ``otpauth://`` URI (Key Uri Format) and as text. ``confirm_totp`` takes that record once, adds the
authenticator and at once verifies the code entered, so the first code is both checked and spent: a code seen
at enrolment cannot be replayed for a step-up. A wrong code removes the authenticator again and shows the same
secret under a new handle (``MAX_ATTEMPTS`` per enrolment). The first authenticator app also gets ten recovery
codes, shown once.

Who holds only the upstream sign-in (a stolen password at the upstream, say) must not be able to weaken or
work around the second factor: adding a factor while the account already has one, replacing the recovery codes,
removing the last authenticator app and removing an e-mail code factor that is the last second factor all need an
SSO session that reached the second-factor level (``[assurance] second_factor_level``). Without one, the page says
so and offers to sign in with the second factor (a portal sign-in asking for that level,
``broker.web.authenticators.confirm_it_is_you``).
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any
from urllib.parse import quote, urlencode

from broker.core import errors
from broker.core.audit import AuditKind
from broker.core.factor_records import TotpEnrolment
from broker.core.factors import TOTP_CODE, Authenticator, Authenticators, FactorKind
from broker.core.outcomes import Page
from broker.core.pending_records import put_record
from broker.core.sessions import SsoSession
from broker.core.texts import N_
from broker.journeys import notices, ways_in
from broker.journeys.context import Browser, Journeys
from broker.journeys.handles import take_bound
from broker.journeys.notices import verified_address

SIGN_IN = "portal_sign_in.html"
SECURITY = "portal_security.html"
ENROL = "portal_security_enrol.html"
CODES = "portal_security_codes.html"
#: wrong first codes one enrolment may take before it must be started again
MAX_ATTEMPTS = 5
RECOVERY_COUNT = 10
#: as ``broker.storage.authenticators``: Crockford's base32, 12 characters (60 bits) in groups of four
RECOVERY_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
RECOVERY_GROUPS = (4, 4, 4)
SECRET_BYTES = 20  # 160 bits: RFC 4226 §4 R6's recommendation
NAME_LENGTH = 100
#: how recent the session's second factor must be to add, replace or remove factors (as GitHub's "sudo mode")
FRESH_FACTOR = timedelta(minutes=15)
#: the authenticator app parameters the store checks codes with (RFC 6238 defaults)
TOTP_PARAMETERS = (("algorithm", "SHA1"), ("digits", "6"), ("period", "30"))
#: the factors that stand on their own (recovery codes are their backup)
SECOND_FACTORS = frozenset({FactorKind.TOTP, FactorKind.PASSKEY, FactorKind.EMAIL})


def enrolled_factors(j: Journeys) -> Authenticators:
    if j.authenticators is None:
        raise errors.InvalidRequest(N_("Second factors are not available here."), detail="authenticators not wired")
    return j.authenticators


def signed_in(browser: Browser) -> SsoSession:
    sso = browser.sso()
    if sso is None:
        raise errors.LoginStateInvalid(N_("Please sign in to your account again."),
                                       detail="sign-in security without an SSO session")
    return sso


def reached_second_factor(j: Journeys, sso: SsoSession) -> bool:
    """Whether ``sso`` reached the second-factor level (its ``acr`` ranks at least as high) with a factor given
    within ``FRESH_FACTOR``: a session left signed in on a shared computer must not be enough to change the
    factors. With no level configured the broker never steps a sign-in up, so the factors protect nothing and
    nothing is asked."""
    policy = j.settings.assurance
    level = policy.second_factor_level
    if level is None:
        return True
    if sso.factor_at is None or j.now() - sso.factor_at > FRESH_FACTOR:
        return False
    have, need = policy.rank(sso.acr), policy.rank(level)
    if have is None or need is None:
        return sso.acr is not None and policy.canonical(sso.acr) == policy.canonical(level)
    return have >= need

def _listing(j: Journeys, sso: SsoSession, **notices: Any) -> dict[str, Any]:
    factors: Sequence[Authenticator] = enrolled_factors(j).of(sso.account_id)
    return {"factors": factors, "has_recovery": any(f.kind is FactorKind.RECOVERY for f in factors),
            "has_totp": any(f.kind is FactorKind.TOTP for f in factors),
            "second_factor_session": reached_second_factor(j, sso), "max_name": NAME_LENGTH,
            "passkeys": j.passkeys is not None, "email_codes": j.mailer is not None,
            "email_address": verified_address(j, sso.account_id) if j.mailer is not None else "", **notices}


def listing_page(j: Journeys, sso: SsoSession, status: int = 200, **notices: Any) -> Page:
    return Page(SECURITY, _listing(j, sso, **notices), status=status)


def needs_second_factor(j: Journeys, sso: SsoSession, what: str) -> Page:
    """The page explaining that ``what`` needs a sign-in with the second factor first."""
    return listing_page(j, sso, status=403, needs_second_factor=what)


def page(j: Journeys, browser: Browser) -> Page:
    """The account's second factors (name, kind, added, last used), or the sign-in page when signed out."""
    sso = browser.sso()
    if sso is None:
        return Page(SIGN_IN)
    return listing_page(j, sso)


def new_secret() -> str:
    """An authenticator app secret: ``SECRET_BYTES`` random bytes in unpadded base32 (RFC 4648)."""
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii").rstrip("=")


def otpauth_uri(secret: str, label: str, issuer: str) -> str:
    """The ``otpauth://totp/`` URI of ``secret`` (Key Uri Format): ``issuer:label`` as the path, with the
    issuer again as a parameter, and the parameters the store checks codes with."""
    path = f"{quote(issuer, safe='')}:{quote(label, safe='')}"
    query = urlencode((("secret", secret), ("issuer", issuer), *TOTP_PARAMETERS), quote_via=quote)
    return f"otpauth://totp/{path}?{query}"


def grouped(secret: str) -> str:
    """The secret in groups of four, for typing it by hand."""
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


def label(j: Journeys, account_id: str) -> str:
    email = j.accounts.last_claims(account_id).get("email")
    return email if isinstance(email, str) and email else "account"


def start_totp(j: Journeys, browser: Browser, name: str) -> Page:
    """Show a new authenticator app secret (QR code and text) with the form for its first code."""
    sso = signed_in(browser)
    factors = enrolled_factors(j)
    name = " ".join(name.split())[:NAME_LENGTH]
    if not name:
        return listing_page(j, sso, status=400, name_missing=True)
    if factors.of(sso.account_id) and not reached_second_factor(j, sso):
        return needs_second_factor(j, sso, "add")
    record = TotpEnrolment(account=sso.account_id, sid=sso.sid, name=name, secret=new_secret())
    return _enrol_page(j, browser, record, wrong=False)


def _enrol_page(j: Journeys, browser: Browser, record: TotpEnrolment, *, wrong: bool) -> Page:
    handle = put_record(j.pending, record, j.now() + j.settings.pending_login_lifetime)
    browser.bind(handle)
    return Page(ENROL, {
        "handle": handle, "name": record.name, "secret": grouped(record.secret),
        "otpauth_uri": otpauth_uri(record.secret, label(j, record.account), j.settings.brand_name),
        "issuer": j.settings.brand_name, "wrong": wrong, "attempts_left": MAX_ATTEMPTS - record.attempts,
    }, no_store=True)


def confirm_totp(j: Journeys, browser: Browser, handle: str, code: str) -> Page:
    """The first code of the app being added: right, the app is enrolled (and the code spent); wrong, the
    enrolment page again with the same secret, until ``MAX_ATTEMPTS``."""
    record = take_bound(j, browser, TotpEnrolment, handle, "authenticator enrolment")
    sso = browser.sso()
    if sso is None or sso.sid != record.sid or sso.account_id != record.account:
        raise errors.LoginStateInvalid(N_("Please sign in and start adding your authenticator app again."),
                                       detail="authenticator enrolment outside the SSO session it began in")
    factors = enrolled_factors(j)
    now = j.now()
    entered = "".join(code.split())
    if TOTP_CODE.fullmatch(entered):
        added = factors.add_totp(record.account, record.name, record.secret, now)
        # the first code is checked and spent at once: verify_totp records its time step
        verified = factors.verify_totp(record.account, entered, now)
        if verified is not None and verified.authenticator_id == added.authenticator_id:
            return enrolled(j, sso, factors, added)
        factors.remove(record.account, added.authenticator_id)
    attempts = record.attempts + 1
    if attempts >= MAX_ATTEMPTS:
        return listing_page(j, sso, status=400, too_many=True)
    return _enrol_page(j, browser, replace(record, attempts=attempts), wrong=True)


def enrolled(j: Journeys, sso: SsoSession, factors: Authenticators, added: Authenticator) -> Page:
    j.audit(AuditKind.AUTHENTICATOR_ADDED, account_id=sso.account_id,
            reason=f"{added.kind.value} {added.authenticator_id}")
    if any(f.kind is FactorKind.RECOVERY for f in factors.of(sso.account_id)):
        notices.tell_authenticator_change(j, sso.account_id, notices.added(added.kind), kind=added.kind,
                                          change="create")
        return listing_page(j, sso, added=added.name)
    shown = _codes_page(j, sso, factors, first=True, added=added.name)
    notices.tell_authenticator_change(j, sso.account_id, notices.added(added.kind) + "\n"
                                      + notices.added(FactorKind.RECOVERY),  # one notice for both
                                      kind=added.kind, change="create")
    return shown


def new_recovery_codes(j: Journeys, browser: Browser) -> Page:
    """A new set of recovery codes in place of any before, shown once."""
    sso = signed_in(browser)
    factors = enrolled_factors(j)
    if factors.of(sso.account_id) and not reached_second_factor(j, sso):
        return needs_second_factor(j, sso, "recovery-codes")
    return _codes_page(j, sso, factors, first=False, added=None)


def make_recovery_codes(count: int = RECOVERY_COUNT) -> list[str]:
    """``count`` recovery codes such as ``k7m2-9xq4-p3vd`` (the store's format), 60 random bits each."""
    def one() -> str:
        return "-".join("".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(n)) for n in RECOVERY_GROUPS)
    codes: list[str] = []
    while len(codes) < count:  # a repeat (2^-60 a pair) would be refused by the store
        code = one()
        if code not in codes:
            codes.append(code)
    return codes


def _codes_page(j: Journeys, sso: SsoSession, factors: Authenticators, *, first: bool,
                added: str | None) -> Page:
    codes = make_recovery_codes()
    factors.replace_recovery_codes(sso.account_id, codes, j.now())
    j.audit(AuditKind.AUTHENTICATOR_ADDED, account_id=sso.account_id,
            reason=f"{FactorKind.RECOVERY.value}: {'first set' if first else 'replaced'}")
    if not first:  # the first set is told with the factor it came with (``enrolled``)
        notices.tell_authenticator_change(j, sso.account_id, notices.added(FactorKind.RECOVERY),
                                          kind=FactorKind.RECOVERY, change="update")
    return Page(CODES, {"codes": codes, "first": first, "added": added}, no_store=True)


def remove(j: Journeys, browser: Browser, authenticator_id: str) -> Page:
    """Remove one of the account's factors; the last authenticator app, and an e-mail code factor when no other
    second factor (app, passkey, e-mail) would remain, only from a session that reached the second-factor level."""
    sso = signed_in(browser)
    factors = enrolled_factors(j)
    owned = factors.of(sso.account_id)
    target = next((f for f in owned if f.authenticator_id == authenticator_id), None)
    if target is None:
        raise errors.InvalidRequest(N_("There is no such sign-in factor on your account."),
                                    detail=f"no authenticator {authenticator_id[:64]!r} on the account")
    if not ways_in.may_remove_factor(j, sso.account_id, target.authenticator_id):
        return Page(ways_in.LAST, {"passkey": True}, status=409)  # the last passkey of a passkey-only account
    last_app = target.kind is FactorKind.TOTP and not any(
        f.kind is FactorKind.TOTP and f.authenticator_id != target.authenticator_id for f in owned)
    last_email = target.kind is FactorKind.EMAIL and not any(
        f.kind in SECOND_FACTORS and f.authenticator_id != target.authenticator_id for f in owned)
    if (last_app or last_email) and not reached_second_factor(j, sso):
        return needs_second_factor(j, sso, "remove")
    if not factors.remove(sso.account_id, target.authenticator_id):
        raise errors.InvalidRequest(N_("There is no such sign-in factor on your account."),
                                    detail=f"authenticator {target.authenticator_id} already removed")
    j.audit(AuditKind.AUTHENTICATOR_REMOVED, account_id=sso.account_id,
            reason=f"{target.kind.value} {target.authenticator_id}")
    notices.tell_authenticator_change(j, sso.account_id, notices.removed(target.kind), kind=target.kind,
                                      change="delete")
    return listing_page(j, sso, removed=target.name)
