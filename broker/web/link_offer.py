"""First sign-in with a new upstream whose verified e-mail address matches an existing account (issue 5,
linking flow 2; hardened in issue 15, point 1).

The broker never merges on an address: that is how pre-account takeover works (an attacker registers the
victim's address first at a provider that does not verify it, or changes an account's address). It may offer
instead: "this looks like your account: sign in with <the provider you used before> to link". Four rules make
the offer something no attacker can steer, even one who controls an identity at one upstream that asserts
``email_verified`` for addresses it does not own, or that signs a browser in silently:

1. **Both addresses must come from upstreams the operator trusts for e-mail** (``[linking] email_authoritative``):
   the earlier identity's, or an attacker who signed up first at a careless provider would be offered the
   victim's sign-in; and the new one's, or the offer page would tell anyone who can assert an address which
   provider holds an account for it (an oracle: issue 15, point 8).
2. **The proof is a fresh sign-in** at the earlier upstream: ``prompt=login`` with ``max_age=0`` (OIDC Core
   §3.1.2.1; the ID token's ``auth_time`` is checked) or ``ForceAuthn`` (SAML Core §3.4.1; the AuthnInstant is
   checked). An upstream that cannot show it (GitHub's OAuth) is never offered as the proof.
3. **The person confirms** after the proof, on a page naming both sign-in methods, with "keep separate" first
   and focused (``broker.web.link_confirm``).
4. **The offer belongs to the browser and its SSO session**: single-use handles bound to this browser, and the
   browser's SSO session (or its absence) must be the one the offer was made in, so an offer left open in a
   shared browser does not survive someone else's sign-in or sign-out.

Automatic linking exists only for upstream pairs the operator lists in ``[linking] auto_link_by_email``, with
both upstreams in ``email_authoritative``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from flask import Blueprint, redirect, render_template, url_for
from werkzeug.wrappers import Response

from broker.core import errors
from broker.core.audit import AuditKind
from broker.core.model import LinkedIdentity, LoginRequest, UpstreamIdentity, UpstreamParty
from broker.core.pending_records import (
    LinkOffer,
    LinkOfferConfirm,
    LinkOfferOidc,
    LinkOfferSaml,
    put_record,
    put_record_with_handle,
    take_record,
)
from broker.core.ports import LinkOutcome
from broker.upstream.oidc import PendingAuthorization
from broker.upstream.saml_settings import SamlPending, UpstreamIdp
from broker.web import audit, link_confirm
from broker.web.browser_state import bind, current_sso, take_bound
from broker.web.replies import DownstreamFailure
from broker.web.saml_send import idp_of, outgoing_page
from broker.web.services import services

bp = Blueprint("link_offer", __name__)
OFFER_LIFETIME = timedelta(minutes=10)


def _candidates(identity: UpstreamIdentity) -> list[LinkedIdentity]:
    email = identity.linkable_email
    if email is None or services().accounts.find_by_identity(identity.issuer, identity.subject) is not None:
        return []
    return [o for o in services().accounts.verified_email_owners(email)
            if (o.issuer, o.subject) != (identity.issuer, identity.subject)]


def _can_prove(name: str) -> bool:
    """``name`` is an upstream whose answer shows a fresh sign-in: a SAML IdP (ForceAuthn, AuthnInstant) or an
    OpenID provider (``auth_time``), not a plain OAuth 2.0 provider."""
    svc = services()
    adapter = svc.upstream_adapter(name)
    return adapter.proves_fresh_sign_in if adapter is not None else svc.saml_upstream(name) is not None


def _sso_sid() -> str:
    """The SSO session this browser has now ("" for none): an offer is valid only while it stays the same."""
    sso = current_sso()
    return sso.sid if sso is not None and services().clock.now() < sso.expires_at else ""


def consider(login_request: LoginRequest, identity: UpstreamIdentity, now: datetime) -> Response | None:
    """Before a first sign-in completes: the offer page, an automatic link, or None (sign in as usual)."""
    svc = services()
    rules = svc.settings.linking
    if identity.upstream not in rules.email_authoritative:
        return None  # rule 1: an address from an upstream not trusted for e-mail matches nothing
    owners = [o for o in _candidates(identity) if o.upstream in rules.email_authoritative]
    accounts = sorted({o.account_id for o in owners})
    if len(accounts) != 1:
        return None  # none, or the address is on several accounts: suggesting one of them would be a guess
    if any((identity.upstream, o.upstream) in rules.auto_link_by_email for o in owners):
        if svc.accounts.link_identity(accounts[0], identity, now) is LinkOutcome.LINKED:
            audit.record(AuditKind.LINKED, account_id=accounts[0], upstream=identity.upstream,
                         reason="automatic: verified e-mail, configured upstream pair")
        return None
    provers = sorted({o.upstream for o in owners if _can_prove(o.upstream)})
    if not provers:
        return None  # rule 2: no upstream of that account can show a fresh sign-in
    offer = LinkOffer(login=login_request, identity=identity, account=accounts[0], upstreams=tuple(provers),
                      sso=_sso_sid())
    handle = put_record(svc.pending, offer, now + OFFER_LIFETIME)
    bind(handle)
    previous = [u for u in (svc.registry.upstream(n) for n in provers) if u]
    return Response(render_template("link_offer.html", handle=handle, previous=previous,
                                    new=svc.registry.upstream(identity.upstream)), mimetype="text/html")


def _take(handle: str) -> LinkOffer:
    svc = services()
    return take_bound(svc.pending, LinkOffer, handle, svc.clock.now(), "link offer")


def _same_sso(offer: LinkOffer, waiting: LoginRequest) -> None:
    """Rule 4: the browser's SSO session is still the one the offer was made in."""
    if offer.sso != _sso_sid():
        raise DownstreamFailure(errors.LoginStateInvalid(
            "Someone signed in or out in this browser since this page was shown, so nothing was linked. Please "
            "start again from the application.", detail="link offer used after the SSO session changed"), waiting)


@bp.post("/link-offer/<handle>/separate")
def separate(handle: str) -> Response:
    """The person wants a separate account: the first sign-in completes as if nothing matched."""
    from broker.web import login  # login imports this module (``consider``, ``callback``): import at call time

    offer = _take(handle)
    _same_sso(offer, offer.login)
    return login.sign_in(offer.login, offer.identity, services().clock.now())


@bp.post("/link-offer/<handle>/prove/<name>")
def prove(handle: str, name: str) -> Response:
    """Go to the previous provider, which must sign the person in again; its answer must name an identity of the
    offered account."""
    svc = services()
    now = svc.clock.now()
    offer = _take(handle)
    waiting = offer.login
    _same_sso(offer, waiting)
    adapter, idp = svc.upstream_adapter(name), svc.saml_upstream(name)
    if (adapter is None and idp is None) or name not in offer.upstreams:
        raise DownstreamFailure(errors.UnknownUpstream(detail=f"{name!r} is not an offered upstream"), waiting)
    if adapter is None and idp is not None:
        outgoing, saml_pending = svc.saml_sp.authn_request(idp, None, now, reauthenticate=True)
        put_record_with_handle(svc.pending, saml_pending.relay_state,
                               LinkOfferSaml(offer=offer, upstream=saml_pending.to_json()), now + OFFER_LIFETIME)
        bind(saml_pending.relay_state)
        return outgoing_page(outgoing)
    assert adapter is not None
    url, pending = adapter.start(now, reauthenticate=True)
    put_record_with_handle(svc.pending, pending.state, LinkOfferOidc(offer=offer, upstream=pending.to_json()),
                           now + OFFER_LIFETIME)
    bind(pending.state)
    return redirect(url)


def callback(name: str, state: str, params: dict[str, str]) -> Response | None:
    """The previous provider's answer, or None when ``state`` is not a link offer's (see ``linking.callback``)."""
    svc = services()
    now = svc.clock.now()
    stored = take_record(svc.pending, LinkOfferOidc, state, now)
    if stored is None:
        return None
    offer, waiting = stored.offer, stored.offer.login
    pending = PendingAuthorization.from_json(stored.upstream)
    adapter = svc.upstream_adapter(name)
    try:
        if pending.upstream != name or adapter is None:
            raise errors.UpstreamVerificationFailed(detail=f"offer state for {pending.upstream!r} at {name!r}")
        if pending.max_age != 0:
            raise errors.LoginStateInvalid(detail="link offer proof was not asked as a fresh sign-in")
        proven = adapter.finish(pending, params, now)
    except errors.BrokerError as exc:
        raise DownstreamFailure(exc, waiting) from exc
    return _proven(offer, name, proven)


def saml_callback(relay_state: str,
                  verify: Callable[[UpstreamIdp, SamlPending], UpstreamIdentity]) -> Response | None:
    """A SAML IdP's answer proving the old identity, or None when ``relay_state`` is not a link offer's."""
    svc = services()
    stored = take_record(svc.pending, LinkOfferSaml, relay_state, svc.clock.now())
    if stored is None:
        return None
    offer, waiting = stored.offer, stored.offer.login
    pending = SamlPending.from_json(stored.upstream)
    try:
        if not pending.force_authn:
            raise errors.LoginStateInvalid(detail="link offer proof was not asked with ForceAuthn")
        proven = verify(idp_of(pending), pending)
    except errors.BrokerError as exc:
        raise DownstreamFailure(exc, waiting) from exc
    return _proven(offer, pending.upstream, proven)


def _proven(offer: LinkOffer, name: str, proven: UpstreamIdentity) -> Response:
    """The old identity answered: if it is of the offered account, ask the person to confirm (rule 3)."""
    svc = services()
    now = svc.clock.now()
    waiting, new = offer.login, offer.identity
    try:
        account = svc.accounts.find_by_identity(proven.issuer, proven.subject)
        if account is None or account.account_id != offer.account:
            raise errors.LoginStateInvalid("You signed in with an account that is not the one we suggested, so "
                                           "nothing was linked. Please start again from the application.",
                                           detail="link offer proven by an identity of another account")
    except errors.BrokerError as exc:
        raise DownstreamFailure(exc, waiting) from exc
    _same_sso(offer, waiting)
    handle = put_record(svc.pending, LinkOfferConfirm(offer=offer, proven_with=name), now + OFFER_LIFETIME)
    bind(handle)
    return link_confirm.page(
        new=_party(new.upstream), existing=_party(name), shown_as=link_confirm.shown_as(proven),
        link_url=url_for("link_offer.confirm", handle=handle),
        keep_url=url_for("link_offer.keep_separate", handle=handle), offer=True)


def _party(name: str) -> UpstreamParty | str:
    return services().registry.upstream(name) or name


def _take_confirmation(handle: str) -> LinkOfferConfirm:
    svc = services()
    return take_bound(svc.pending, LinkOfferConfirm, handle, svc.clock.now(), "link confirmation")


@bp.post("/link-offer/<handle>/link")
def confirm(handle: str) -> Response:
    """The person confirmed: link the new identity to the proven account and let the login continue."""
    from broker.web import login  # see ``separate``

    svc = services()
    now = svc.clock.now()
    stored = _take_confirmation(handle)
    offer, waiting, new = stored.offer, stored.offer.login, stored.offer.identity
    _same_sso(offer, waiting)
    outcome = svc.accounts.link_identity(offer.account, new, now)
    if outcome is LinkOutcome.CONFLICT:  # linked elsewhere meanwhile: never moved
        raise DownstreamFailure(errors.LoginStateInvalid(detail="offered identity linked elsewhere meanwhile"),
                                waiting)
    audit.record(AuditKind.LINKED, account_id=offer.account, upstream=new.upstream,
                 reason=f"link offer proven with {stored.proven_with} and confirmed")
    return login.sign_in(waiting, new, now)  # the login continues for the app that started it


@bp.post("/link-offer/<handle>/keep-separate")
def keep_separate(handle: str) -> Response:
    """After the proof, the person keeps the two apart: the new identity signs in to an account of its own."""
    from broker.web import login  # see ``separate``

    offer = _take_confirmation(handle).offer
    _same_sso(offer, offer.login)
    return login.sign_in(offer.login, offer.identity, services().clock.now())
