"""A logout token from an upstream OpenID provider (OpenID Connect Back-Channel Logout 1.0, the broker as relying
party; issue 18): the person signed out at the provider, so the broker's SSO sessions that rest on that sign-in end,
and their apps hear it as from any other sign-out (``session_end.ended_all``).

The ``UpstreamLogoutTokens`` port verifies the token (§2.6); here its ``jti`` is remembered on every instance
(``core.replay``: a token seen before is refused, §2.6 step 8), then (§2.7):

- with a ``sub``: the account linked to that identity at that upstream; every live session of it whose upstream is
  this one ends. With a ``sid`` too, the specification would end only the session of that provider session; the
  broker does not record the provider's ``sid``, so it cannot tell the sessions from one upstream apart, and ends
  them all (the safe side: a citizen signs in again, never stays signed in);
- with a ``sid`` alone: no session can be matched; nothing ends, the token is logged and answered as done (§2.8:
  nothing of that session is known here);
- a ``sub`` no account is linked to: likewise nothing ends.

Each ended session is audited ``LOGGED_OUT`` with the upstream and the reason; its grants are revoked and its
OpenID apps are sent logout tokens through the outbox. Its SAML apps are not told: SAML single logout needs the
browser (Profiles §4.4), and no browser is here; they end their own sessions when those expire, and a new sign-in
at them goes to the upstream again.
"""

from __future__ import annotations

import logging

from broker.core import errors
from broker.core.audit import AuditKind
from broker.core.replay import first_use
from broker.core.upstream_logout_tokens import UpstreamLogoutTokens
from broker.journeys import session_end
from broker.journeys.context import Journeys

log = logging.getLogger(__name__)
REASON = "back-channel logout token from the upstream provider"


def logout_token(j: Journeys, upstream: str, token: str) -> int:
    """Verify ``token`` from ``upstream`` and end the sessions it names; how many ended. A refused token raises
    (``UpstreamVerificationFailed``, ``UnknownUpstream``) and ends nothing."""
    now = j.now()
    verified = tokens(j).verify(upstream, token, now)
    if not first_use(j.pending, f"upstream-logout:{upstream}", verified.jti, verified.keep_jti_until):
        raise errors.UpstreamVerificationFailed(detail=f"logout token jti {verified.jti!r:.80} replayed")
    if verified.identity is None:
        log.info("logout token of upstream %s names no subject the broker keys accounts on (a sid alone): no session "
                 "of it is known here", upstream)
        return 0
    account = j.accounts.find_by_identity(*verified.identity)
    if account is None:
        log.info("logout token of upstream %s names a subject no account is linked to: nothing ends", upstream)
        return 0
    sids = [r.sid for r in j.sso_sessions.active(account.account_id, now) if r.upstream == upstream]
    for sid in sids:
        j.sso_sessions.end(sid, now)
        j.audit(AuditKind.LOGGED_OUT, account_id=account.account_id, upstream=upstream, reason=REASON)
    session_end.ended_all(j, account.account_id, sids, now)
    return len(sids)


def tokens(j: Journeys) -> UpstreamLogoutTokens:
    if j.upstream_logout_tokens is None:
        raise errors.UnknownUpstream(detail="upstream back-channel logout is not wired")
    return j.upstream_logout_tokens
