"""The data that crosses layers: what a downstream asked for, what an upstream asserted, who the citizen is.

All frozen; adapters build them from protocol messages and read them back when answering.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import TYPE_CHECKING

from broker.core.assurance import Comparison
from broker.core.claims import ClaimValue
from broker.core.texts import N_

if TYPE_CHECKING:  # core.profile imports this module
    from broker.core.profile import IdentityClaims


class Protocol(Enum):
    SAML = "saml"
    OIDC = "oidc"
    #: the broker's own citizen portal: answered by a redirect to its pages, never by a protocol message
    PORTAL = "portal"


@dataclass(frozen=True)
class DownstreamParty:
    """A relying party as the core sees it; protocol details stay with the adapter's registry."""

    party_id: str
    protocol: Protocol
    display_name: str
    requested_claims: frozenset[str]
    allowed_upstreams: tuple[str, ...] = ()  # empty: every registered upstream
    #: claims the party cannot work without (SAML ``isRequired``); consent cannot decline them
    required_claims: frozenset[str] = frozenset()
    #: the upstream to use when the request names none (before the discovery page); one of ``allowed_upstreams``
    default_upstream: str | None = None
    #: the weakest assurance (acr) this party accepts, whatever its requests ask (``core.flow.with_requirements``)
    required_acr: str | None = None
    #: shown beside ``display_name`` on citizen pages (``core.display``: https or data:image only)
    logo_uri: str | None = None
    #: the party's privacy policy, linked from the consent page (https only)
    policy_uri: str | None = None
    #: the name, logo and policy link are the party's own claim (RFC 7591 §2 metadata from a Dynamic Client
    #: Registration), not the operator's: citizen pages say the city has not verified them
    self_described: bool = False


#: the built-in party of the citizen portal (``broker.web.portal``). No SAML SP or OIDC client can ask for it:
#: only the portal's own sign-in makes a login request naming it. It receives no claims and needs no consent.
PORTAL_PARTY = DownstreamParty("broker-portal", Protocol.PORTAL, N_("Your account"), frozenset())


@dataclass(frozen=True)
class UpstreamParty:
    """An identity provider as the core sees it."""

    name: str
    protocol: Protocol
    display_name: str
    issuer: str


@dataclass(frozen=True)
class LoginRequest:
    """What a downstream asked for, protocol-neutral (DESIGN: the flow of one login, step 1).

    ``return_to`` has already been checked against the party's registration by the adapter.
    ``protocol_state`` is opaque to the core: the adapter's own fields it needs to answer
    (SAML binding, NameID policy), as strings.
    """

    downstream: str
    protocol: Protocol
    return_to: str
    request_id: str | None
    relay_state: str | None
    requested_claims: frozenset[str]
    acr_values: tuple[str, ...] = ()
    force_authn: bool = False
    passive: bool = False
    upstream_hints: tuple[str, ...] = ()
    protocol_state: tuple[tuple[str, str], ...] = ()
    #: assurance asked for but not required (OIDC ``acr_values``, Core §3.1.2.1): passed upstream, never enforced
    preferred_acr: tuple[str, ...] = ()
    #: who the party expects to sign in (OIDC ``login_hint``), passed upstream as a hint only
    login_hint: str | None = None
    #: the longest time since the person last signed in actively that the party accepts (OIDC ``max_age``)
    max_age: int | None = None
    #: how ``acr_values`` are compared (SAML ``RequestedAuthnContext/@Comparison``; OIDC essential acr: minimum)
    acr_comparison: Comparison = Comparison.EXACT
    #: when the broker first read the request (``broker.core.login_time``); None until the login journey begins.
    #: Not part of what was asked: two requests that ask the same are equal whenever they came
    started_at: datetime | None = field(default=None, compare=False)

    def state(self, key: str, default: str = "") -> str:
        return dict(self.protocol_state).get(key, default)

    def to_json(self) -> str:
        return json.dumps({
            "downstream": self.downstream,
            "protocol": self.protocol.value,
            "return_to": self.return_to,
            "request_id": self.request_id,
            "relay_state": self.relay_state,
            "requested_claims": sorted(self.requested_claims),
            "acr_values": list(self.acr_values),
            "force_authn": self.force_authn,
            "passive": self.passive,
            "upstream_hints": list(self.upstream_hints),
            "protocol_state": [list(p) for p in self.protocol_state],
            "preferred_acr": list(self.preferred_acr),
            "login_hint": self.login_hint,
            "max_age": self.max_age,
            "acr_comparison": self.acr_comparison.value,
            "started_at": self.started_at.isoformat() if self.started_at is not None else None,
        })

    @classmethod
    def from_json(cls, text: str) -> LoginRequest:
        """Read back ``to_json``; ``ValueError`` for anything else (a damaged row, an older format)."""
        try:
            return cls._from_json(text)
        except (KeyError, TypeError, IndexError, AttributeError, RecursionError) as exc:
            raise ValueError(f"not a stored login request: {type(exc).__name__}") from exc

    @classmethod
    def _from_json(cls, text: str) -> LoginRequest:
        raw = json.loads(text)
        if not all(isinstance(raw[k], str) for k in ("downstream", "return_to")):
            raise TypeError("downstream and return_to must be text")
        return cls(
            downstream=raw["downstream"],
            protocol=Protocol(raw["protocol"]),
            return_to=raw["return_to"],
            request_id=raw["request_id"],
            relay_state=raw["relay_state"],
            requested_claims=frozenset(raw["requested_claims"]),
            acr_values=tuple(raw["acr_values"]),
            force_authn=bool(raw["force_authn"]),
            passive=bool(raw["passive"]),
            upstream_hints=tuple(raw["upstream_hints"]),
            protocol_state=tuple((str(k), str(v)) for k, v in raw["protocol_state"]),
            preferred_acr=tuple(str(a) for a in raw.get("preferred_acr", ())),
            login_hint=str(raw["login_hint"]) if raw.get("login_hint") is not None else None,
            max_age=int(raw["max_age"]) if raw.get("max_age") is not None else None,
            acr_comparison=Comparison.parse(raw.get("acr_comparison")),
            started_at=_instant(raw.get("started_at")),
        )


class EmailTrust(Enum):
    """How far the upstream's ``email`` claim can be trusted to name this person.

    Only ``VERIFIED`` may ever be used to suggest or make a link between accounts. Apple's private relay
    addresses are deliverable but unique per app (``PRIVATE_RELAY``); Microsoft Entra's ``email`` is
    editable by tenant admins and unverified (``MUTABLE``, the nOAuth attack).
    """

    VERIFIED = "verified"
    UNVERIFIED = "unverified"
    PRIVATE_RELAY = "private-relay"
    MUTABLE = "mutable"


@dataclass(frozen=True)
class UpstreamIdentity:
    """What an upstream asserted, after its adapter verified it.

    ``claims`` are in the broker's vocabulary (see ``core.claims``); values the adapter could not map
    are dropped, never guessed. ``email_trust`` is the adapter's judgement of the ``email`` claim.
    """

    upstream: str
    issuer: str
    subject: str
    claims: Mapping[str, ClaimValue]
    acr: str | None
    auth_time: datetime
    amr: tuple[str, ...] = ()
    email_trust: EmailTrust = EmailTrust.UNVERIFIED
    #: claims this upstream sends only once (Apple's name): omitted later, they keep their earlier value
    sent_once: frozenset[str] = frozenset()

    @property
    def linkable_email(self) -> str | None:
        """The e-mail address that may be matched against other accounts, or None (never an unverified one)."""
        email = self.claims.get("email")
        return email if self.email_trust is EmailTrust.VERIFIED and isinstance(email, str) else None

    def to_json(self) -> str:
        """For an identity waiting server-side while the citizen proves another one (a link offer)."""
        return json.dumps({
            "upstream": self.upstream, "issuer": self.issuer, "subject": self.subject,
            "claims": {k: dict(v) if isinstance(v, Mapping) else list(v) if isinstance(v, tuple) else v
                       for k, v in self.claims.items()},
            "acr": self.acr, "auth_time": self.auth_time.isoformat(), "amr": list(self.amr),
            "email_trust": self.email_trust.value, "sent_once": sorted(self.sent_once),
        })

    @classmethod
    def from_json(cls, text: str) -> UpstreamIdentity:
        """Read back ``to_json``; ``ValueError`` for anything else."""
        try:
            raw = json.loads(text)
            identity = cls(
                upstream=str(raw["upstream"]), issuer=str(raw["issuer"]), subject=str(raw["subject"]),
                claims={k: tuple(v) if isinstance(v, list) else v for k, v in dict(raw["claims"]).items()},
                acr=raw["acr"], auth_time=datetime.fromisoformat(raw["auth_time"]),
                amr=tuple(str(a) for a in raw["amr"]), email_trust=EmailTrust(raw["email_trust"]),
                sent_once=frozenset(str(c) for c in raw["sent_once"]),
            )
        except (KeyError, TypeError, AttributeError, RecursionError) as exc:
            raise ValueError(f"not a stored identity: {type(exc).__name__}") from exc
        if identity.auth_time.tzinfo is None:
            raise ValueError("auth_time must be timezone-aware")
        return identity


@dataclass(frozen=True)
class Account:
    account_id: str
    created_at: datetime
    #: when the operator disabled the account (``broker.journeys.account_status``): it signs in nowhere until
    #: enabled again; None: enabled
    disabled_at: datetime | None = None
    #: the operator's reason, for the operator only (RISC 1.0 §2.3 ``hijacking`` or ``bulk-account``, or free text)
    disabled_reason: str | None = None


@dataclass(frozen=True)
class LinkedIdentity:
    """(upstream issuer, upstream subject) -> account; unique, never keyed on e-mail."""

    account_id: str
    issuer: str
    subject: str
    upstream: str
    first_used: datetime
    last_used: datetime


@dataclass(frozen=True)
class LoginResult:
    """What the downstream adapter needs to answer: who, which claims it may release, how they signed in."""

    request: LoginRequest
    account: Account
    released: Mapping[str, ClaimValue]
    upstream: str
    acr: str | None
    auth_time: datetime
    created_account: bool = False
    amr: tuple[str, ...] = field(default=())
    #: the claim names this login may release (request, registration and policy: ``core.release``), computed
    #: once with ``released``; consent narrows it further. None: not computed (a result made elsewhere)
    releasable: frozenset[str] | None = None
    #: this sign-in's identity asserted a verified e-mail address other than the one it last asserted
    #: (``AccountStore.record_use``): the login journey emits RISC ``identifier-changed``
    identifier_changed: bool = False
    #: what the account's identities asserted, as this login read them for ``released``: later steps (the app's
    #: roles from this sign-in's groups) use them instead of reading them again (issue 21). None: not read here
    identities: tuple[IdentityClaims, ...] | None = field(default=None, compare=False, repr=False)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _instant(text: object) -> datetime | None:
    """A stored timezone-aware instant, or None; ``ValueError`` for anything else."""
    if text is None:
        return None
    found = datetime.fromisoformat(str(text))
    if found.tzinfo is None:
        raise ValueError("a stored instant must be timezone-aware")
    return found
