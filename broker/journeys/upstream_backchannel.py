"""A logout token from an upstream OpenID provider (OpenID Connect Back-Channel Logout 1.0, the broker as relying
party; issue 18): the person signed out at the provider, so the broker's SSO sessions that rest on that sign-in end,
and their apps hear it as from any other sign-out (``session_end.ended_all``).

The ``UpstreamLogoutTokens`` port verifies the token (§2.6); here its ``jti`` is remembered on every instance
(``core.replay``: a token seen before is refused, §2.6 step 8), then (§2.7) the sessions it names end. Each session
keeps the provider's own session id, its ID token's ``sid`` (``SsoSessionRecord.upstream_sid``, recorded by the
login since revision 0016):

- a ``sub`` and a ``sid``: of the live sessions from this upstream of the account linked to that identity, those
  whose ``upstream_sid`` is the token's. When none is, the sessions of the account from this upstream that have no
  ``upstream_sid`` end instead: sessions started before revision 0016, or at a provider whose ID tokens carry no
  (or no usable) ``sid``, cannot be told apart, and ending them is the safe side (a citizen signs in again, never
  stays signed in). A session recorded with another ``sid`` stays: it rests on another sign-in at the provider;
- a ``sid`` alone (or a ``sub`` the upstream's preset cannot key): the live sessions from this upstream with that
  ``upstream_sid`` (``SsoSessionRegistry.by_upstream_sid``), whoever's they are; sessions without one cannot be
  matched and stay;
- a ``sub`` alone: every live session of the account from this upstream;
- a ``sub`` no account is linked to, or a ``sid`` no session has: nothing ends; the token is logged and answered as
  done (§2.8: nothing of that session is known here).

Each ended session is audited ``LOGGED_OUT`` with the upstream and the reason; its grants are revoked and its
OpenID apps are sent logout tokens through the outbox. Its SAML apps are not told: SAML single logout needs the
browser (Profiles §4.4), and no browser is here; they end their own sessions when those expire, and a new sign-in
at them goes to the upstream again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from broker.core import errors
from broker.core.audit import AuditKind
from broker.core.ports import SsoSessionRecord
from broker.core.replay import first_use
from broker.core.upstream_logout_tokens import UpstreamLogoutToken, UpstreamLogoutTokens
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
    named = named_sessions(j, upstream, verified, now)
    by_account: dict[str, list[str]] = {}
    for record in named:
        by_account.setdefault(record.account_id, []).append(record.sid)
    for account_id, sids in by_account.items():
        for sid in sids:
            j.sso_sessions.end(sid, now)
            j.audit(AuditKind.LOGGED_OUT, account_id=account_id, upstream=upstream, reason=REASON)
        session_end.ended_all(j, account_id, sids, now)
    return len(named)


def named_sessions(j: Journeys, upstream: str, verified: UpstreamLogoutToken,
                   now: datetime) -> Sequence[SsoSessionRecord]:
    """The live sessions from ``upstream`` that its token names (the rules in the module's docstring)."""
    if verified.identity is None:
        if verified.sid is None:
            log.info("logout token of upstream %s names a subject its preset cannot key, and no sid: no session of "
                     "it is known here", upstream)
            return []
        found = j.sso_sessions.by_upstream_sid(upstream, verified.sid, now)
        if not found:
            log.info("logout token of upstream %s names a sid alone that no live session has: nothing ends", upstream)
        return found
    account = j.accounts.find_by_identity(*verified.identity)
    if account is None:
        log.info("logout token of upstream %s names a subject no account is linked to: nothing ends", upstream)
        return []
    from_upstream = [r for r in j.sso_sessions.active(account.account_id, now) if r.upstream == upstream]
    if verified.sid is None:
        return from_upstream
    matching = [r for r in from_upstream if r.upstream_sid == verified.sid]
    if matching:
        return matching
    return [r for r in from_upstream if r.upstream_sid is None]  # sessions that cannot be told apart


def tokens(j: Journeys) -> UpstreamLogoutTokens:
    if j.upstream_logout_tokens is None:
        raise errors.UnknownUpstream(detail="upstream back-channel logout is not wired")
    return j.upstream_logout_tokens
