"""What the citizen portal shows and does about one account: the data it gathers for its pages, the export of
everything the broker holds (GDPR Art. 15 and 20: access and portability) and erasure (Art. 17).

Nothing here returns a secret: no token, no key, no sealed value; the stores keep tokens only as hashes anyway.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import gettext as _

from broker.core.audit import AuditKind
from broker.core.claims import ClaimValue
from broker.core.consent import ConsentHow
from broker.core.display import readable_name
from broker.core.model import PORTAL_PARTY, LinkedIdentity, Protocol
from broker.web.http import audit
from broker.web.services import Services

#: how many audit records the export and the apps page read at most
AUDIT_LIMIT = 1000


@dataclass(frozen=True)
class IdentityView:
    identity: LinkedIdentity
    upstream_name: str
    acr: str | None
    claims: Mapping[str, ClaimValue]


@dataclass(frozen=True)
class AppUse:
    party_id: str
    name: str
    last_used: datetime | None
    logo_uri: str | None = None


def identities(svc: Services, account_id: str) -> list[IdentityView]:
    """The account's linked identities with what each last asserted. With ``identity_claims`` (per identity,
    with acr) when the store has it; otherwise the most recently used identity's claims only."""
    linked = list(svc.accounts.identities(account_id))
    per_identity: dict[tuple[str, str], tuple[Mapping[str, ClaimValue], str | None]] = {}
    reader = getattr(svc.accounts, "identity_claims", None)
    if reader is not None:
        for item in reader(account_id):
            per_identity[(item.identity.issuer, item.identity.subject)] = (item.claims, item.acr)
    elif linked:
        newest = max(linked, key=lambda i: i.last_used)
        per_identity[(newest.issuer, newest.subject)] = (svc.accounts.last_claims(account_id), None)
    views = []
    for identity in linked:
        upstream = svc.registry.upstream(identity.upstream)
        claims, acr = per_identity.get((identity.issuer, identity.subject), ({}, None))
        views.append(IdentityView(identity, upstream.display_name if upstream else identity.upstream, acr, claims))
    return views


def apps_used(svc: Services, account_id: str) -> list[AppUse]:
    """Apps with a consent in force or a successful sign-in on record, newest use first."""
    last: dict[str, datetime | None] = {}
    for record in svc.audit.events(account_id=account_id, limit=AUDIT_LIMIT):
        if record.kind == AuditKind.LOGIN_SUCCEEDED.value and record.downstream \
                and record.downstream != PORTAL_PARTY.party_id and record.downstream not in last:
            last[record.downstream] = record.at
    for consent in svc.consents.in_force(account_id):
        if consent.how is not ConsentHow.WITHDRAWN:
            last.setdefault(consent.party_id, None)
    uses = [AppUse(party_id, app_name(svc, party_id), at, app_logo(svc, party_id)) for party_id, at in last.items()]
    return sorted(uses, key=lambda u: (u.last_used is None, -(u.last_used.timestamp() if u.last_used else 0)))


def app_name(svc: Services, party_id: str) -> str:
    """The app's display name; for an app no longer registered, its id's host, never the id (``core.display``)."""
    party = svc.registry.downstream(party_id)
    return party.display_name if party is not None else readable_name((), party_id, _("an app no longer registered"))


def app_logo(svc: Services, party_id: str) -> str | None:
    party = svc.registry.downstream(party_id)
    return party.logo_uri if party is not None else None


def upstream_name(svc: Services, name: str) -> str:
    """An upstream's display name (a directory IdP is named by its entity id: its metadata name), never a URL."""
    upstream = svc.registry.upstream(name)
    return upstream.display_name if upstream is not None else readable_name((), name)


def export(svc: Services, account_id: str) -> dict[str, Any]:
    """Everything the broker holds about the account, as JSON-ready data."""
    account = svc.accounts.get(account_id)
    return {
        "account": {"id": account_id, "created_at": account.created_at.isoformat() if account else None},
        "identities": [
            {"upstream": v.identity.upstream, "upstream_name": v.upstream_name, "issuer": v.identity.issuer,
             "subject": v.identity.subject, "first_used": v.identity.first_used.isoformat(),
             "last_used": v.identity.last_used.isoformat(), "last_acr": v.acr, "claims": dict(v.claims)}
            for v in identities(svc, account_id)
        ],
        "consents": [
            {"app": c.party_id, "how": c.how.value, "granted": sorted(c.granted), "declined": sorted(c.declined),
             "policy_version": c.policy_version, "at": c.at.isoformat()}
            for c in svc.consents.history(account_id)
        ],
        "sso_sessions": [
            {"upstream": s.upstream, "created_at": s.created_at.isoformat(), "last_seen": s.last_seen.isoformat(),
             "expires_at": s.expires_at.isoformat(), "ended_at": s.ended_at.isoformat() if s.ended_at else None,
             "user_agent": s.user_agent}
            for s in svc.sso_sessions.all_of(account_id)
        ],
        "audit_events": [
            {"at": r.at.isoformat(), "kind": r.kind, "upstream": r.upstream, "app": r.downstream, "reason": r.reason}
            for r in svc.audit.events(account_id=account_id, limit=AUDIT_LIMIT)
        ],
    }


def delete(svc: Services, account_id: str, party_ids: Sequence[str]) -> None:
    """Erase the account: end its sessions, revoke its OpenID grants, delete it (the cascades remove identities,
    consents, grants and sessions) and write ``ACCOUNT_DELETED`` naming only the pseudonymous id."""
    now = svc.clock.now()
    svc.sso_sessions.end_all(account_id, now)
    for party_id in party_ids:
        party = svc.registry.downstream(party_id)
        if party is None or party.protocol is Protocol.OIDC:
            svc.oidc.store.revoke_for(party_id, account_id, now)
    svc.accounts.delete_account(account_id)
    audit.record(AuditKind.ACCOUNT_DELETED, account_id=account_id, reason="portal")
