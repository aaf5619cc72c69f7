"""The state of one single logout in progress (SAML 2.0 Profiles §4.4), kept in the pending store under a new
single-use handle per step (``broker.journeys.logout``). The stored form is the one earlier versions wrote, so a
chain in flight across an upgrade goes on."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from broker.core import errors
from broker.core.logout_ports import ReplyTo
from broker.core.model import Protocol
from broker.core.sessions import Participant, SsoSession


@dataclass
class Chain:
    sso: SsoSession
    #: the SP that asked (SP-initiated), answered at the end; None when the broker started the logout
    initiator: ReplyTo | None
    #: where to go at the end of an IdP-initiated logout; None: the "signed out" page
    then: str | None
    #: [party_id, subject, name_id_format] still to notify
    queue: list[list[Any]] = field(default_factory=list)
    #: the participant asked now and the ID of the LogoutRequest it was sent
    current: tuple[str, str] | None = None
    partial: bool = False
    upstream_done: bool = False
    sent: int = 0
    #: the apps that answered with an error, never answered, or could not be asked (the end page names them)
    unconfirmed: list[str] = field(default_factory=list)

    def not_confirmed(self, party_id: str) -> None:
        """``party_id`` did not confirm: the logout is partial (SAML Core §3.7.3.2 PartialLogout)."""
        self.partial = True
        if party_id not in self.unconfirmed:
            self.unconfirmed.append(party_id)

    def next_participant(self) -> Participant:
        party, subject, name_id_format = self.queue.pop(0)
        return Participant(str(party), Protocol.SAML, str(subject), name_id_format)

    def to_json(self) -> str:
        initiator = self.initiator
        return json.dumps({
            "sso": self.sso.to_json(), "then": self.then, "queue": self.queue, "current": self.current,
            "partial": self.partial, "upstream_done": self.upstream_done, "sent": self.sent,
            "unconfirmed": self.unconfirmed,
            "initiator": None if initiator is None else
            [initiator.issuer, initiator.request_id, initiator.binding, initiator.relay_state],
        })

    @classmethod
    def from_json(cls, text: str) -> Chain:
        try:
            raw = json.loads(text)
            initiator = ReplyTo(*raw["initiator"]) if raw["initiator"] else None
            current = tuple(raw["current"]) if raw["current"] else None
            return cls(SsoSession.from_json(raw["sso"]), initiator, raw["then"], list(raw["queue"]),
                       (str(current[0]), str(current[1])) if current else None, bool(raw["partial"]),
                       bool(raw["upstream_done"]), int(raw["sent"]),
                       [str(party) for party in raw.get("unconfirmed", ())])  # none stored before issue 18
        except (ValueError, KeyError, TypeError, IndexError, RecursionError) as exc:
            raise errors.LoginStateInvalid(detail=f"stored logout chain unreadable: {type(exc).__name__}") from exc


def queue_of(participants: tuple[Participant, ...], exclude: str | None) -> list[list[Any]]:
    """The SAML participants to notify, once each (the NameID of its latest answer), in the order they joined."""
    latest: dict[str, list[Any]] = {}
    for p in participants:
        if p.protocol is Protocol.SAML and p.party_id != exclude:
            latest.pop(p.party_id, None)
            latest[p.party_id] = [p.party_id, p.subject, p.name_id_format]
    order = list(dict.fromkeys(p.party_id for p in participants if p.party_id in latest))
    return [latest[party] for party in order]
