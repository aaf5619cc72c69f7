"""Linking and unlinking sign-in methods from the citizen's portal (issue 5; rules in ``broker.core.linking``).

``POST /account/link/<upstream>`` (CSRF-protected, needs the SSO session) stores a link proof in the pending
store under a handle bound to this browser and sends the browser to that upstream only; the upstream's answer
comes back through ``broker.web.login.oidc_callback`` (or, from a SAML IdP, ``broker.web.saml_sp.acs``), which
hands a link journey to ``callback`` (``saml_callback``) here (its pending authorization is stored under its own
kind, ``Kind.LINK_OIDC`` or ``Kind.LINK_SAML``, so it can never complete a login, nor a login's state a link).
The upstream is asked for a fresh sign-in (``prompt=login`` with ``max_age=0``, or ``ForceAuthn``: its session
there, or an attacker's left in a shared browser, does not answer by itself), and its answer is linked only
after the citizen confirms on a page naming the account that answered (``broker.web.link_confirm``, issue 15):
a login-CSRF'd or tossed journey that brings back someone else's account is seen before anything is linked.
``POST /account/identities/unlink`` removes one link, never the last.

What is trusted: the SSO session and the pending store (server-side, single-use handles). What is not: every
form field and every callback parameter.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from broker.core import errors, linking
from broker.core.audit import AuditKind
from broker.core.model import UpstreamIdentity, UpstreamParty
from broker.core.pending_records import (
    PortalLinkConfirm,
    PortalLinkOidc,
    PortalLinkProof,
    PortalLinkSaml,
    put_record,
    put_record_with_handle,
    take_record,
)
from broker.core.ports import LinkOutcome
from broker.core.sessions import SsoSession
from broker.upstream.oidc import PendingAuthorization
from broker.upstream.saml_settings import SamlPending, UpstreamIdp
from broker.web import audit, link_confirm
from broker.web.browser_state import bind, current_sso, take_bound
from broker.web.saml_send import idp_of, outgoing_page
from broker.web.services import services

bp = Blueprint("linking", __name__, url_prefix="/account")
#: verifies a SAML Response for (the IdP, the pending AuthnRequest) and names the person (``broker.web.saml_sp``)
SamlVerifier = Callable[[UpstreamIdp, SamlPending], UpstreamIdentity]


def _signed_in() -> SsoSession:
    sso = current_sso()
    if sso is None or services().clock.now() >= sso.expires_at:
        raise errors.LoginStateInvalid("Please sign in again to change your sign-in methods.",
                                       detail="linking without a live SSO session")
    return sso


def linkable_upstreams(account_id: str) -> list[UpstreamParty]:
    """The upstreams the account could link now: registered upstreams (OIDC, or SAML IdPs whose metadata is
    known) it has no identity of yet."""
    svc = services()
    used = {identity.upstream for identity in svc.accounts.identities(account_id)}
    return [u for u in svc.registry.upstreams() if u.name not in used
            and (svc.upstream_adapter(u.name) is not None or svc.saml_upstream(u.name) is not None)]


@bp.get("/link")
def choose() -> str:
    """The sign-in methods the citizen could link (each a CSRF-protected form to ``start``)."""
    sso = current_sso()
    if sso is None or services().clock.now() >= sso.expires_at:
        return render_template("link_choose.html", signed_in=False, upstreams=[])
    return render_template("link_choose.html", signed_in=True, upstreams=linkable_upstreams(sso.account_id))


@bp.post("/link/<upstream>")
def start(upstream: str) -> Response:
    """Issue a link proof for ``upstream`` and send the browser there (the form carries only the CSRF token)."""
    svc = services()
    sso = _signed_in()
    now = svc.clock.now()
    adapter, idp = svc.upstream_adapter(upstream), svc.saml_upstream(upstream)
    if (adapter is None and idp is None) or all(u.name != upstream for u in linkable_upstreams(sso.account_id)):
        raise errors.UnknownUpstream("This sign-in method cannot be linked to your account.",
                                     detail=f"link to {upstream[:100]!r} not offered")
    proof = linking.LinkProof(sso.account_id, sso.sid, upstream, now,
                              linking.identities_fingerprint(svc.accounts.identities(sso.account_id)))
    handle = put_record(svc.pending, PortalLinkProof(proof), now + linking.LINK_PROOF_LIFETIME)
    bind(handle)
    if adapter is None and idp is not None:
        outgoing, saml_pending = svc.saml_sp.authn_request(idp, None, now, reauthenticate=True)
        put_record_with_handle(svc.pending, saml_pending.relay_state,
                               PortalLinkSaml(proof=handle, upstream=saml_pending.to_json()),
                               now + linking.LINK_PROOF_LIFETIME)
        bind(saml_pending.relay_state)
        return outgoing_page(outgoing)
    assert adapter is not None
    url, pending = adapter.start(now, reauthenticate=True)
    put_record_with_handle(svc.pending, pending.state, PortalLinkOidc(proof=handle, upstream=pending.to_json()),
                           now + linking.LINK_PROOF_LIFETIME)
    bind(pending.state)
    return redirect(url)


def callback(name: str, state: str, params: dict[str, str]) -> Response | None:
    """The upstream's answer to a link journey, or None when ``state`` is not one (then it is a login's).

    The caller (``login.oidc_callback``) has checked that ``state`` belongs to this browser and unbound it.
    """
    svc = services()
    now = svc.clock.now()
    stored = take_record(svc.pending, PortalLinkOidc, state, now)
    if stored is None:
        return None
    handle, pending = stored.proof, PendingAuthorization.from_json(stored.upstream)  # LoginStateInvalid if damaged
    adapter = svc.upstream_adapter(name)
    if pending.upstream != name or adapter is None:
        raise errors.UpstreamVerificationFailed(detail=f"link state for {pending.upstream!r} arrived at {name!r}")
    proof = _take_proof(handle)
    return _complete(proof, name, adapter.finish(pending, params, now))


def saml_callback(relay_state: str, verify: SamlVerifier) -> Response | None:
    """A SAML IdP's answer to a link journey, or None when ``relay_state`` is not one (then it is a login's).
    The caller (``saml_sp.acs``) has checked that the handle belongs to this browser and unbound it."""
    svc = services()
    stored = take_record(svc.pending, PortalLinkSaml, relay_state, svc.clock.now())
    if stored is None:
        return None
    handle, pending = stored.proof, SamlPending.from_json(stored.upstream)  # LoginStateInvalid if damaged
    idp = idp_of(pending)
    proof = _take_proof(handle)
    return _complete(proof, pending.upstream, verify(idp, pending))


def _take_proof(handle: str) -> linking.LinkProof:
    svc = services()
    return take_bound(svc.pending, PortalLinkProof, handle, svc.clock.now(), "link proof").proof


def _check(proof: linking.LinkProof, answered_by: str) -> None:
    """``core.linking.check_link_proof`` against this browser's SSO session and the account as it is now."""
    svc = services()
    now = svc.clock.now()
    sso = current_sso()
    live = sso if sso is not None and now < sso.expires_at else None
    linking.check_link_proof(proof, account_id=live.account_id if live else None, sid=live.sid if live else None,
                             answered_by=answered_by,
                             fingerprint_now=linking.identities_fingerprint(svc.accounts.identities(proof.account_id)),
                             now=now)


def _complete(proof: linking.LinkProof, name: str, identity: UpstreamIdentity) -> Response:
    """The answer names ``identity``: when the proof holds (``core.linking.check_link_proof``), ask the citizen
    to confirm (``broker.web.link_confirm``); nothing is linked before they do."""
    svc = services()
    _check(proof, identity.upstream)
    owner = svc.accounts.find_by_identity(identity.issuer, identity.subject)
    if owner is not None:  # already this account's, or another's (a conflict): nothing to confirm
        return _outcome(proof.account_id, name, LinkOutcome.ALREADY_LINKED if owner.account_id == proof.account_id
                        else LinkOutcome.CONFLICT)
    handle = put_record(svc.pending, PortalLinkConfirm(proof=proof, identity=identity),
                        proof.issued_at + linking.LINK_PROOF_LIFETIME)
    bind(handle)
    return link_confirm.page(new=svc.registry.upstream(name) or name, existing=None,
                             shown_as=link_confirm.shown_as(identity),
                             link_url=url_for("linking.confirm", handle=handle),
                             keep_url=url_for("linking.cancel", handle=handle), offer=False)


def _take_confirmation(handle: str) -> tuple[linking.LinkProof, UpstreamIdentity]:
    svc = services()
    stored = take_bound(svc.pending, PortalLinkConfirm, handle, svc.clock.now(), "link confirmation")
    return stored.proof, stored.identity


@bp.post("/link/confirm/<handle>")
def confirm(handle: str) -> Response:
    """The citizen confirmed: the proof must still hold (same SSO session, account unchanged, not expired)."""
    svc = services()
    proof, identity = _take_confirmation(handle)
    _check(proof, identity.upstream)
    outcome = svc.accounts.link_identity(proof.account_id, identity, svc.clock.now())
    return _outcome(proof.account_id, identity.upstream, outcome)


def _outcome(account_id: str, name: str, outcome: LinkOutcome) -> Response:
    """The page that says what became of a link: done, already there, or refused as another account's."""
    upstream = services().registry.upstream(name)
    display = upstream.display_name if upstream is not None else name
    if outcome is LinkOutcome.CONFLICT:
        audit.record(AuditKind.REQUEST_REFUSED, account_id=account_id, upstream=name,
                     reason="link refused: the identity belongs to another account")
        return Response(render_template("link_conflict.html", upstream=display), status=409, mimetype="text/html")
    if outcome is LinkOutcome.LINKED:
        audit.record(AuditKind.LINKED, account_id=account_id, upstream=name, reason="portal, confirmed")
    return Response(render_template("link_done.html", upstream=display,
                                    already=outcome is LinkOutcome.ALREADY_LINKED), mimetype="text/html")


@bp.post("/link/cancel/<handle>")
def cancel(handle: str) -> Response:
    """The citizen declined: nothing is linked; back to their sign-in methods."""
    _take_confirmation(handle)
    return redirect(url_for("portal.identities") if "portal.identities" in current_app.view_functions
                    else url_for("linking.choose"), code=303)


@bp.post("/identities/unlink")
def unlink() -> Response:
    """Remove one of the account's sign-in methods (hidden fields ``issuer`` and ``subject``); never the last."""
    svc = services()
    sso = _signed_in()
    issuer, subject = request.form.get("issuer", ""), request.form.get("subject", "")
    mine = [i for i in svc.accounts.identities(sso.account_id) if (i.issuer, i.subject) == (issuer, subject)]
    if not mine:
        raise errors.InvalidRequest("This sign-in method is not linked to your account.",
                                    detail="unlink of an identity the account does not have")
    if not svc.accounts.unlink_identity(sso.account_id, issuer, subject):
        page = render_template("link_last.html")
        return Response(page, status=409, mimetype="text/html")
    audit.record(AuditKind.UNLINKED, account_id=sso.account_id, upstream=mine[0].upstream, reason="portal")
    upstream = svc.registry.upstream(mine[0].upstream)
    return redirect_or_page(upstream.display_name if upstream is not None else mine[0].upstream)


def redirect_or_page(display: str) -> Response:
    """After an unlink: the portal's identities page when it exists, else a short confirmation page."""
    if "portal.identities" in current_app.view_functions:
        return redirect(url_for("portal.identities"), code=303)
    return Response(render_template("link_unlinked.html", upstream=display), mimetype="text/html")
