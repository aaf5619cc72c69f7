"""Linking and unlinking sign-in methods from the citizen's portal (issue 5; rules in ``broker.core.linking``).

``start`` (the portal's CSRF-protected form; needs the SSO session) stores a link proof under a handle bound
to this browser and sends the browser to that upstream only. Its pending request is stored under its own kinds
(``Kind.LINK_OIDC``, ``Kind.LINK_SAML``), so it can never complete a login, nor a login's state a link. The
upstream is asked for a fresh sign-in (``prompt=login`` with ``max_age=0``, or ``ForceAuthn``: its session
there, or an attacker's left in a shared browser, does not answer by itself), and its answer is linked only
after the citizen confirms on a page naming the account that answered (issue 15): a login-CSRF'd or tossed
journey that brings back someone else's account is seen before anything is linked. ``unlink`` removes one
link, never the last way in (``broker.journeys.ways_in``: a passkey counts as one).

What is trusted: the SSO session and the pending store (server-side, single-use handles). What is not: every
form field and every callback parameter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from broker.core import errors, linking
from broker.core.audit import AuditKind
from broker.core.model import Protocol, UpstreamIdentity, UpstreamParty
from broker.core.outcomes import Outcome, Page, PostForm, Redirect
from broker.core.pending_records import (
    PortalLinkConfirm,
    PortalLinkOidc,
    PortalLinkProof,
    PortalLinkSaml,
    put_record,
    put_record_with_handle,
)
from broker.core.ports import LinkOutcome
from broker.core.protocol_ports import UpstreamAdapter
from broker.core.sessions import SsoSession
from broker.core.texts import N_
from broker.journeys import account_data, session_end, ways_in
from broker.journeys.context import Browser, Journeys
from broker.journeys.handles import take_bound
from broker.journeys.link_offer import confirmation_page

#: the record a link waits in while the upstream answers, by its protocol (their kinds are stored)
AT_UPSTREAM = {Protocol.OIDC: PortalLinkOidc, Protocol.SAML: PortalLinkSaml}


def signed_in(j: Journeys, browser: Browser) -> SsoSession | None:
    """This browser's live SSO session, if any."""
    sso = browser.sso()
    return sso if sso is not None and j.now() < sso.expires_at else None


def _signed_in(j: Journeys, browser: Browser) -> SsoSession:
    sso = signed_in(j, browser)
    if sso is None:
        raise errors.LoginStateInvalid(N_("Please sign in again to change your sign-in methods."),
                                       detail="linking without a live SSO session")
    return sso


def linkable_upstreams(j: Journeys, account_id: str) -> list[UpstreamParty]:
    """The upstreams the account could link now: registered upstreams (OIDC, or SAML IdPs whose metadata is
    known) it has no identity of yet."""
    used = {identity.upstream for identity in j.accounts.identities(account_id)}
    return [u for u in j.registry.upstreams() if u.name not in used and j.upstream_adapter(u.name) is not None]


def start(j: Journeys, browser: Browser, upstream: str) -> Redirect | PostForm:
    """Issue a link proof for ``upstream`` and send the browser there for a fresh sign-in."""
    sso = _signed_in(j, browser)
    now = j.now()
    adapter = j.upstream_adapter(upstream)
    if adapter is None or all(u.name != upstream for u in linkable_upstreams(j, sso.account_id)):
        raise errors.UnknownUpstream(N_("This sign-in method cannot be linked to your account."),
                                     detail=f"link to {upstream[:100]!r} not offered")
    proof = linking.LinkProof(sso.account_id, sso.sid, upstream, now,
                              linking.identities_fingerprint(j.accounts.identities(sso.account_id)))
    handle = put_record(j.pending, PortalLinkProof(proof), now + linking.LINK_PROOF_LIFETIME)
    browser.bind(handle)
    started = adapter.begin(upstream, now, None, reauthenticate=True)
    record = AT_UPSTREAM[adapter.protocol](proof=handle, upstream=started.pending)
    put_record_with_handle(j.pending, started.handle, record, now + linking.LINK_PROOF_LIFETIME)
    browser.bind(started.handle)
    return started.outgoing


def answered(j: Journeys, browser: Browser, proof_handle: str, adapter: UpstreamAdapter, pending: str,
             reply: Mapping[str, str], arrived_at: str | None) -> Outcome:
    """The upstream's answer to a link journey: when the proof holds (``core.linking.check_link_proof``), ask
    the citizen to confirm; nothing is linked before they do."""
    proof = take_bound(j, browser, PortalLinkProof, proof_handle, "link proof").proof
    with j.observer.step("upstream_verify"):
        identity = adapter.finish(pending, reply, j.now(), arrived_at=arrived_at, fresh_required=True).identity
    _check(j, browser, proof, identity.upstream)
    owner = j.accounts.find_by_identity(identity.issuer, identity.subject)
    if owner is not None:  # already this account's, or another's (a conflict): nothing to confirm
        return _outcome(j, proof.account_id, identity.upstream,
                        LinkOutcome.ALREADY_LINKED if owner.account_id == proof.account_id else LinkOutcome.CONFLICT)
    handle = put_record(j.pending, PortalLinkConfirm(proof=proof, identity=identity),
                        proof.issued_at + linking.LINK_PROOF_LIFETIME)
    browser.bind(handle)
    return confirmation_page(handle, new=j.registry.upstream(identity.upstream) or identity.upstream,
                             existing=None, answered_as=identity, offer=False)


def _check(j: Journeys, browser: Browser, proof: linking.LinkProof, answered_by: str) -> None:
    """``core.linking.check_link_proof`` against this browser's SSO session and the account as it is now."""
    live = signed_in(j, browser)
    linking.check_link_proof(proof, account_id=live.account_id if live else None, sid=live.sid if live else None,
                             answered_by=answered_by,
                             fingerprint_now=linking.identities_fingerprint(j.accounts.identities(proof.account_id)),
                             now=j.now())


def _take_confirmation(j: Journeys, browser: Browser, handle: str) -> tuple[linking.LinkProof, UpstreamIdentity]:
    stored = take_bound(j, browser, PortalLinkConfirm, handle, "link confirmation")
    return stored.proof, stored.identity


def confirm(j: Journeys, browser: Browser, handle: str) -> Page:
    """The citizen confirmed: the proof must still hold (same SSO session, account unchanged, not expired)."""
    proof, identity = _take_confirmation(j, browser, handle)
    _check(j, browser, proof, identity.upstream)
    outcome = j.accounts.link_identity(proof.account_id, identity, j.now())
    return _outcome(j, proof.account_id, identity.upstream, outcome)


def cancel(j: Journeys, browser: Browser, handle: str) -> None:
    """The citizen declined: nothing is linked (the confirmation is used up)."""
    _take_confirmation(j, browser, handle)


def _display(j: Journeys, name: str) -> str:
    """The upstream's display name; for one no longer registered a readable name, never its internal key or
    entity id (``account_data.upstream_name``)."""
    return account_data.upstream_name(j, name)


def _outcome(j: Journeys, account_id: str, name: str, outcome: LinkOutcome) -> Page:
    """The page that says what became of a link: done, already there, or refused as another account's."""
    if outcome is LinkOutcome.CONFLICT:
        j.audit(AuditKind.REQUEST_REFUSED, account_id=account_id, upstream=name,
                reason="link refused: the identity belongs to another account")
        return Page("link_conflict.html", {"upstream": _display(j, name)}, status=409)
    if outcome is LinkOutcome.LINKED:
        j.audit(AuditKind.LINKED, account_id=account_id, upstream=name, reason="portal, confirmed")
    return Page("link_done.html", {"upstream": _display(j, name), "already": outcome is LinkOutcome.ALREADY_LINKED})


@dataclass(frozen=True)
class Unlinked:
    """An identity removed from the account; ``upstream`` is its provider's display name."""

    upstream: str


def unlink(j: Journeys, browser: Browser, issuer: str, subject: str) -> Unlinked | Outcome:
    """Remove one of the account's sign-in methods; never the last (a page says so). The sessions that rest on
    it end, and their apps are told (``_end_resting``)."""
    sso = _signed_in(j, browser)
    mine = [i for i in j.accounts.identities(sso.account_id) if (i.issuer, i.subject) == (issuer, subject)]
    if not mine:
        raise errors.InvalidRequest(N_("This sign-in method is not linked to your account."),
                                    detail="unlink of an identity the account does not have")
    if not ways_in.may_unlink(j, sso.account_id, issuer, subject) \
            or not j.accounts.unlink_identity(sso.account_id, issuer, subject):
        return Page(ways_in.LAST, {"passkey": ways_in.is_passkey_identity(mine[0])}, status=409)
    j.audit(AuditKind.UNLINKED, account_id=sso.account_id, upstream=mine[0].upstream, reason="portal")
    return _end_resting(j, browser, sso, mine[0].upstream) or Unlinked(_display(j, mine[0].upstream))


def _end_resting(j: Journeys, browser: Browser, sso: SsoSession, upstream: str) -> Outcome | None:
    """The account's sessions signed in through ``upstream`` end, as the method they rest on is gone (issue 18):
    other browsers' sessions through the back channel (``session_end.ended_all``); this browser's as at a
    sign-out, its apps told, and the signed-out page says why. None when this browser's session goes on. The
    registry knows a session's upstream, not which of two identities at one upstream it used: both end."""
    from broker.journeys import logout  # logout's chain imports the portal's neighbours: import at call time

    now = j.now()
    others = [r.sid for r in j.sso_sessions.active(sso.account_id, now) if r.upstream == upstream and r.sid != sso.sid]
    for sid in others:
        j.sso_sessions.end(sid, now)
    session_end.ended_all(j, sso.account_id, others, now)
    if sso.upstream != upstream:
        return None
    frames = logout.end(j, browser, sso, upstream=upstream, reason="its sign-in method was removed")
    chained = logout.start_chain(j, browser, sso, None)
    signed_out = Page("signed_out.html", {"still_signed_in": False, "unlinked": _display(j, upstream)})
    return session_end.with_frames(frames, chained if chained is not None else signed_out)
