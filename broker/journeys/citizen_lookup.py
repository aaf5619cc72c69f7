"""The help desk's look-up of one citizen (issue 19, role ``support``): find the account, then see how it signs
in, where it is signed in, what it consented to, and what went wrong lately, without any claim value.

A citizen is found one way at a time, never listed: by a verified e-mail address (the accounts' keyed blind index,
``AccountStore.verified_email_owners``: the address itself is never stored or audited), by a sign-in method
(an upstream's name and the subject it asserts), by the id an app knows the citizen by (its pairwise OIDC
``sub`` or SAML persistent NameID, which the app's own help desk reads from its records), by the support
reference the citizen read from an error page (the audit records carrying it, ``AuditTrail.events(reference=...)``),
or by the account id itself.

Every look-up that finds an account is an audit record *of that account* (``OPERATOR_LOOKUP``): the citizen's
own data download then shows who looked at the account and how, and who did (``by``: "operator <id> (<roles>)" at
the console and the admin API, "client <client id>" for an automation client of the admin API) is in the reason.
The
summary holds names, times, kinds and the broker's own words (error classes, reasons, references); the claims
an upstream asserted are shown only through ``reveal`` (permission ``reveal-claims``, a fresh sign-in, audited
with what was shown).
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from broker.core.audit import AuditKind
from broker.core.audit_chain import ChainedRecord
from broker.core.claims import ClaimValue
from broker.core.consent import Consent
from broker.core.email_address import canonical_email
from broker.core.factors import Authenticator
from broker.core.ports import SsoSessionRecord
from broker.journeys import account_data
from broker.journeys.context import Journeys

#: the audit kinds that tell why a sign-in did not work
FAILURE_KINDS = frozenset({AuditKind.LOGIN_FAILED.value, AuditKind.SECOND_FACTOR.value,
                           AuditKind.RISK_CHALLENGE.value, AuditKind.REQUEST_REFUSED.value,
                           AuditKind.RATE_LIMITED.value, AuditKind.CONSENT_DECLINED.value,
                           AuditKind.GRANT_REVOKED.value})
RECENT = 30
#: the most accounts one look-up lists (a shared address can belong to a few, never to many)
MAX_FOUND = 10
#: the most accounts of one app a look-up by the id the app knows tries (about 0.5 s per 100,000 on PostgreSQL)
MAX_APP_ACCOUNTS = 1_000_000


@dataclass(frozen=True)
class Method:
    """One linked sign-in method: the upstream's name as citizens see it, and when it was used."""

    upstream: str
    display_name: str
    first_used: datetime
    last_used: datetime


@dataclass(frozen=True)
class CitizenSummary:
    account_id: str
    created_at: datetime
    disabled_at: datetime | None
    methods: tuple[Method, ...]
    sessions: tuple[SsoSessionRecord, ...]
    consents: tuple[Consent, ...]
    factors: tuple[Authenticator, ...]
    #: the account's newest audit records, and those of them that tell of a failure
    recent: tuple[ChainedRecord, ...]
    failures: tuple[ChainedRecord, ...]


@dataclass(frozen=True)
class Found:
    """A look-up's answer: the accounts it found, and for a support reference its records (a failure before any
    account was known names none, and the records alone say what went wrong)."""

    accounts: tuple[str, ...]
    records: tuple[ChainedRecord, ...] = ()


def by_email(j: Journeys, by: str, email: str) -> Found:
    """``by`` names who looks (module docstring), for the audit record."""
    address = canonical_email(email)
    owners = j.accounts.verified_email_owners(address) if address else ()
    return _found(j, by, [o.account_id for o in owners], "by a verified e-mail address")


def by_method(j: Journeys, by: str, upstream: str, subject: str) -> Found:
    party = j.registry.upstream(upstream)
    account = j.accounts.find_by_identity(party.issuer, subject) if party is not None and subject else None
    return _found(j, by, [account.account_id] if account else [], f"by sign-in method {upstream:.64}")


def by_app_subject(j: Journeys, by: str, app: str, subject: str) -> Found:
    """The account an app knows as ``subject`` (its OIDC ``sub`` or SAML persistent NameID, pairwise per app): the
    identifiers are one-way (HMAC), so each account that ever answered that app's consent question (the consents'
    index by app) is tried, at most ``MAX_APP_ACCOUNTS``; a transient NameID names no one."""
    if j.app_subject is None or not app or not subject:
        return _found(j, by, [], "")
    candidates = j.consents.accounts_with(app, MAX_APP_ACCOUNTS)
    matches = [a for a in candidates if hmac.compare_digest(j.app_subject(app, a) or "", subject)]
    return _found(j, by, matches, f"by the id app {app:.128} knows")


def by_reference(j: Journeys, by: str, reference: str) -> Found:
    records = tuple(j.audit_trail.events(reference=reference, limit=RECENT)) if reference else ()
    found = _found(j, by, [r.account_id for r in records if r.account_id], "by support reference")
    return Found(found.accounts, records)


def by_account(j: Journeys, by: str, account_id: str) -> Found:
    account = j.accounts.get(account_id) if account_id else None
    return _found(j, by, [account.account_id] if account else [], "by account id")


#: the ways one citizen is found (``find``)
WAYS = ("email", "method", "app", "reference", "account")


def find(j: Journeys, by: str, way: str, value: str, upstream: str = "", app: str = "") -> Found:
    """Look one citizen up by ``way`` (one of ``WAYS``; ``method`` also names the ``upstream``, ``app`` the app),
    as the console's form and the admin API ask; ``ValueError`` for another way."""
    if way == "email":
        return by_email(j, by, value)
    if way == "method":
        return by_method(j, by, upstream, value)
    if way == "app":
        return by_app_subject(j, by, app, value)
    if way == "reference":
        return by_reference(j, by, value)
    if way == "account":
        return by_account(j, by, value)
    raise ValueError(f"no way {way!r:.20} to find a citizen")


def summary(j: Journeys, account_id: str) -> CitizenSummary | None:
    """What the help desk sees of one account (no claim values), or None when it does not exist."""
    account = j.accounts.get(account_id)
    if account is None:
        return None
    methods = tuple(Method(i.upstream, account_data.upstream_name(j, i.upstream), i.first_used, i.last_used)
                    for i in j.accounts.identities(account_id))
    recent = tuple(j.audit_trail.events(account_id=account_id, limit=RECENT))
    factors = tuple(j.authenticators.of(account_id)) if j.authenticators is not None else ()
    return CitizenSummary(account_id, account.created_at, account.disabled_at, methods,
                          tuple(j.sso_sessions.active(account_id, j.now())), tuple(j.consents.in_force(account_id)),
                          factors, recent, tuple(r for r in recent if r.kind in FAILURE_KINDS))


def reveal(j: Journeys, by: str, account_id: str) -> dict[str, ClaimValue]:
    """The account's current claims, shown to an operator allowed ``reveal-claims`` who signed in recently (the web
    layer checks both; never a client, ``core.admin_scopes.PEOPLE_ONLY``); audited with the claim names shown."""
    claims = dict(j.accounts.last_claims(account_id))
    j.audit(AuditKind.OPERATOR_REVEAL, account_id=account_id,
            reason=f"claims {', '.join(sorted(claims)) or 'none'} shown to {by}")
    return claims


def _found(j: Journeys, by: str, account_ids: Sequence[str], how: str) -> Found:
    accounts = tuple(dict.fromkeys(account_ids))[:MAX_FOUND]
    for account_id in accounts:
        j.audit(AuditKind.OPERATOR_LOOKUP, account_id=account_id, reason=f"looked up {how} by {by}")
    return Found(accounts)
