"""What the apps hear when an SSO session ends, whatever ended it (issue 18): the portal's sign-out, "sign out
everywhere", an app's RP-initiated logout or SAML LogoutRequest, the upstream IdP's LogoutRequest, the account's
deletion, or unlinking the identity the session rests on.

``ended`` runs once the registry has ended the session (``SsoSessionRegistry.end`` / ``end_all``):

- every grant issued in the session is revoked (``GrantStore.revoke_session``): its refresh and access tokens
  stop working, so an app cannot go on acting for the person with what the session gave it;
- every OpenID Connect participant that registered a ``backchannel_logout_uri`` gets a logout token
  (Back-Channel Logout 1.0 §2.4-2.5) through the outbox (``core.outbox``): a worker sends it, retries it while
  the app is down, and the sign-out never waits for an app;
- the event streams of the apps that asked for CAEP ``session-revoked`` get it (``core.security_events``),
  whether or not the app took part in this session;
- the participants that registered a ``frontchannel_logout_uri`` are returned, for frames of the page this
  browser sees next (Front-Channel Logout 1.0 §3; ``with_frames``). A session ended without its browser (another
  browser's, by "sign out everywhere" or an erasure) has no such page: back-channel apps hear it, front-channel
  apps only when their own cookie ends.

SAML participants are told by the logout chain (``broker.journeys.logout``), in the browser, as before.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from broker.core.audit import AuditKind
from broker.core.model import Protocol
from broker.core.outcomes import Outcome, Page, PostForm, Redirect
from broker.core.security_events import SecurityEvent
from broker.core.sessions import Participant, merged_participants
from broker.journeys.context import Journeys

log = logging.getLogger(__name__)
FRAMES = "logout_frames.html"


def ended(j: Journeys, sid: str, account_id: str, carried: Sequence[Participant] = (),
          now: datetime | None = None) -> tuple[str, ...]:
    """Tell the apps of the ended session ``sid`` (its participants as the registry recorded them, and those only
    the browser's own session ``carried``); the front-channel logout URLs for this browser's next page."""
    now = now or j.now()
    revoked = j.grants.revoke_session(sid, now)
    everyone = merged_participants(j.sso_sessions.participants(sid), carried)
    queued, frames = 0, []
    for participant in everyone:
        if participant.protocol is not Protocol.OIDC or j.session_notices is None:
            continue
        message = j.session_notices.back_channel(participant, sid, now)
        if message is not None and j.outbox is not None and j.outbox.enqueue(message, now):
            queued += 1
        url = j.session_notices.front_channel(participant, sid)
        if url is not None:
            frames.append(url)
    pushed = j.security_events.emit(SecurityEvent.SESSION_REVOKED, account_id, now) \
        if j.security_events is not None else 0
    if revoked or queued or frames or pushed:
        j.audit(AuditKind.LOGOUT_NOTICES, account_id=account_id,
                reason=f"{revoked} grants revoked; {queued} back-channel; {len(frames)} front-channel; "
                       f"{pushed} session-revoked events")
    return tuple(frames)


def ended_all(j: Journeys, account_id: str, sids: Sequence[str], now: datetime | None = None) -> None:
    """``ended`` for sessions ended without their browsers (``sign out everywhere``, an erasure): no frames."""
    for sid in sids:
        ended(j, sid, account_id, (), now)


def with_frames(frames: Sequence[str], outcome: Outcome) -> Outcome:
    """``outcome`` with the front-channel logout frames loaded first: a page of the broker's own shows them
    itself; a redirect or a form goes on once they have loaded (``logout_frames.js``; at most a few seconds)."""
    if not frames:
        return outcome
    if isinstance(outcome, Page):
        return replace(outcome, data={**outcome.data, "front_channel": tuple(frames)}, frames=tuple(frames))
    redirect = outcome.url if isinstance(outcome, Redirect) else None
    form = outcome if isinstance(outcome, PostForm) else None
    return Page(FRAMES, {"front_channel": tuple(frames), "redirect": redirect, "form": form},
                frames=tuple(frames), no_store=True)
