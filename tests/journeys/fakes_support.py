"""In-memory fakes of every port ``broker.journeys.context.Journeys`` needs, and a ``World`` that wires them.

No Flask app, no database, no protocol library: the journeys run over these alone (issue 16). Each fake follows
its port's documented contract (and the SQL implementation in ``broker.storage`` where the contract is silent);
the typed assignments at the bottom make ``mypy --strict`` fail as soon as a fake drifts from its port.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from broker.core import errors
from broker.core.audit import AuditEvent, AuditKind
from broker.core.audit_chain import ChainedRecord, chain_hash, genesis_hash
from broker.core.backoff import IN_FLIGHT, CodeAttempt, Failures
from broker.core.claims import ClaimValue, merge_assertions
from broker.core.consent import Consent, PartyPolicy, ReleasePolicy
from broker.core.email_address import canonical_email, is_another_address
from broker.core.factors import (
    Authenticator,
    Authenticators,
    FactorKind,
    NewPasskey,
    PasskeyChallenge,
    Passkeys,
    PasskeyUse,
)
from broker.core.grants import Grant, NewToken, Redemption, TokenKind, TokenRecord, token_hash
from broker.core.logout_ports import SessionNotices
from broker.core.model import (
    PORTAL_PARTY,
    Account,
    DownstreamParty,
    EmailTrust,
    LinkedIdentity,
    LoginRequest,
    LoginResult,
    Protocol,
    UpstreamIdentity,
    UpstreamParty,
)
from broker.core.notify import Mailer, MailNotSent, Notice
from broker.core.outbox import MessageState, Outbox, OutboxStatus, OutgoingMessage, QueuedMessage
from broker.core.outcomes import Outcome, PostForm, Redirect
from broker.core.pending_kinds import Kind
from broker.core.ports import (
    AccountErasure,
    AccountStore,
    AuditLog,
    AuditTrail,
    Clock,
    ConsentStore,
    GrantStore,
    HandleInUse,
    IdentityLinks,
    LinkOutcome,
    PendingStore,
    Registry,
    SsoSessionRecord,
    SsoSessionRegistry,
)
from broker.core.profile import IdentityClaims
from broker.core.protocol_ports import (
    DownstreamAdapter,
    DownstreamAnswer,
    DownstreamMessage,
    RequestRefused,
    UpstreamAdapter,
    UpstreamStart,
    VerifiedAnswer,
)
from broker.core.risk import LoginHistory, LoginPlace, LoginSignals
from broker.core.security_events import SecurityEvent, SecurityEvents
from broker.core.sessions import Participant, SsoSession
from broker.journeys.context import Accounts, Browser, Journeys, JourneySettings, Observer, Places

# --- the parties ------------------------------------------------------------------------------------------

OIDC_UPSTREAM = UpstreamParty("citizen-id", Protocol.OIDC, "Citizen ID", "https://login.citizen.example/")
SAML_UPSTREAM = UpstreamParty("city-idp", Protocol.SAML, "City IdP", "https://idp.city.example/saml")
UPSTREAMS = {Protocol.OIDC: OIDC_UPSTREAM, Protocol.SAML: SAML_UPSTREAM}

SAML_APP_ID = "https://sp.city.example/"
OIDC_APP_ID = "oidc-app"
PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"


def app(protocol: Protocol, *, allowed: Iterable[UpstreamParty] = (), **overrides: Any) -> DownstreamParty:
    """A downstream app of ``protocol`` that may use the upstreams ``allowed`` (none named: every one)."""
    party = DownstreamParty(SAML_APP_ID if protocol is Protocol.SAML else OIDC_APP_ID, protocol,
                            f"City {protocol.value} app", frozenset({"email", "email_verified", "name"}),
                            allowed_upstreams=tuple(u.name for u in allowed))
    return replace(party, **overrides)


def login_request(party: DownstreamParty, **overrides: Any) -> LoginRequest:
    """What ``party``'s downstream adapter would have parsed from its request (return address checked)."""
    saml = party.protocol is Protocol.SAML
    login = LoginRequest(party.party_id, party.protocol,
                         f"{party.party_id}back" if saml else "https://oidc-app.city.example/callback",
                         f"_req-{secrets.token_hex(4)}", "app-relay" if saml else None, frozenset(),
                         protocol_state=() if saml else (("state", "app-state"),))
    return replace(login, **overrides)


# --- stores -----------------------------------------------------------------------------------------------

class FakeAuthenticators:
    """Second factors in memory. An authenticator app's code is ``totp_code(secret, now)``: six digits from the
    secret and the 30-second step; each step is accepted once per authenticator (RFC 6238 §5.2)."""

    def __init__(self) -> None:
        self.entries: dict[str, Authenticator] = {}
        self.secrets: dict[str, str] = {}
        self.last_step: dict[str, int] = {}
        self.recovery: dict[str, dict[str, bool]] = {}  # account -> code -> used

    def of(self, account_id: str) -> Sequence[Authenticator]:
        return [a for a in self.entries.values() if a.account_id == account_id
                and (a.kind is not FactorKind.RECOVERY or not all(self.recovery.get(account_id, {}).values()))]

    def add_totp(self, account_id: str, name: str, secret: str, now: datetime) -> Authenticator:
        number = len(self.entries)
        while f"totp-{number}" in self.entries:  # after a removal: never reuse an id still in use
            number += 1
        entry = Authenticator(f"totp-{number}", account_id, FactorKind.TOTP, name, now)
        self.entries[entry.authenticator_id], self.secrets[entry.authenticator_id] = entry, secret
        return entry

    def verify_totp(self, account_id: str, code: str, now: datetime) -> Authenticator | None:
        step = int(now.timestamp()) // 30
        for entry in self.of(account_id):
            if entry.kind is FactorKind.TOTP and code == totp_code(self.secrets[entry.authenticator_id], now) \
                    and self.last_step.get(entry.authenticator_id, -1) < step:
                self.last_step[entry.authenticator_id] = step
                return entry
        return None

    def replace_recovery_codes(self, account_id: str, codes: Sequence[str], now: datetime) -> None:
        self.recovery[account_id] = {code: False for code in codes}
        entry = Authenticator(f"recovery-{account_id}", account_id, FactorKind.RECOVERY, "recovery codes", now)
        self.entries[entry.authenticator_id] = entry

    def use_recovery_code(self, account_id: str, code: str, now: datetime) -> Authenticator | None:
        codes = self.recovery.get(account_id, {})
        if codes.get(code) is not False:
            return None
        codes[code] = True
        return self.entries[f"recovery-{account_id}"]

    def add_email(self, account_id: str, name: str, address: str, now: datetime) -> Authenticator:
        number = len(self.entries)
        while f"email-{number}" in self.entries:
            number += 1
        entry = Authenticator(f"email-{number}", account_id, FactorKind.EMAIL, name, now)
        self.entries[entry.authenticator_id], self.secrets[entry.authenticator_id] = entry, address
        return entry

    def email_address(self, account_id: str, authenticator_id: str) -> str | None:
        entry = self.entries.get(authenticator_id)
        if entry is None or entry.account_id != account_id or entry.kind is not FactorKind.EMAIL:
            return None
        return self.secrets[authenticator_id]

    def mark_used(self, account_id: str, authenticator_id: str, now: datetime) -> None:
        entry = self.entries.get(authenticator_id)
        if entry is not None and entry.account_id == account_id:
            self.entries[authenticator_id] = replace(entry, last_used_at=now)

    def remove(self, account_id: str, authenticator_id: str) -> bool:
        entry = self.entries.get(authenticator_id)
        if entry is None or entry.account_id != account_id:
            return False
        del self.entries[authenticator_id]
        return True


class FakePasskeys:
    """Passkeys in memory, beside ``FakeAuthenticators`` (which lists them). An assertion is JSON naming the
    credential, the challenge it signed and whether the person was verified: ``assertion(...)`` makes one."""

    def __init__(self, authenticators: FakeAuthenticators) -> None:
        self.authenticators = authenticators
        self.owners: dict[str, Authenticator] = {}  # credential id -> its authenticator
        self.refuse_adding = False

    def enrol(self, account_id: str, name: str, now: datetime) -> str:
        """A passkey for the account, as if registered in the portal; its credential id."""
        credential = f"cred-{len(self.owners)}"
        entry = Authenticator(f"passkey-{credential}", account_id, FactorKind.PASSKEY, name, now)
        self.authenticators.entries[entry.authenticator_id] = self.owners[credential] = entry
        return credential

    def registration_options(self, account_id: str, user_name: str, now: datetime) -> PasskeyChallenge:
        challenge = secrets.token_urlsafe(16)
        return PasskeyChallenge(json.dumps({"challenge": challenge}), json.dumps([challenge, account_id]))

    def register(self, account_id: str, name: str, response_json: str, state: str, now: datetime) -> Authenticator:
        return self.add(account_id, name, self.verify_registration(account_id, response_json, state, now), now)

    def verify_registration(self, account_id: str, response_json: str, state: str, now: datetime) -> NewPasskey:
        response, (challenge, expected) = json.loads(response_json), json.loads(state)
        if response.get("challenge") != challenge or expected != account_id:
            raise ValueError("another ceremony's challenge")
        if not response.get("uv", True):
            raise ValueError("the person was not verified")
        if response["credential"] in self.owners:
            raise ValueError("a credential already enrolled")
        return NewPasskey(str(response["credential"]).encode(), b"public key", 0, (), account_id.encode(),
                          synced=bool(response.get("synced")))

    def add(self, account_id: str, name: str, passkey: NewPasskey, now: datetime) -> Authenticator:
        credential = passkey.credential_id.decode()
        if self.refuse_adding or credential in self.owners:  # ``refuse_adding``: as if enrolled meanwhile
            raise ValueError("a credential already enrolled")
        entry = Authenticator(f"passkey-{credential}", account_id, FactorKind.PASSKEY, name, now)
        self.authenticators.entries[entry.authenticator_id] = self.owners[credential] = entry
        return entry

    def authentication_options(self, account_id: str | None, now: datetime) -> PasskeyChallenge:
        challenge = secrets.token_urlsafe(16)
        return PasskeyChallenge(json.dumps({"challenge": challenge}), json.dumps([challenge, account_id]))

    def authenticate(self, response_json: str, state: str, now: datetime) -> PasskeyUse:
        response, (challenge, account_id) = json.loads(response_json), json.loads(state)
        entry = self.owners.get(response["credential"])
        if entry is None or response["challenge"] != challenge:
            raise ValueError("unknown credential, or another ceremony's challenge")
        if account_id is not None and entry.account_id != account_id:
            raise ValueError("another account's passkey")
        return PasskeyUse(entry.account_id, entry, bool(response["uv"]), synced=bool(response.get("synced")))


def registration(credential: str, options_json: str, user_verified: bool = True) -> str:
    """What the fake authenticator answers to registration ``options_json``, creating ``credential``."""
    return json.dumps({"credential": credential, "challenge": json.loads(options_json)["challenge"],
                       "uv": user_verified})


def assertion(credential: str, options_json: str, user_verified: bool = True, synced: bool = False) -> str:
    """What the fake authenticator answers to ``options_json`` with ``credential`` (``synced``: a multi-device
    passkey, WebAuthn §6.1.3)."""
    return json.dumps({"credential": credential, "challenge": json.loads(options_json)["challenge"],
                       "uv": user_verified, "synced": synced})


def totp_code(secret: str, now: datetime) -> str:
    """The fake authenticator app's code for ``secret`` at ``now``."""
    digest = hashlib.sha256(f"{secret}:{int(now.timestamp()) // 30}".encode()).hexdigest()
    return f"{int(digest, 16) % 1_000_000:06d}"


class FakeLoginHistory:
    """Completed logins and wrong second-factor answers in memory (``core.risk.LoginHistory``)."""

    def __init__(self) -> None:
        self.logins: list[tuple[str, LoginPlace, datetime]] = []
        self.failures: list[tuple[str, datetime]] = []
        #: every code entry and wrong answer, as the table keeps them: claim -> (account, address, at, in flight)
        self.attempts: dict[int, tuple[str, str | None, datetime, bool]] = {}

    def signals(self, account_id: str, place: LoginPlace, now: datetime, window: timedelta) -> LoginSignals:
        mine = [(p, at) for a, p, at in self.logins if a == account_id]
        recent = [(p, at) for p, at in mine if at > now - window]
        return LoginSignals(
            new_device=not place.device or all(p.device != place.device for p, _ in mine),
            new_network=all(p.network != place.network for p, _ in mine),
            logins_by_account=len(recent),
            logins_by_address=sum(1 for _, p, at in self.logins if p.address == place.address and at > now - window),
            failed_second_factors=sum(1 for a, at in self.failures if a == account_id and at > now - window),
            distant_networks=any(p.network != place.network for p, _ in recent),
            first_login=not mine)

    def record(self, account_id: str, place: LoginPlace, at: datetime) -> None:
        self.logins.append((account_id, place, at))

    def record_second_factor_failure(self, account_id: str, at: datetime, address: str | None = None) -> None:
        self.failures.append((account_id, at))
        flying = [claim for claim, (a, where, _, in_flight) in self.attempts.items()
                  if in_flight and address is not None and (a, where) == (account_id, address)]
        self.attempts[max(flying, key=lambda c: (self.attempts[c][2], c)) if flying
                      else max(self.attempts, default=0) + 1] = (account_id, address, at, False)

    def begin_code_attempt(self, account_id: str, address: str, at: datetime, window: timedelta) -> CodeAttempt:
        claim = max(self.attempts, default=0) + 1
        self.attempts[claim] = (account_id, address, at, True)
        counted = [(a, where, when) for c, (a, where, when, in_flight) in self.attempts.items()
                   if c != claim and when >= at - window and (not in_flight or when >= at - IN_FLIGHT)]
        return CodeAttempt(claim, Failures.of([when for a, _, when in counted if a == account_id], at, window),
                           Failures.of([when for _, where, when in counted if where == address], at, window))

    def withdraw_code_attempt(self, claim: int) -> None:
        if self.attempts.get(claim, ("", None, datetime.min, False))[3]:
            del self.attempts[claim]


class FakeClock:
    """Starts at the real time (no test depends on a date) and moves only when told."""

    def __init__(self) -> None:
        self._now = datetime.now(UTC).replace(microsecond=0)

    def now(self) -> datetime:
        return self._now

    def advance(self, by: timedelta) -> None:
        self._now += by


class FakeRegistry:
    """Fixed parties, with the built-in portal party first (as ``broker.registry`` has it); no directory."""

    def __init__(self, downstreams: Iterable[DownstreamParty], upstreams: Iterable[UpstreamParty]) -> None:
        self._downstreams = {p.party_id: p for p in downstreams} | {PORTAL_PARTY.party_id: PORTAL_PARTY}
        self._upstreams = {u.name: u for u in upstreams}

    def downstream(self, party_id: str) -> DownstreamParty | None:
        return self._downstreams.get(party_id)

    def upstream(self, name: str) -> UpstreamParty | None:
        return self._upstreams.get(name)

    def upstreams(self) -> Sequence[UpstreamParty]:
        return list(self._upstreams.values())

    def directory_size(self) -> int:
        return 0  # no federation directory

    def in_directory(self, entity_id: str) -> bool:
        return False


@dataclass
class _Link:
    identity: LinkedIdentity
    acr: str | None
    claims: Mapping[str, ClaimValue]
    #: the canonical address while the upstream asserts it verified (``SqlAccountStore._index_of``)
    email: str | None


def _email_key(identity: UpstreamIdentity) -> str | None:
    email = identity.linkable_email
    return canonical_email(email) if email is not None else None


class FakeAccounts:
    """``AccountStore`` and ``IdentityLinks``: found by (issuer, subject) only; e-mail only for offers."""

    def __init__(self) -> None:
        self.accounts: dict[str, Account] = {}
        self._links: dict[tuple[str, str], _Link] = {}  # insertion order is link order

    def find_by_identity(self, issuer: str, subject: str) -> Account | None:
        link = self._links.get((issuer, subject))
        return self.accounts[link.identity.account_id] if link is not None else None

    def create_with_identity(self, identity: UpstreamIdentity, now: datetime) -> tuple[Account, bool]:
        existing = self.find_by_identity(identity.issuer, identity.subject)
        if existing is not None:
            return existing, False
        account = Account(str(uuid.uuid4()), now)
        self.accounts[account.account_id] = account
        self._add(account.account_id, identity, now)
        return account, True

    def _add(self, account_id: str, identity: UpstreamIdentity, now: datetime) -> None:
        linked = LinkedIdentity(account_id, identity.issuer, identity.subject, identity.upstream, now, now)
        self._links[(identity.issuer, identity.subject)] = _Link(linked, identity.acr, dict(identity.claims),
                                                                 _email_key(identity))

    def record_use(self, account_id: str, identity: UpstreamIdentity, now: datetime) -> bool:
        link = self._links.get((identity.issuer, identity.subject))
        if link is None or link.identity.account_id != account_id:
            raise LookupError("the identity is not linked to that account")
        before = link.claims.get("email")
        link.identity = replace(link.identity, last_used=now)
        link.acr, link.email = identity.acr, _email_key(identity)
        link.claims = merge_assertions(link.claims, identity.claims, identity.sent_once)
        return is_another_address(before, identity.linkable_email)

    def _of(self, account_id: str) -> list[_Link]:
        return [link for link in self._links.values() if link.identity.account_id == account_id]

    def last_claims(self, account_id: str) -> Mapping[str, ClaimValue]:
        links = self._of(account_id)
        return dict(max(links, key=lambda link: link.identity.last_used).claims) if links else {}

    def identity_claims(self, account_id: str) -> Sequence[IdentityClaims]:
        return [IdentityClaims(link.identity, dict(link.claims), link.acr) for link in self._of(account_id)]

    def get(self, account_id: str) -> Account | None:
        return self.accounts.get(account_id)

    def identities(self, account_id: str) -> Sequence[LinkedIdentity]:
        return [link.identity for link in self._of(account_id)]

    def set_disabled(self, account_id: str, at: datetime | None, reason: str | None) -> bool:
        account = self.accounts.get(account_id)
        if account is None:
            return False
        self.accounts[account_id] = replace(account, disabled_at=at, disabled_reason=reason if at else None)
        return True

    def link_identity(self, account_id: str, identity: UpstreamIdentity, now: datetime) -> LinkOutcome:
        owner = self.find_by_identity(identity.issuer, identity.subject)
        if owner is not None:
            return LinkOutcome.ALREADY_LINKED if owner.account_id == account_id else LinkOutcome.CONFLICT
        self._add(account_id, identity, now)
        return LinkOutcome.LINKED

    def unlink_identity(self, account_id: str, issuer: str, subject: str) -> bool:
        link = self._links.get((issuer, subject))
        if link is None or link.identity.account_id != account_id or len(self._of(account_id)) < 2:
            return False
        del self._links[(issuer, subject)]
        return True

    def delete_account(self, account_id: str) -> bool:
        """The account and its identities (the SQL store's cascades reach further: other fakes keep theirs)."""
        if self.accounts.pop(account_id, None) is None:
            return False
        self._links = {key: link for key, link in self._links.items() if link.identity.account_id != account_id}
        return True

    def verified_email_owners(self, email: str) -> Sequence[LinkedIdentity]:
        canonical = canonical_email(email)
        if canonical is None:
            return []
        return [link.identity for link in self._links.values() if link.email == canonical]


class FakePendingStore:
    """Single-use handles; a row is found only under its own kind and only before it expires."""

    def __init__(self) -> None:
        self.rows: dict[tuple[Kind, str], tuple[str, datetime]] = {}
        #: the reads asked of the store, in order ("peek", "peek_many": each one round trip in the real stores)
        self.reads: list[str] = []

    def put(self, kind: Kind, payload: str, expires_at: datetime) -> str:
        handle = secrets.token_urlsafe(24)
        self.put_with_handle(kind, handle, payload, expires_at)
        return handle

    def put_with_handle(self, kind: Kind, handle: str, payload: str, expires_at: datetime) -> None:
        if (kind, handle) in self.rows:  # expired rows too: they stay until purged, as in SQL
            raise HandleInUse(handle[:16])
        self.rows[(kind, handle)] = (payload, expires_at)

    def _live(self, kind: Kind, handle: str, now: datetime) -> str | None:
        row = self.rows.get((kind, handle))
        return row[0] if row is not None and now < row[1] else None

    def peek(self, kind: Kind, handle: str, now: datetime) -> str | None:
        self.reads.append("peek")
        return self._live(kind, handle, now)

    def peek_many(self, kinds: Sequence[Kind], handle: str, now: datetime) -> dict[Kind, str]:
        self.reads.append("peek_many")
        found = {kind: self._live(kind, handle, now) for kind in kinds}
        return {kind: payload for kind, payload in found.items() if payload is not None}

    def take(self, kind: Kind, handle: str, now: datetime) -> str | None:
        found = self._live(kind, handle, now)
        if found is not None:
            del self.rows[(kind, handle)]
        return found

    def kinds_of(self, handle: str) -> set[Kind]:
        """The kinds stored under ``handle`` (expired ones included)."""
        return {kind for kind, h in self.rows if h == handle}


class FakeConsentStore:
    def __init__(self) -> None:
        self.answers: list[Consent] = []

    def current(self, account_id: str, party_id: str) -> Consent | None:
        mine = [c for c in self.answers if (c.account_id, c.party_id) == (account_id, party_id)]
        return mine[-1] if mine else None

    def record(self, consent: Consent) -> None:
        self.answers.append(consent)

    def in_force(self, account_id: str) -> Sequence[Consent]:
        newest: dict[str, Consent] = {c.party_id: c for c in self.answers if c.account_id == account_id}
        return sorted(newest.values(), key=self.answers.index, reverse=True)

    def history(self, account_id: str) -> Sequence[Consent]:
        return [c for c in self.answers if c.account_id == account_id]

    def accounts_with(self, party_id: str, limit: int) -> Sequence[str]:
        return list(dict.fromkeys(c.account_id for c in self.answers if c.party_id == party_id))[:limit]


class FakeSsoSessions:
    def __init__(self) -> None:
        self.records: dict[str, SsoSessionRecord] = {}
        self._participants: dict[str, dict[str, Participant]] = {}  # insertion order is join order

    def register(self, record: SsoSessionRecord) -> None:
        self.records[record.sid] = record

    def is_live(self, sid: str) -> bool:
        record = self.records.get(sid)
        return record is not None and record.ended_at is None

    def touch(self, sid: str, now: datetime) -> None:
        if sid in self.records:
            self.records[sid] = replace(self.records[sid], last_seen=now)

    def active(self, account_id: str, now: datetime) -> Sequence[SsoSessionRecord]:
        live = [r for r in self.records.values()
                if r.account_id == account_id and r.ended_at is None and r.expires_at > now]
        return sorted(live, key=lambda r: (r.last_seen, r.sid), reverse=True)

    def by_upstream_sid(self, upstream: str, upstream_sid: str, now: datetime) -> Sequence[SsoSessionRecord]:
        live = [r for r in self.records.values() if r.upstream == upstream and r.upstream_sid == upstream_sid
                and r.ended_at is None and r.expires_at > now]
        return sorted(live, key=lambda r: (r.created_at, r.sid))

    def all_of(self, account_id: str) -> Sequence[SsoSessionRecord]:
        return [r for r in self.records.values() if r.account_id == account_id]

    def end_all(self, account_id: str, now: datetime) -> int:
        live = self.active(account_id, now)
        for record in live:
            self.end(record.sid, now)
        return len(live)

    def end(self, sid: str, now: datetime) -> None:
        if sid in self.records and self.records[sid].ended_at is None:
            self.records[sid] = replace(self.records[sid], ended_at=now)

    def join(self, sid: str, participant: Participant, now: datetime) -> None:
        if sid not in self.records:
            return  # an unknown session counts as signed out (the SQL foreign key)
        self._participants.setdefault(sid, {})[participant.party_id] = participant

    def participants(self, sid: str) -> Sequence[Participant]:
        return list(self._participants.get(sid, {}).values())


class FakeAuditLog:
    """``AuditLog`` and ``AuditTrail``: every event kept, chained by hash as the SQL log chains them."""

    def __init__(self) -> None:
        self.recorded: list[AuditEvent] = []
        self._chain: list[ChainedRecord] = []
        #: the chain the next records go to (the SQL log spreads them over ``AUDIT_CHAINS``)
        self.chain = 1

    def record(self, event: AuditEvent) -> None:
        self.recorded.append(event)
        mine = [r for r in self._chain if r.chain == self.chain]
        prev = mine[-1].hash if mine else genesis_hash(self.chain)
        seq = len(mine) + 1
        self._chain.append(ChainedRecord(seq, event.at, event.kind.value, event.account_id, event.upstream,
                                         event.downstream, event.reason, event.reference, prev,
                                         chain_hash(prev, seq, event), len(self._chain) + 1, self.chain))

    def events(self, account_id: str | None = None, limit: int = 50,
               reference: str | None = None) -> Sequence[ChainedRecord]:
        mine = [r for r in reversed(self._chain) if (account_id is None or r.account_id == account_id)
                and (reference is None or r.reference == reference)]
        return mine[:limit]

    def of(self, kind: AuditKind) -> list[AuditEvent]:
        return [e for e in self.recorded if e.kind is kind]


@dataclass
class _Token:
    kind: TokenKind
    grant_id: str
    issued_at: datetime
    expires_at: datetime
    used: bool = False
    revoked: bool = False


class FakeGrantStore:
    """``GrantStore``: tokens kept by their hash; a used single-use token is ``REUSED`` ever after."""

    def __init__(self) -> None:
        self.grants: dict[str, Grant] = {}
        self.revoked: set[str] = set()
        self._tokens: dict[str, _Token] = {}

    def create_grant(self, grant: Grant, *tokens: NewToken) -> None:
        self.grants[grant.grant_id] = grant
        for token in tokens:
            self.issue(token.kind, token.token, grant.grant_id, token.issued_at, token.expires_at)

    def issue(self, kind: TokenKind, token: str, grant_id: str, issued_at: datetime, expires_at: datetime) -> None:
        self._tokens[token_hash(token)] = _Token(kind, grant_id, issued_at, expires_at)

    def _live(self, kind: TokenKind, token: str, now: datetime) -> _Token | None:
        found = self._tokens.get(token_hash(token))
        if found is None or found.kind is not kind or found.used or found.revoked or now >= found.expires_at \
                or found.grant_id in self.revoked:
            return None
        return found

    def redeem(self, kind: TokenKind, token: str, now: datetime) -> tuple[Redemption, Grant | None]:
        if kind is TokenKind.ACCESS:
            raise ValueError("access tokens are not single-use: use find()")
        live = self._live(kind, token, now)
        if live is not None:
            live.used = True
            return Redemption.OK, self.grants[live.grant_id]
        earlier = self._tokens.get(token_hash(token))
        if earlier is not None and earlier.kind is kind and earlier.used:
            return Redemption.REUSED, self.grants[earlier.grant_id]
        return Redemption.INVALID, None

    def find(self, kind: TokenKind, token: str, now: datetime) -> TokenRecord | None:
        live = self._live(kind, token, now)
        return None if live is None else TokenRecord(kind, self.grants[live.grant_id], live.expires_at,
                                                      live.issued_at)

    def revoke_grant(self, grant_id: str, now: datetime) -> None:
        self.revoked.add(grant_id)

    def revoke_token(self, kind: TokenKind, token: str, now: datetime) -> TokenRecord | None:
        record = self.find(kind, token, now)
        if record is None:
            return None
        if kind is TokenKind.REFRESH:
            self.revoke_grant(record.grant.grant_id, now)
        else:
            self._tokens[token_hash(token)].revoked = True
        return record

    def purge_expired(self, now: datetime) -> int:
        expired = [digest for digest, t in self._tokens.items() if t.expires_at <= now]
        for digest in expired:
            del self._tokens[digest]
        return len(expired)

    def revoke_for(self, client_id: str, account_id: str, now: datetime) -> int:
        live = [g.grant_id for g in self.grants.values()
                if (g.client_id, g.account_id) == (client_id, account_id) and g.grant_id not in self.revoked]
        self.revoked.update(live)
        return len(live)

    def revoke_session(self, sid: str, now: datetime) -> int:
        live = [g.grant_id for g in self.grants.values() if g.sid == sid and g.grant_id not in self.revoked]
        self.revoked.update(live)
        return len(live)


class FakeMailer:
    """The messages ``send`` was given, in order; ``refuse``: every message fails with that reason instead."""

    def __init__(self) -> None:
        self.sent: list[Notice] = []
        self.refuse: str | None = None

    def send(self, to: str, subject: str, text: str) -> None:
        if self.refuse is not None:
            raise MailNotSent(self.refuse)
        self.sent.append(Notice(to, subject, text))


# --- the request's browser, metrics, places -----------------------------------------------------------------

class FakeBrowser:
    """One browser: the handles it was given, its SSO session (live only while the registry says so), and how
    often it was given a new identity."""

    def __init__(self, sso_sessions: SsoSessionRegistry | None = None, user_agent: str = "FakeBrowser/1.0") -> None:
        self.handles: set[str] = set()
        self.kept: SsoSession | None = None
        self.renewals = 0
        self.sign_outs = 0
        self.logout: str | None = None
        self._registry = sso_sessions
        self._user_agent = user_agent
        #: where it signs in from, and its device cookie's id ("" until a sign-in gives it one)
        self.client_address = "192.0.2.10"
        self.device = ""

    @property
    def user_agent(self) -> str:
        return self._user_agent

    @property
    def address(self) -> str:
        return self.client_address

    def device_id(self) -> str:
        return self.device

    def remember_device(self) -> None:
        if not self.device:
            self.device = secrets.token_urlsafe(8)

    def bind(self, handle: str) -> None:
        self.handles.add(handle)

    def unbind(self, handle: str) -> bool:
        if handle not in self.handles:
            return False
        self.handles.discard(handle)
        return True

    def holds(self, handle: str) -> bool:
        return handle in self.handles

    def sso(self) -> SsoSession | None:
        if self.kept is not None and self._registry is not None and not self._registry.is_live(self.kept.sid):
            return None
        return self.kept

    def keep_sso(self, sso: SsoSession) -> None:
        self.kept = sso

    def renew(self) -> None:
        self.renewals += 1
        self.kept = None  # a new browser identity keeps only the pending handles

    def sign_out(self) -> None:
        self.sign_outs += 1
        self.handles, self.kept, self.logout = set(), None, None

    def forget_sso(self) -> None:
        self.kept = None

    def logout_handle(self) -> str | None:
        return self.logout

    def keep_logout_handle(self, handle: str | None) -> None:
        self.logout = handle


class RecordingObserver:
    def __init__(self) -> None:
        self.started = 0
        self.succeeded: list[tuple[str | None, str, str]] = []
        self.steps: list[str] = []
        self.ref = "REF-" + secrets.token_hex(4).upper()

    def login_started(self) -> None:
        self.started += 1

    def login_succeeded(self, upstream: str | None, downstream: str, how: str) -> None:
        self.succeeded.append((upstream, downstream, how))

    def step(self, name: str) -> AbstractContextManager[object]:
        return self._step(name)

    @contextmanager
    def _step(self, name: str) -> Iterator[object]:
        self.steps.append(name)
        yield None

    def reference(self) -> str:
        return self.ref


class FakePlaces:
    def discovery(self, handle: str) -> str:
        return f"/login/discover?handle={handle}"

    def consent(self, handle: str) -> str:
        return f"/consent/{handle}"

    def portal_home(self) -> str:
        return "/portal/"

    def logout_resume(self, handle: str) -> str:
        return f"https://broker.city.example/logout/resume?handle={handle}"

    def upstream_logout_reply(self, handle: str) -> str:
        return f"https://broker.city.example/saml/slo/reply?handle={handle}"


# --- protocol adapters --------------------------------------------------------------------------------------

class _FakeUpstream:
    """What both fake upstream adapters share: registered providers of one protocol, each answering with the
    identity configured for it (``answers_as``); ``refuse`` makes every answer fail verification."""

    _protocol: Protocol

    def __init__(self, parties: Iterable[UpstreamParty]) -> None:
        self.parties = {u.name: u for u in parties if u.protocol is self._protocol}
        self.identities: dict[str, UpstreamIdentity] = {}
        self.refuse = False
        self.begun: list[tuple[str, LoginRequest | None, bool]] = []
        self.finished = 0

    @property
    def protocol(self) -> Protocol:
        return self._protocol

    def knows(self, name: str) -> bool:
        return name in self.parties

    def proves_fresh_sign_in(self, name: str) -> bool:
        return name in self.parties

    def answers_as(self, identity: UpstreamIdentity) -> None:
        self.identities[identity.upstream] = identity

    def begin(self, name: str, now: datetime, login: LoginRequest | None,
              reauthenticate: bool = False) -> UpstreamStart:
        if name not in self.parties:
            raise errors.UnknownUpstream(detail=f"{name!r} is no {self._protocol.value} upstream")
        self.begun.append((name, login, reauthenticate))
        handle, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(12)
        pending = json.dumps({"name": name, "nonce": nonce, "fresh": reauthenticate})
        return UpstreamStart(self._outgoing(self.parties[name], handle, nonce), handle, pending)

    def _outgoing(self, upstream: UpstreamParty, handle: str, nonce: str) -> Redirect | PostForm:
        raise NotImplementedError

    def reply(self, outgoing: Outcome) -> tuple[str, dict[str, str]]:
        """What the upstream sends back to ``outgoing`` (its handle, and the answer's fields)."""
        raise NotImplementedError

    def _check(self, pending: str, answer: Mapping[str, str], arrived_at: str | None,
               fresh_required: bool) -> str:
        request = json.loads(pending)
        if self.refuse or answer.get("nonce") != request["nonce"]:
            raise errors.UpstreamVerificationFailed(detail="fake upstream: answer refused")
        if fresh_required and not request["fresh"]:
            raise errors.UpstreamVerificationFailed(detail="fake upstream: no fresh sign-in was asked")
        return str(request["name"])

    def finish(self, pending: str, answer: Mapping[str, str], now: datetime, *, arrived_at: str | None = None,
               fresh_required: bool = False) -> VerifiedAnswer:
        name = self._check(pending, answer, arrived_at, fresh_required)
        self.finished += 1
        identity = replace(self.identities[name], auth_time=now)
        return VerifiedAnswer(identity, (("upstream_session", f"{name}-session"),))

    def finish_unsolicited(self, answer: Mapping[str, str], now: datetime) -> VerifiedAnswer:
        raise errors.LoginStateInvalid(detail=f"unsolicited {self._protocol.value} answer")


class FakeOidcUpstream(_FakeUpstream):
    """OpenID Connect providers: a redirect carrying ``state``; an answer at another provider's callback
    (``arrived_at``) is a mix-up (RFC 9700 §4.4)."""

    _protocol = Protocol.OIDC

    def _outgoing(self, upstream: UpstreamParty, handle: str, nonce: str) -> Redirect | PostForm:
        return Redirect(f"{upstream.issuer}authorize?client_id=broker&state={handle}&nonce={nonce}")

    def reply(self, outgoing: Outcome) -> tuple[str, dict[str, str]]:
        assert isinstance(outgoing, Redirect), outgoing
        query = {k: v[0] for k, v in parse_qs(urlsplit(outgoing.url).query).items()}
        return query["state"], {"state": query["state"], "code": "code-" + query["nonce"], "nonce": query["nonce"]}

    def _check(self, pending: str, answer: Mapping[str, str], arrived_at: str | None,
               fresh_required: bool) -> str:
        name = super()._check(pending, answer, arrived_at, fresh_required)
        if arrived_at is not None and arrived_at != name:
            raise errors.UpstreamVerificationFailed(detail=f"mix-up: {name}'s answer arrived at {arrived_at}")
        return name


class FakeSamlUpstream(_FakeUpstream):
    """SAML IdPs: an HTTP-POST AuthnRequest carrying the RelayState; unsolicited answers are accepted from
    ``unsolicited_from`` only (IdP-initiated SSO)."""

    _protocol = Protocol.SAML

    def __init__(self, parties: Iterable[UpstreamParty]) -> None:
        super().__init__(parties)
        self.unsolicited_from: set[str] = set()

    def _outgoing(self, upstream: UpstreamParty, handle: str, nonce: str) -> Redirect | PostForm:
        return PostForm(f"{upstream.issuer}/sso", (("SAMLRequest", f"authn-request-{nonce}"), ("RelayState", handle)))

    def reply(self, outgoing: Outcome) -> tuple[str, dict[str, str]]:
        assert isinstance(outgoing, PostForm), outgoing
        fields = dict(outgoing.fields)
        nonce = fields["SAMLRequest"].removeprefix("authn-request-")
        return fields["RelayState"], {"SAMLResponse": f"response-{nonce}", "RelayState": fields["RelayState"],
                                      "nonce": nonce}

    def finish_unsolicited(self, answer: Mapping[str, str], now: datetime) -> VerifiedAnswer:
        name = answer.get("idp", "")
        if name not in self.unsolicited_from or name not in self.identities:
            return super().finish_unsolicited(answer, now)
        return VerifiedAnswer(replace(self.identities[name], auth_time=now))


@dataclass
class _Answered:
    result: LoginResult
    claims: frozenset[str]
    sid: str
    upstream: UpstreamParty | None


class _FakeDownstream:
    _protocol: Protocol

    def __init__(self) -> None:
        self.answered: list[_Answered] = []
        self.failures: list[tuple[LoginRequest, errors.BrokerError]] = []
        #: what ``read`` makes of a message whose ``request`` field names it
        self.requests: dict[str, LoginRequest] = {}

    @property
    def protocol(self) -> Protocol:
        return self._protocol

    def read(self, message: DownstreamMessage, now: datetime) -> LoginRequest:
        """The request its ``request`` field names; refused (with the login to answer when ``refuse`` is
        "answerable") like a real adapter refuses a bad signature or an unknown app."""
        fields = dict(message.fields)
        found = self.requests.get(fields.get("request", ""))
        if found is None:
            raise RequestRefused(errors.UnknownParty(detail="no such app"))
        if fields.get("refuse") == "answerable":
            raise RequestRefused(errors.InvalidSignature(detail="bad signature"), found)
        return found

    def answer(self, result: LoginResult, claims: frozenset[str], sid: str, upstream: UpstreamParty | None,
               now: datetime) -> DownstreamAnswer:
        self.answered.append(_Answered(result, claims, sid, upstream))
        return DownstreamAnswer(self.outgoing_for(result, sid), self.participant_for(result))

    def outgoing_for(self, result: LoginResult, sid: str) -> Redirect | PostForm:
        raise NotImplementedError

    def participant_for(self, result: LoginResult) -> Participant:
        raise NotImplementedError

    def failure(self, login: LoginRequest, error: errors.BrokerError) -> Redirect | PostForm | None:
        self.failures.append((login, error))
        return self.failure_for(login, error)

    def failure_for(self, login: LoginRequest, error: errors.BrokerError) -> Redirect | PostForm | None:
        raise NotImplementedError


class FakeSamlDownstream(_FakeDownstream):
    _protocol = Protocol.SAML

    def outgoing_for(self, result: LoginResult, sid: str) -> Redirect | PostForm:
        login = result.request
        return PostForm(login.return_to, (("SAMLResponse", f"response-to-{login.request_id}-{sid}"),
                                          ("RelayState", login.relay_state or "")))

    def participant_for(self, result: LoginResult) -> Participant:
        return Participant(result.request.downstream, Protocol.SAML, f"nameid-{result.account.account_id}",
                           PERSISTENT)

    def failure_for(self, login: LoginRequest, error: errors.BrokerError) -> Redirect | PostForm | None:
        return PostForm(login.return_to, (("SAMLResponse", f"status-{error.saml_substatus}"),))


class FakeOidcDownstream(_FakeDownstream):
    _protocol = Protocol.OIDC

    def outgoing_for(self, result: LoginResult, sid: str) -> Redirect | PostForm:
        return Redirect(f"{result.request.return_to}?code=code-for-{sid}&state={result.request.state('state')}")

    def participant_for(self, result: LoginResult) -> Participant:
        return Participant(result.request.downstream, Protocol.OIDC, f"pairwise-{result.account.account_id}")

    def failure_for(self, login: LoginRequest, error: errors.BrokerError) -> Redirect | PostForm | None:
        return Redirect(f"{login.return_to}?error={error.oidc_error}&state={login.state('state')}")


def handle_in(outgoing: Outcome) -> str:
    """The handle an upstream request carries (OAuth ``state``, SAML ``RelayState``)."""
    if isinstance(outgoing, Redirect):
        return parse_qs(urlsplit(outgoing.url).query)["state"][0]
    if isinstance(outgoing, PostForm):
        return dict(outgoing.fields)["RelayState"]
    raise AssertionError(f"not an upstream request: {outgoing!r}")


# --- the world --------------------------------------------------------------------------------------------

SETTINGS = JourneySettings(pending_login_lifetime=timedelta(minutes=10), sso_session_lifetime=timedelta(hours=8),
                           release_claims=frozenset({"email", "email_verified", "name"}))
#: every app exempt from consent, unless a test says otherwise
NO_CONSENT_ASKED = ReleasePolicy(default=PartyPolicy(consent_exempt=True))


@dataclass
class World:
    """The journeys wired over fakes, and the fakes themselves to look into."""

    apps: Sequence[DownstreamParty]
    settings: JourneySettings = SETTINGS
    policy: ReleasePolicy = NO_CONSENT_ASKED
    clock: FakeClock = field(default_factory=FakeClock)
    accounts: FakeAccounts = field(default_factory=FakeAccounts)
    pending: FakePendingStore = field(default_factory=FakePendingStore)
    consents: FakeConsentStore = field(default_factory=FakeConsentStore)
    sso_sessions: FakeSsoSessions = field(default_factory=FakeSsoSessions)
    audit: FakeAuditLog = field(default_factory=FakeAuditLog)
    grants: FakeGrantStore = field(default_factory=FakeGrantStore)
    observer: RecordingObserver = field(default_factory=RecordingObserver)
    places: FakePlaces = field(default_factory=FakePlaces)
    saml_answers: FakeSamlDownstream = field(default_factory=FakeSamlDownstream)
    oidc_answers: FakeOidcDownstream = field(default_factory=FakeOidcDownstream)
    authenticators: FakeAuthenticators = field(default_factory=FakeAuthenticators)
    login_history: FakeLoginHistory = field(default_factory=FakeLoginHistory)
    mailer: FakeMailer = field(default_factory=FakeMailer)
    outbox: FakeOutbox = field(default_factory=lambda: FakeOutbox())
    session_notices: FakeSessionNotices = field(default_factory=lambda: FakeSessionNotices())
    security_events: FakeSecurityEvents = field(default_factory=lambda: FakeSecurityEvents())

    def __post_init__(self) -> None:
        self.passkeys = FakePasskeys(self.authenticators)
        self.registry = FakeRegistry(self.apps, UPSTREAMS.values())
        self.oidc = FakeOidcUpstream(UPSTREAMS.values())
        self.saml = FakeSamlUpstream(UPSTREAMS.values())
        self.journeys = Journeys(
            settings=self.settings, registry=self.registry, accounts=self.accounts, pending=self.pending,
            consents=self.consents, sso_sessions=self.sso_sessions, audit_log=self.audit, clock=self.clock,
            observer=self.observer, places=self.places, release_policy=lambda: self.policy,
            grants=self.grants, audit_trail=self.audit,
            upstreams=(self.oidc, self.saml),
            downstreams={Protocol.SAML: self.saml_answers, Protocol.OIDC: self.oidc_answers},
            authenticators=self.authenticators, passkeys=self.passkeys, login_history=self.login_history,
            mailer=self.mailer, outbox=self.outbox, session_notices=self.session_notices,
            security_events=self.security_events)

    def browser(self, user_agent: str = "FakeBrowser/1.0") -> FakeBrowser:
        return FakeBrowser(self.sso_sessions, user_agent)

    def upstream(self, protocol: Protocol) -> FakeOidcUpstream | FakeSamlUpstream:
        return self.oidc if protocol is Protocol.OIDC else self.saml

    def downstream(self, protocol: Protocol) -> FakeSamlDownstream | FakeOidcDownstream:
        return self.saml_answers if protocol is Protocol.SAML else self.oidc_answers

    def person(self, upstream: UpstreamParty, subject: str, email: str | None = None,
               trust: EmailTrust = EmailTrust.VERIFIED, name: str = "Anna Jansen") -> UpstreamIdentity:
        """The identity ``upstream`` answers with from now on (its adapter is told)."""
        claims: dict[str, ClaimValue] = {"name": name}
        if email is not None:
            claims |= {"email": email, "email_verified": trust is EmailTrust.VERIFIED}
        identity = UpstreamIdentity(upstream.name, upstream.issuer, subject, claims, None, self.clock.now(),
                                    email_trust=trust)
        self.upstream(upstream.protocol).answers_as(identity)
        return identity


# --- mypy --strict rejects these as soon as a fake drifts from its port ------------------------------------

_clock: type[Clock] = FakeClock
_registry: type[Registry] = FakeRegistry
_accounts: type[AccountStore] = FakeAccounts
_links: type[IdentityLinks] = FakeAccounts
_journey_accounts: type[Accounts] = FakeAccounts
_pending: type[PendingStore] = FakePendingStore
_consents: type[ConsentStore] = FakeConsentStore
_sso: type[SsoSessionRegistry] = FakeSsoSessions
_audit: type[AuditLog] = FakeAuditLog
_audit_trail: type[AuditTrail] = FakeAuditLog
_grants: type[GrantStore] = FakeGrantStore
_erasure: type[AccountErasure] = FakeAccounts
_browser: type[Browser] = FakeBrowser
_observer: type[Observer] = RecordingObserver
_places: type[Places] = FakePlaces
_oidc_upstream: type[UpstreamAdapter] = FakeOidcUpstream
_saml_upstream: type[UpstreamAdapter] = FakeSamlUpstream
_saml_downstream: type[DownstreamAdapter] = FakeSamlDownstream
_oidc_downstream: type[DownstreamAdapter] = FakeOidcDownstream
_authenticators: type[Authenticators] = FakeAuthenticators
_passkeys: type[Passkeys] = FakePasskeys
_login_history: type[LoginHistory] = FakeLoginHistory
_mailer: type[Mailer] = FakeMailer


class FakeOutbox:
    """The outbox in memory (``core.outbox.Outbox``), with ``broker.storage.outbox``'s semantics: ``(receiver,
    jti)`` unique, ``attempts`` counted at each claim, a lease freed by the outcome, dead letters retried fresh."""

    def __init__(self) -> None:
        self.messages: dict[str, QueuedMessage] = {}
        self.leases: dict[str, datetime] = {}

    def enqueue(self, message: OutgoingMessage, now: datetime, held: bool = False) -> bool:
        if any((q.message.receiver, q.message.jti) == (message.receiver, message.jti)
               for q in self.messages.values()):
            return False
        message_id = str(uuid.uuid4())
        state = MessageState.HELD if held else MessageState.PENDING
        self.messages[message_id] = QueuedMessage(message_id, message, state, 0, now, now)
        return True

    def claim(self, now: datetime, limit: int, lease: timedelta) -> Sequence[QueuedMessage]:
        due = sorted((q for q in self.messages.values() if q.state is MessageState.PENDING
                      and q.next_attempt_at <= now and self.leases.get(q.message_id, now) <= now),
                     key=lambda q: (q.created_at, q.message_id))[:limit]
        for q in due:
            self.leases[q.message_id] = now + lease
            self.messages[q.message_id] = replace(q, attempts=q.attempts + 1)
        return [self.messages[q.message_id] for q in due]

    def delivered(self, message_id: str, now: datetime) -> None:
        self._settle(message_id, state=MessageState.DELIVERED, delivered_at=now)

    def failed(self, message_id: str, now: datetime, error: str, retry_at: datetime | None) -> None:
        if retry_at is None:
            self._settle(message_id, state=MessageState.DEAD, last_error=error)
        else:
            self._settle(message_id, next_attempt_at=retry_at, last_error=error)

    def _settle(self, message_id: str, **changes: Any) -> None:
        if message_id in self.messages and self.messages[message_id].state is MessageState.PENDING:
            self.leases.pop(message_id, None)
            self.messages[message_id] = replace(self.messages[message_id], **changes)

    def find(self, message_id: str) -> QueuedMessage | None:
        return self.messages.get(message_id)

    def listing(self, state: MessageState, limit: int = 50) -> Sequence[QueuedMessage]:
        return sorted((q for q in self.messages.values() if q.state is state),
                      key=lambda q: (q.created_at, q.message_id), reverse=True)[:limit]

    def status(self) -> OutboxStatus:
        pending = [q.created_at for q in self.messages.values() if q.state is MessageState.PENDING]
        return OutboxStatus(tuple((s, sum(q.state is s for q in self.messages.values())) for s in MessageState),
                            min(pending, default=None))

    def retry_dead(self, message_id: str, now: datetime) -> bool:
        q = self.messages.get(message_id)
        if q is None or q.state is not MessageState.DEAD:
            return False
        self.leases.pop(message_id, None)
        self.messages[message_id] = replace(q, state=MessageState.PENDING, attempts=0, next_attempt_at=now)
        return True

    def _held(self, receiver: str) -> list[QueuedMessage]:
        return [q for q in self.messages.values() if q.state is MessageState.HELD and q.message.receiver == receiver]

    def held_count(self, receiver: str) -> int:
        return len(self._held(receiver))

    def release_held(self, receiver: str, now: datetime) -> int:
        held = self._held(receiver)
        for q in held:
            self.messages[q.message_id] = replace(q, state=MessageState.PENDING, next_attempt_at=now)
        return len(held)

    def drop_held(self, receiver: str) -> int:
        held = self._held(receiver)
        for q in held:
            del self.messages[q.message_id]
        return len(held)


_outbox: type[Outbox] = FakeOutbox


@dataclass
class FakeSessionNotices:
    """Back- and front-channel logout in memory: an OIDC participant of a client in ``back`` gets a message
    naming it, the session and a new ``jti``; one in ``front`` a URL with the sid (``SessionNotices``)."""

    back: set[str] = field(default_factory=set)
    front: set[str] = field(default_factory=set)

    def back_channel(self, participant: Participant, sid: str, now: datetime) -> OutgoingMessage | None:
        if participant.protocol is not Protocol.OIDC or participant.party_id not in self.back:
            return None
        return OutgoingMessage(participant.party_id, secrets.token_hex(8), "backchannel-logout",
                               f"https://{participant.party_id}.example/backchannel",
                               json.dumps({"sub": participant.subject, "sid": sid}), "application/json")

    def front_channel(self, participant: Participant, sid: str) -> str | None:
        if participant.protocol is not Protocol.OIDC or participant.party_id not in self.front:
            return None
        return f"https://{participant.party_id}.example/frontchannel?sid={sid}"


_session_notices: type[SessionNotices] = FakeSessionNotices


@dataclass(frozen=True)
class EmittedEvent:
    event: SecurityEvent
    account_id: str
    at: datetime
    details: Mapping[str, str]


@dataclass
class FakeSecurityEvents:
    """The SSF transmitter in memory (``SecurityEvents``): records every ``emit``; each counts as one SET per app
    in ``streams_of[account_id]`` (the apps with a stream that know the account), 0 when none is listed."""

    emitted: list[EmittedEvent] = field(default_factory=list)
    streams_of: dict[str, int] = field(default_factory=dict)

    def emit(self, event: SecurityEvent, account_id: str, now: datetime,
             details: Mapping[str, str] | None = None) -> int:
        self.emitted.append(EmittedEvent(event, account_id, now, dict(details or {})))
        return self.streams_of.get(account_id, 0)


_security_events: type[SecurityEvents] = FakeSecurityEvents
