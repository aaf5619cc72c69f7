"""What the broker holds about one account, gathered for the citizen portal (``broker.journeys.portal``): the
data of its pages, the export of everything (GDPR Art. 15 and 20: access and portability) and erasure
(Art. 17).

Nothing here returns a secret: no token, no key, no sealed value; the stores keep tokens only as hashes anyway.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from broker.core.audit import AuditKind
from broker.core.claims import ClaimValue
from broker.core.consent import ConsentHow
from broker.core.display import readable_name
from broker.core.factors import PASSKEY_UPSTREAM
from broker.core.model import PORTAL_PARTY, LinkedIdentity, Protocol
from broker.core.security_events import SecurityEvent
from broker.journeys import session_end
from broker.journeys.context import Journeys

#: how the pages name the broker-local upstream ``passkey`` (passwordless sign-in and sign-up)
PASSKEY_NAME = "Passkey"

#: how many audit records the export and the apps page read at most
AUDIT_LIMIT = 1000
#: ``readable_name``'s last resort, told apart from any name (a NUL is never a readable name)
_UNREADABLE = "\x00"


@dataclass(frozen=True)
class IdentityView:
    identity: LinkedIdentity
    upstream_name: str
    acr: str | None
    claims: Mapping[str, ClaimValue]
    #: the broker-local identity of an account created with a passkey (``broker.journeys.passkey_signup``): shown
    #: as "Passkey", its passkeys managed on the "Sign-in security" page
    passkey: bool = False


@dataclass(frozen=True)
class AppUse:
    party_id: str
    #: None: an app no longer registered whose id names no host (the page says so, translated)
    name: str | None
    last_used: datetime | None
    logo_uri: str | None = None


def identities(j: Journeys, account_id: str) -> list[IdentityView]:
    """The account's linked identities with what each last asserted (``identity_claims``, with acr)."""
    per_identity = {(item.identity.issuer, item.identity.subject): (item.claims, item.acr)
                    for item in j.accounts.identity_claims(account_id)}
    views = []
    for identity in j.accounts.identities(account_id):
        claims, acr = per_identity.get((identity.issuer, identity.subject), ({}, None))
        passkey = identity.upstream == PASSKEY_UPSTREAM
        views.append(IdentityView(identity, upstream_name(j, identity.upstream) if passkey else
                                  _registered_name(j, identity.upstream), acr, claims, passkey))
    return views


def apps_used(j: Journeys, account_id: str) -> list[AppUse]:
    """Apps with a consent in force or a successful sign-in on record, newest use first."""
    last: dict[str, datetime | None] = {}
    for record in j.audit_trail.events(account_id=account_id, limit=AUDIT_LIMIT):
        if record.kind == AuditKind.LOGIN_SUCCEEDED.value and record.downstream \
                and record.downstream != PORTAL_PARTY.party_id and record.downstream not in last:
            last[record.downstream] = record.at
    for consent in j.consents.in_force(account_id):
        if consent.how is not ConsentHow.WITHDRAWN:
            last.setdefault(consent.party_id, None)
    uses = [AppUse(party_id, app_name(j, party_id), at, app_logo(j, party_id)) for party_id, at in last.items()]
    return sorted(uses, key=lambda u: (u.last_used is None, -(u.last_used.timestamp() if u.last_used else 0)))


def app_name(j: Journeys, party_id: str) -> str | None:
    """The app's display name; for an app no longer registered, its id's host, never the id (``core.display``);
    None when not even that is readable (the template then says "an app no longer registered")."""
    party = j.registry.downstream(party_id)
    if party is not None:
        return party.display_name
    name = readable_name((), party_id, _UNREADABLE)
    return None if name == _UNREADABLE else name


def app_logo(j: Journeys, party_id: str) -> str | None:
    party = j.registry.downstream(party_id)
    return party.logo_uri if party is not None else None


def _registered_name(j: Journeys, name: str) -> str:
    upstream = j.registry.upstream(name)
    return upstream.display_name if upstream is not None else name


def upstream_name(j: Journeys, name: str) -> str:
    """An upstream's display name (a directory IdP is named by its entity id: its metadata name), never a URL;
    the broker-local ``passkey`` (passwordless sign-in and sign-up) is "Passkey"."""
    if name == PASSKEY_UPSTREAM:
        return PASSKEY_NAME
    upstream = j.registry.upstream(name)
    return upstream.display_name if upstream is not None else readable_name((), name)


def export(j: Journeys, account_id: str) -> dict[str, Any]:
    """Everything the broker holds about the account, as JSON-ready data. An audit record is named as the help desk
    and ``broker audit list`` name it: its hash chain and its ``seq`` in that chain."""
    account = j.accounts.get(account_id)
    return {
        "account": {"id": account_id, "created_at": account.created_at.isoformat() if account else None},
        "identities": [
            {"upstream": v.identity.upstream, "upstream_name": v.upstream_name, "issuer": v.identity.issuer,
             "subject": v.identity.subject, "first_used": v.identity.first_used.isoformat(),
             "last_used": v.identity.last_used.isoformat(), "last_acr": v.acr, "claims": dict(v.claims)}
            for v in identities(j, account_id)
        ],
        "consents": [
            {"app": c.party_id, "how": c.how.value, "granted": sorted(c.granted), "declined": sorted(c.declined),
             "policy_version": c.policy_version, "at": c.at.isoformat()}
            for c in j.consents.history(account_id)
        ],
        "sso_sessions": [
            {"upstream": s.upstream, "created_at": s.created_at.isoformat(), "last_seen": s.last_seen.isoformat(),
             "expires_at": s.expires_at.isoformat(), "ended_at": s.ended_at.isoformat() if s.ended_at else None,
             "user_agent": s.user_agent}
            for s in j.sso_sessions.all_of(account_id)
        ],
        "audit_events": [
            {"chain": r.chain, "seq": r.seq, "at": r.at.isoformat(), "kind": r.kind, "upstream": r.upstream,
             "app": r.downstream, "reason": r.reason}
            for r in j.audit_trail.events(account_id=account_id, limit=AUDIT_LIMIT)
        ],
    }


def revokes_grants(j: Journeys, party_id: str) -> bool:
    """Whether the app may hold OpenID grants: an OIDC client, or an app no longer registered."""
    party = j.registry.downstream(party_id)
    return party is None or party.protocol is Protocol.OIDC


def delete(j: Journeys, account_id: str, party_ids: Sequence[str]) -> None:
    """Erase the account: end its sessions, revoke its OpenID grants, delete it (the cascades remove identities,
    consents, grants and sessions) and write ``ACCOUNT_DELETED`` naming only the pseudonymous id."""
    now = j.now()
    live = [r.sid for r in j.sso_sessions.active(account_id, now)]
    j.sso_sessions.end_all(account_id, now)
    session_end.ended_all(j, account_id, live, now)  # before the erasure removes the sessions' participants
    if j.security_events is not None:  # RISC account-purged, while the apps' subjects can still be derived
        j.security_events.emit(SecurityEvent.ACCOUNT_PURGED, account_id, now)
    for party_id in party_ids:
        if revokes_grants(j, party_id):
            j.grants.revoke_for(party_id, account_id, now)
    j.accounts.delete_account(account_id)
    j.audit(AuditKind.ACCOUNT_DELETED, account_id=account_id, reason="portal")
