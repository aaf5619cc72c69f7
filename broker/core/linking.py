"""Find or create the citizen's account for an upstream identity.

Rule: an account is found only by the exact (issuer, subject) pair an upstream asserted. Nothing else,
least of all an e-mail address, ever attaches an identity to an existing account here; linking a second
identity is an explicit, proven act of the signed-in citizen (issue 5, below).

Linking from the portal: the signed-in citizen asks to link another upstream; the broker issues a *link proof*
(``LinkProof``), kept server-side under an unguessable single-use handle bound to the browser, and sends the
citizen to that upstream only. The identity the upstream answers with is linked when ``check_link_proof``
accepts: the proof is bound to the account, to the SSO session (``sid``) that asked, to the target upstream
(an answer from another upstream is an IdP mix-up, OAuth 2.0 Security BCP RFC 9700 §4.4), is short-lived, and
carries a fingerprint of the account's identities when it was issued, so any unlink (or link) in between kills
it. An identity that belongs to another account is a conflict, explained and never moved (pre-account takeover
"trojan identifier", Sudhodanan and Paverd, USENIX Security 2022).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from broker.core import errors
from broker.core.model import Account, LinkedIdentity, UpstreamIdentity
from broker.core.ports import AccountStore
from broker.core.texts import N_

#: how long a link proof lives: one trip to an upstream and back
LINK_PROOF_LIFETIME = timedelta(minutes=10)


@dataclass(frozen=True)
class Resolved:
    """The account of a sign-in: whether this login created it, and whether its identity's verified e-mail
    address changed since it last signed in (``AccountStore.record_use``)."""

    account: Account
    created: bool
    identifier_changed: bool = False


class Lookup(Enum):
    """``resolve``'s default: the caller has not looked the identity up yet."""

    NOT_YET = "not yet"


def resolve(store: AccountStore, identity: UpstreamIdentity, now: datetime,
            found: Account | Lookup | None = Lookup.NOT_YET) -> Resolved:
    """The account for ``identity``, found by (issuer, subject) or created. ``found``: what the caller's own
    ``find_by_identity`` of this identity gave in this request, so it is not looked up twice (issue 21); an
    account erased since is looked up again (and a new one created)."""
    if found is not Lookup.NOT_YET and found is not None:
        try:
            return Resolved(found, False, store.record_use(found.account_id, identity, now))
        except LookupError:
            found = Lookup.NOT_YET  # unlinked or erased since the caller looked
    account = store.find_by_identity(identity.issuer, identity.subject) if found is Lookup.NOT_YET else None
    if account is None:
        account, created = store.create_with_identity(identity, now)
        if created:
            return Resolved(account, True)
    return Resolved(account, False, store.record_use(account.account_id, identity, now))


def resolve_account(store: AccountStore, identity: UpstreamIdentity, now: datetime) -> tuple[Account, bool]:
    """The account for ``identity`` and whether it was created by this login."""
    resolved = resolve(store, identity, now)
    return resolved.account, resolved.created


def identities_fingerprint(identities: Iterable[LinkedIdentity]) -> str:
    """A digest of the account's linked identities (each with its link time): any link or unlink changes it."""
    rows = sorted([i.issuer, i.subject, i.first_used.isoformat()] for i in identities)
    return hashlib.sha256(json.dumps(rows, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class LinkProof:
    """The signed-in citizen's request to link ``target``, stored server-side until the upstream answers."""

    account_id: str
    sid: str
    target: str
    issued_at: datetime
    fingerprint: str

    def to_json(self) -> str:
        return json.dumps({"account_id": self.account_id, "sid": self.sid, "target": self.target,
                           "issued_at": self.issued_at.isoformat(), "fingerprint": self.fingerprint})

    @classmethod
    def from_json(cls, text: str) -> LinkProof:
        """``ValueError`` for anything but ``to_json``'s output."""
        try:
            data = json.loads(text)
            fields = (data["account_id"], data["sid"], data["target"], data["fingerprint"])
            if not all(isinstance(f, str) for f in fields):
                raise ValueError("link proof fields must be strings")
            return cls(*fields[:3], datetime.fromisoformat(data["issued_at"]), fields[3])
        except (KeyError, TypeError, RecursionError, AttributeError) as exc:
            raise ValueError(f"unreadable link proof: {type(exc).__name__}") from exc


def check_link_proof(proof: LinkProof, *, account_id: str | None, sid: str | None, answered_by: str,
                     fingerprint_now: str, now: datetime) -> None:
    """Refuse (``LoginStateInvalid``) a proof that is not this session's, for this upstream, fresh and current.

    The caller has already taken the proof from the pending store (single use) through a handle bound to this
    browser; what remains is checked here.
    """
    refused = N_("The request to link a sign-in method is no longer valid. Please start again from your account "
                 "page.")
    if account_id is None or sid is None:
        raise errors.LoginStateInvalid(refused, detail="link proof completed without an SSO session")
    if proof.account_id != account_id or not proof.sid or proof.sid != sid:
        raise errors.LoginStateInvalid(refused, detail="link proof of another account or SSO session")
    if proof.target != answered_by:
        raise errors.LoginStateInvalid(refused, detail=f"link proof for {proof.target!r} answered by {answered_by!r}")
    if not proof.issued_at <= now < proof.issued_at + LINK_PROOF_LIFETIME:
        raise errors.LoginStateInvalid(refused, detail="link proof expired")
    if proof.fingerprint != fingerprint_now:
        raise errors.LoginStateInvalid(refused, detail="the account's identities changed since the link proof")
