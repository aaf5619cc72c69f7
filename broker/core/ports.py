"""Interfaces the core needs from the outside world (``typing.Protocol``).

Implementations live in ``broker.storage`` and ``broker.registry``; test fakes must satisfy these under
``mypy --strict`` as well, so they cannot drift from the real ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Protocol

from broker.core.audit import AuditEvent
from broker.core.audit_chain import ChainedRecord
from broker.core.claims import ClaimValue
from broker.core.consent import Consent
from broker.core.grants import Grant, NewToken, Redemption, TokenKind, TokenRecord
from broker.core.model import Account, DownstreamParty, LinkedIdentity, UpstreamIdentity, UpstreamParty
from broker.core.pending_kinds import Kind
from broker.core.profile import IdentityClaims
from broker.core.sessions import Participant


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...


class AccountStore(Protocol):
    def find_by_identity(self, issuer: str, subject: str) -> Account | None:
        """The account the identity (issuer, subject) is linked to, if any."""
        ...

    def create_with_identity(self, identity: UpstreamIdentity, now: datetime) -> tuple[Account, bool]:
        """Create an account linked to ``identity``, atomically.

        When another request linked the same (issuer, subject) first, return that account and ``False``;
        two concurrent first logins of one identity therefore make exactly one account.
        """
        ...

    def record_use(self, account_id: str, identity: UpstreamIdentity, now: datetime) -> bool:
        """Note that ``identity`` signed in now: last use, last assurance, and its claims.

        The claims asserted now replace those asserted before, except that claims the upstream sends only
        once (``identity.sent_once``; Apple's name) keep their earlier value when omitted
        (``core.claims.merge_assertions``). True when the identity now asserts a verified e-mail address other
        than the one it last asserted (``core.email_address.is_another_address``; RISC 1.0 §2.5
        ``identifier-changed``).
        """
        ...

    def last_claims(self, account_id: str) -> Mapping[str, ClaimValue]:
        """The claims the account's most recently used identity asserted (empty when unknown)."""
        ...

    def identity_claims(self, account_id: str) -> Sequence[IdentityClaims]:
        """What each linked identity of the account last asserted, with its last acr (``core.profile.merge``);
        an identity whose stored claims cannot be read is left out. Empty for an unknown account."""
        ...

    def get(self, account_id: str) -> Account | None: ...

    def identities(self, account_id: str) -> Sequence[LinkedIdentity]: ...

    def set_disabled(self, account_id: str, at: datetime | None, reason: str | None) -> bool:
        """Disable the account from ``at`` with the operator's ``reason``, or (``at`` None) enable it again
        (``broker.journeys.account_status``). ``False`` when there is no such account."""
        ...


class AccountErasure(Protocol):
    def delete_account(self, account_id: str) -> bool:
        """Erase the account (GDPR Art. 17) with its linked identities, consents, grants and SSO sessions;
        audit records, which name it only by its pseudonymous id, stay. ``False`` when there was no such
        account."""
        ...


class LinkOutcome(Enum):
    """What ``IdentityLinks.link_identity`` did (``broker.core.linking``)."""

    LINKED = "linked"
    #: the identity was linked to this account already: nothing changed
    ALREADY_LINKED = "already-linked"
    #: the identity belongs to another account: nothing changed, never moved (issue 5, conflicts)
    CONFLICT = "conflict"


class IdentityLinks(Protocol):
    """Explicit linking and unlinking of identities, apart from ``AccountStore`` (which only finds and creates)."""

    def link_identity(self, account_id: str, identity: UpstreamIdentity, now: datetime) -> LinkOutcome:
        """Link ``identity`` to the account; an (issuer, subject) already linked elsewhere is ``CONFLICT``."""
        ...

    def unlink_identity(self, account_id: str, issuer: str, subject: str) -> bool:
        """Remove the link; ``False`` (nothing removed) when it is not the account's or is its last identity."""
        ...

    def verified_email_owners(self, email: str) -> Sequence[LinkedIdentity]:
        """Identities whose upstream last asserted ``email`` as verified; the start of a link offer, never a link."""
        ...


@dataclass(frozen=True)
class SsoSessionRecord:
    """One browser's SSO session as the registry knows it (``SsoSession.sid``); no token, no claim."""

    sid: str
    account_id: str
    upstream: str
    created_at: datetime
    last_seen: datetime
    expires_at: datetime
    #: the browser's User-Agent, shortened: lets the citizen tell their sessions apart
    user_agent: str
    ended_at: datetime | None = None
    #: the upstream OpenID provider's own session id, its ID token's ``sid`` (Back-Channel Logout 1.0 §2.1), which
    #: its logout tokens name; None when it sent none, for other protocols, and for sessions from before revision 0016
    upstream_sid: str | None = None


class SsoSessionRegistry(Protocol):
    """The SSO sessions that exist, server-side, so a citizen can see and end them ("sign out everywhere")."""

    def register(self, record: SsoSessionRecord) -> None: ...

    def is_live(self, sid: str) -> bool:
        """Whether the session is registered and not ended (one lookup by primary key); expiry is the
        session's own (``core.sessions.satisfies``)."""
        ...

    def touch(self, sid: str, now: datetime) -> None:
        """Note that the session answered an app now."""
        ...

    def active(self, account_id: str, now: datetime) -> Sequence[SsoSessionRecord]: ...

    def by_upstream_sid(self, upstream: str, upstream_sid: str, now: datetime) -> Sequence[SsoSessionRecord]:
        """The live (not ended, not expired) sessions from ``upstream`` whose ``upstream_sid`` is this one: what an
        upstream's logout token with a ``sid`` names (Back-Channel Logout 1.0 §2.7); one lookup by index."""
        ...

    def all_of(self, account_id: str) -> Sequence[SsoSessionRecord]:
        """Every session of the account, ended ones included (the citizen's data export)."""
        ...

    def end_all(self, account_id: str, now: datetime) -> int:
        """End every live session of the account; how many there were."""
        ...

    def end(self, sid: str, now: datetime) -> None: ...

    def join(self, sid: str, participant: Participant, now: datetime) -> None:
        """Record that the session answered ``participant`` now. Once per (sid, party): joining again replaces
        the subject and NameID format (a new transient NameID) and the time, and keeps the place in the order;
        concurrent joins of one pair both succeed. Single logout needs, per app, what it was told: a SAML SP
        gets a LogoutRequest with its own NameID (and format) and the SessionIndex (SAML 2.0 Core §3.7.1); an
        OpenID client is told the session's ``sid`` (Front-Channel Logout 1.0 §3, Back-Channel Logout 1.0 §2.4)."""
        ...

    def participants(self, sid: str) -> Sequence[Participant]:
        """The apps the session answered, each once with its latest subject, in the order they first joined;
        readable after the session ended (logout runs after ``end``). Empty for an unknown sid."""
        ...


class HandleInUse(Exception):
    """``PendingStore.put_with_handle`` found the handle taken: a replay (an assertion or message ID seen
    before) or, for a random handle, a collision that must not overwrite anything."""


class PendingStore(Protocol):
    """Server-side state of logins in progress, keyed by unguessable handles; each handle is single-use."""

    def put(self, kind: Kind, payload: str, expires_at: datetime) -> str:
        """Store ``payload`` and return a new unguessable handle for it."""
        ...

    def put_with_handle(self, kind: Kind, handle: str, payload: str, expires_at: datetime) -> None:
        """Store ``payload`` under a handle the caller generated (an OAuth ``state``); ``HandleInUse`` when the
        handle already holds something of ``kind``, which stays as it was."""
        ...

    def peek(self, kind: Kind, handle: str, now: datetime) -> str | None:
        """The payload, if the handle exists, is of ``kind`` and has not expired; it stays stored."""
        ...

    def peek_many(self, kinds: Sequence[Kind], handle: str, now: datetime) -> Mapping[Kind, str]:
        """``peek`` for several kinds in one round trip: the payload of each of ``kinds`` stored under ``handle``
        and not expired, by kind (the others are absent); all stay stored."""
        ...

    def take(self, kind: Kind, handle: str, now: datetime) -> str | None:
        """Remove and return the payload; of two concurrent takes of one handle, only one gets it."""
        ...


class AuditLog(Protocol):
    def record(self, event: AuditEvent) -> None:
        """Append ``event``; records are never changed or removed by the broker."""
        ...


class AuditTrail(Protocol):
    """The audit log read back (the citizen's apps page and data download)."""

    def events(self, account_id: str | None = None, limit: int = 50,
               reference: str | None = None) -> Sequence[ChainedRecord]:
        """The newest ``limit`` records, newest first; only those naming ``account_id``, or carrying the support
        ``reference`` (shown on the error page a citizen saw), when given."""
        ...


class Registry(Protocol):
    def downstream(self, party_id: str) -> DownstreamParty | None: ...

    def upstream(self, name: str) -> UpstreamParty | None:
        """A registered upstream by name, else an IdP of the federation directory by entity ID."""
        ...

    def upstreams(self) -> Sequence[UpstreamParty]:
        """The registered upstreams (not the directory's IdPs, which may be thousands)."""
        ...

    def directory_size(self) -> int:
        """How many IdPs the federation directory holds (SAML metadata aggregates, ``metadata/saml-idp``)."""
        ...

    def in_directory(self, entity_id: str) -> bool:
        """Whether the federation directory holds metadata of the IdP ``entity_id``."""
        ...


class GrantStore(Protocol):
    """Grants and their tokens (``broker.core.grants``). Tokens are passed in clear and stored hashed."""

    def create_grant(self, grant: Grant, *tokens: NewToken) -> None:
        """Store ``grant`` and, in the same transaction, its first ``tokens`` (a sign-in's code: one write, not
        two; issue 21)."""
        ...

    def issue(self, kind: TokenKind, token: str, grant_id: str, issued_at: datetime, expires_at: datetime) -> None:
        """Record a token of ``grant_id``."""
        ...

    def redeem(self, kind: TokenKind, token: str, now: datetime) -> tuple[Redemption, Grant | None]:
        """Mark a single-use token (code, refresh token) used, atomically: of two concurrent redemptions
        exactly one gets ``OK``. ``REUSED`` comes with the grant (so the caller can revoke it); ``INVALID``
        with None. An unused token of a revoked grant, or an expired unused one, is ``INVALID``; a used one is
        ``REUSED`` even then, so a replay is always seen."""
        ...

    def find(self, kind: TokenKind, token: str, now: datetime) -> TokenRecord | None:
        """The token when it exists, is unexpired, unused (for single-use kinds) and its grant unrevoked."""
        ...

    def revoke_grant(self, grant_id: str, now: datetime) -> None:
        """Revoke the grant: every token issued from it stops working at once."""
        ...

    def revoke_token(self, kind: TokenKind, token: str, now: datetime) -> TokenRecord | None:
        """Revoke one token (RFC 7009); the record it had, or None when there was nothing live to revoke."""
        ...

    def purge_expired(self, now: datetime) -> int:
        """Delete expired tokens and grants with no live token left; how many rows went."""
        ...

    def revoke_for(self, client_id: str, account_id: str, now: datetime) -> int:
        """Revoke every grant of ``account_id`` at ``client_id`` (consent withdrawn); how many were live."""
        ...

    def revoke_session(self, sid: str, now: datetime) -> int:
        """Revoke every grant issued in the SSO session ``sid`` (``Grant.sid``), and so its refresh and access
        tokens: the session ended (single logout). How many were live."""
        ...


@dataclass(frozen=True)
class StoredClient:
    """A client registered through Dynamic Client Registration (RFC 7591), as stored.

    ``metadata`` is the validated client metadata as JSON text (RFC 7591 §2 names, plus ``client_id`` and,
    for confidential clients, ``client_secret_hash``); ``registration_token_hash`` is the SHA-256 of its
    registration access token (RFC 7592 §3), the only credential for reading, changing or deleting it.
    """

    client_id: str
    metadata: str
    registration_token_hash: str
    created_at: datetime
    updated_at: datetime


class ClientStore(Protocol):
    """Dynamically registered clients, shared by every broker instance."""

    def add(self, client: StoredClient) -> None:
        """Store a new client; ``ValueError`` when the client id is taken."""
        ...

    def get(self, client_id: str) -> StoredClient | None: ...

    def replace(self, client_id: str, metadata: str, now: datetime) -> bool:
        """Replace the metadata (RFC 7592 §2.2); False when there is no such client."""
        ...

    def remove(self, client_id: str) -> bool:
        """Delete the client (RFC 7592 §2.3); False when there was none."""
        ...

    def all(self) -> Sequence[StoredClient]: ...


class ConsentStore(Protocol):
    """Consent answers, kept as a history: the newest per (account, app) is in force (``core.consent``)."""

    def current(self, account_id: str, party_id: str) -> Consent | None: ...

    def record(self, consent: Consent) -> None:
        """Append ``consent``; it is in force from now on."""
        ...

    def in_force(self, account_id: str) -> Sequence[Consent]:
        """The consent in force for each app this account answered for (withdrawn ones included), newest first."""
        ...

    def history(self, account_id: str) -> Sequence[Consent]:
        """Every answer of this account, oldest first (the data download, GDPR Art. 15 and 20)."""
        ...

    def accounts_with(self, party_id: str, limit: int) -> Sequence[str]:
        """Accounts with any answer for ``party_id`` (the accounts that ever signed in to it), at most ``limit``."""
        ...
