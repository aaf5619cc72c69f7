"""Single sign-on session rules.

An SSO session belongs to one browser. It may answer a new login request without going upstream again
only when (SAML 2.0 Core §3.4.1 ForceAuthn; OIDC Core §3.1.2.1 prompt/max_age):

- it has not expired and is not older than the request's maximum age;
- the request does not force re-authentication;
- the upstream used is one the requesting party allows;
- the assurance (acr) it reached is one the request accepts, when the request names any.

The session remembers how the person signed in: the level reached (``acr``, raised by a second factor at the
broker, issue 17), the methods (``amr``, RFC 8176) and the upstream sign-in's time (``auth_time``). A second
factor is always given after that sign-in, so a request's ``max_age`` counted from ``auth_time`` never reuses a
factor older than it; ``prompt=login`` / ``ForceAuthn`` start over, second factor included.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from broker.core.assurance import DEFAULT_POLICY, AssurancePolicy
from broker.core.model import DownstreamParty, LoginRequest, Protocol


@dataclass(frozen=True)
class Participant:
    """A downstream this SSO session answered; single logout notifies each."""

    party_id: str
    protocol: Protocol
    subject: str
    #: the SAML NameID Format the subject was issued in (persistent or transient); None for OIDC and for
    #: sessions stored before it was recorded (their SAML subjects are persistent)
    name_id_format: str | None = None

    def to_list(self) -> list[str]:
        """The stored form: three items, a fourth only when a format is recorded (older readers ignore it)."""
        items = [self.party_id, self.protocol.value, self.subject]
        return [*items, self.name_id_format] if self.name_id_format is not None else items

    @classmethod
    def from_list(cls, items: list[str]) -> Participant:
        fmt = str(items[3]) if len(items) > 3 and items[3] is not None else None
        return cls(str(items[0]), Protocol(items[1]), str(items[2]), fmt)


@dataclass(frozen=True)
class SsoSession:
    account_id: str
    upstream: str
    acr: str | None
    auth_time: datetime
    expires_at: datetime
    participants: tuple[Participant, ...] = ()
    #: the session's id as downstreams see it (OIDC ``sid``, Front-Channel Logout 1.0 §3; SAML SessionIndex)
    sid: str = ""
    #: what the upstream needs to end its own session at logout (a SAML IdP: the NameID it issued and its
    #: SessionIndex, SAML Core §3.7.1), as the adapter's own name/value pairs; opaque to the core
    upstream_state: tuple[tuple[str, str], ...] = ()
    #: how the person authenticated in this session (RFC 8176 values): told to every app it answers
    amr: tuple[str, ...] = ()
    #: when a second factor was last given in this session (``broker.journeys.step_up``), None for none: changes
    #: to the factors themselves need a recent one (``broker.journeys.authenticators.reached_second_factor``)
    factor_at: datetime | None = None

    def with_participant(self, participant: Participant) -> SsoSession:
        if participant in self.participants:
            return self
        return replace(self, participants=(*self.participants, participant))

    def to_json(self) -> str:
        return json.dumps({
            "account_id": self.account_id,
            "upstream": self.upstream,
            "acr": self.acr,
            "auth_time": self.auth_time.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "participants": [p.to_list() for p in self.participants],
            "sid": self.sid,
            "upstream_state": [list(pair) for pair in self.upstream_state],
            "amr": list(self.amr),
            "factor_at": self.factor_at.isoformat() if self.factor_at is not None else None,
        })

    @classmethod
    def from_json(cls, text: str) -> SsoSession:
        """Read back ``to_json``; ``ValueError`` for anything else (a damaged session, an older format)."""
        try:
            session = cls._from_json(text)
        except (KeyError, TypeError, IndexError, AttributeError, RecursionError) as exc:
            raise ValueError(f"not a stored SSO session: {type(exc).__name__}") from exc
        if session.auth_time.tzinfo is None or session.expires_at.tzinfo is None or (
                session.factor_at is not None and session.factor_at.tzinfo is None):
            raise ValueError("SSO session times must be timezone-aware")
        return session

    @classmethod
    def _from_json(cls, text: str) -> SsoSession:
        raw = json.loads(text)
        return cls(
            account_id=raw["account_id"],
            upstream=raw["upstream"],
            acr=raw["acr"],
            auth_time=datetime.fromisoformat(raw["auth_time"]),
            expires_at=datetime.fromisoformat(raw["expires_at"]),
            participants=tuple(Participant.from_list(p) for p in raw["participants"]),
            # sessions stored before sids existed get one now; the downstreams they served saw none
            sid=str(raw["sid"]) if "sid" in raw else secrets.token_urlsafe(16),
            upstream_state=tuple((str(k), str(v)) for k, v in raw.get("upstream_state", ())),
            amr=tuple(str(method) for method in raw.get("amr", ())),  # none stored before issue 17
            factor_at=datetime.fromisoformat(raw["factor_at"]) if raw.get("factor_at") else None,
        )


def merged_participants(registered: Sequence[Participant], carried: Sequence[Participant]) -> tuple[Participant, ...]:
    """The participants single logout notifies: those ``registered`` server-side
    (``ports.SsoSessionRegistry.participants``, one per party, in the order they joined), then those only the
    browser's own session ``carried`` for parties the registry does not know. Sessions started before the
    registry recorded participants have them in the browser's session only; the union loses none of them
    across the deploy. A party in both counts as the registry has it (its latest answer)."""
    known = {p.party_id for p in registered}
    return (*registered, *(p for p in carried if p.party_id not in known))


def new_session(account_id: str, upstream: str, acr: str | None, auth_time: datetime,
                now: datetime, lifetime: timedelta, upstream_state: tuple[tuple[str, str], ...] = (),
                amr: tuple[str, ...] = ()) -> SsoSession:
    """A session of a sign-in at ``now``; ``amr`` with ``mfa`` means a second factor was given now."""
    return SsoSession(account_id, upstream, acr, auth_time, now + lifetime, sid=secrets.token_urlsafe(16),
                      upstream_state=upstream_state, amr=amr, factor_at=now if "mfa" in amr else None)


def satisfies(session: SsoSession | None, request: LoginRequest, party: DownstreamParty, now: datetime,
              assurance: AssurancePolicy = DEFAULT_POLICY) -> bool:
    """Whether ``session`` may answer ``request`` without a new upstream sign-in (rules in the module doc)."""
    return (session is not None and still_signed_in(session, request, party, now)
            and assurance.satisfies(session.acr, request.acr_values, request.acr_comparison))


def still_signed_in(session: SsoSession | None, request: LoginRequest, party: DownstreamParty,
                    now: datetime) -> bool:
    """Every rule of ``satisfies`` but the level: the session's sign-in may answer ``request`` as far as
    freshness and upstream go (a second factor may still raise its level, ``broker.journeys.step_up``)."""
    if session is None or request.force_authn or now >= session.expires_at:
        return False
    if request.max_age is not None and now - session.auth_time > timedelta(seconds=request.max_age):
        return False
    if party.allowed_upstreams and session.upstream not in party.allowed_upstreams:
        return False
    return not (request.upstream_hints and session.upstream not in request.upstream_hints)
