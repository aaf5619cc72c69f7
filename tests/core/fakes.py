"""In-memory implementations of the core's ports, for tests that need no database and no metadata folder.

They follow the contracts documented in ``broker.core.ports`` (and kept by ``SqlAccountStore``); the typed
assignments at the bottom make ``mypy --strict tests/core`` fail if they drift from the ports.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from broker.core.claims import ClaimValue, merge_assertions
from broker.core.email_address import is_another_address
from broker.core.model import Account, DownstreamParty, LinkedIdentity, UpstreamIdentity, UpstreamParty
from broker.core.ports import AccountStore, Registry
from broker.core.profile import IdentityClaims


@dataclass
class _Link:
    identity: LinkedIdentity
    last_acr: str | None
    last_claims: Mapping[str, ClaimValue]
    order: int  # tie-break for equal timestamps, like the SQL row id


class InMemoryAccountStore:
    """Accounts found by the exact (issuer, subject) pair only, never by a claim such as e-mail."""

    def __init__(self) -> None:
        self.accounts: dict[str, Account] = {}
        self._links: dict[tuple[str, str], _Link] = {}

    def find_by_identity(self, issuer: str, subject: str) -> Account | None:
        link = self._links.get((issuer, subject))
        return self.accounts[link.identity.account_id] if link is not None else None

    def create_with_identity(self, identity: UpstreamIdentity, now: datetime) -> tuple[Account, bool]:
        existing = self._links.get((identity.issuer, identity.subject))
        if existing is not None:  # linked already, perhaps by a concurrent first login: that account wins
            return self.accounts[existing.identity.account_id], False
        account = Account(account_id=str(uuid.uuid4()), created_at=now)
        self.accounts[account.account_id] = account
        linked = LinkedIdentity(account.account_id, identity.issuer, identity.subject, identity.upstream, now, now)
        self._links[(identity.issuer, identity.subject)] = _Link(
            linked, identity.acr, dict(identity.claims), len(self._links)
        )
        return account, True

    def record_use(self, account_id: str, identity: UpstreamIdentity, now: datetime) -> bool:
        link = self._links.get((identity.issuer, identity.subject))
        if link is None or link.identity.account_id != account_id:
            raise LookupError("the identity is not linked to that account")
        before = link.last_claims.get("email")
        link.identity = replace(link.identity, last_used=now)
        link.last_acr = identity.acr
        link.last_claims = merge_assertions(link.last_claims, identity.claims, identity.sent_once)
        return is_another_address(before, identity.linkable_email)

    def last_claims(self, account_id: str) -> Mapping[str, ClaimValue]:
        links = [link for link in self._links.values() if link.identity.account_id == account_id]
        if not links:
            return {}
        latest = max(links, key=lambda link: (link.identity.last_used, link.order))
        return dict(latest.last_claims)

    def identity_claims(self, account_id: str) -> Sequence[IdentityClaims]:
        links = [link for link in self._links.values() if link.identity.account_id == account_id]
        return [IdentityClaims(link.identity, dict(link.last_claims), link.last_acr)
                for link in sorted(links, key=lambda link: (link.identity.first_used, link.order))]

    def get(self, account_id: str) -> Account | None:
        return self.accounts.get(account_id)

    def identities(self, account_id: str) -> Sequence[LinkedIdentity]:
        links = [link for link in self._links.values() if link.identity.account_id == account_id]
        return [link.identity for link in sorted(links, key=lambda link: (link.identity.first_used, link.order))]

    def set_disabled(self, account_id: str, at: datetime | None, reason: str | None) -> bool:
        account = self.accounts.get(account_id)
        if account is None:
            return False
        self.accounts[account_id] = replace(account, disabled_at=at, disabled_reason=reason if at else None)
        return True


class InMemoryRegistry:
    """A fixed set of parties."""

    def __init__(self, downstreams: Iterable[DownstreamParty] = (), upstreams: Iterable[UpstreamParty] = (),
                 directory: Iterable[UpstreamParty] = ()) -> None:
        self._downstreams = {party.party_id: party for party in downstreams}
        self._upstreams = {party.name: party for party in upstreams}
        self._directory = {party.name: party for party in directory}

    def downstream(self, party_id: str) -> DownstreamParty | None:
        return self._downstreams.get(party_id)

    def upstream(self, name: str) -> UpstreamParty | None:
        return self._upstreams.get(name) or self._directory.get(name)

    def directory_size(self) -> int:
        return len(self._directory)

    def in_directory(self, entity_id: str) -> bool:
        return any(party.issuer == entity_id for party in self._directory.values())

    def upstreams(self) -> Sequence[UpstreamParty]:
        return list(self._upstreams.values())


# mypy --strict rejects these if a fake stops satisfying its port.
_check_store: type[AccountStore] = InMemoryAccountStore
_check_registry: type[Registry] = InMemoryRegistry
