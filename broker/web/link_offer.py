"""First sign-in with a new upstream whose verified e-mail address matches an existing account (issue 5,
linking flow 2).

The broker never merges on an address: that is how pre-account takeover works (an attacker registers the
victim's address first at a provider that does not verify it, or changes an account's address). It offers
instead: "this looks like your account: sign in with <the provider you used before> to link". The new
identity waits server-side under a single-use handle bound to this browser; it is linked only after the
person proves the old identity in the same browser, and the old identity must belong to the offered account.
Continuing separately makes a new account, as before.

Only an address the upstream asserts as verified (``UpstreamIdentity.linkable_email``: never Apple's relay
addresses nor Microsoft Entra's mutable ``email``) is matched, against addresses other identities asserted
as verified, through a keyed index (claims are sealed). Automatic linking exists only for upstream pairs the
operator lists in ``[linking] auto_link_by_email`` with the new upstream in ``email_authoritative``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta

from flask import Blueprint, redirect, render_template
from werkzeug.wrappers import Response

from broker.core import errors
from broker.core.audit import AuditKind
from broker.core.model import LinkedIdentity, LoginRequest, UpstreamIdentity
from broker.core.ports import LinkOutcome
from broker.upstream.oidc import PendingAuthorization
from broker.upstream.saml_settings import SamlPending, UpstreamIdp
from broker.web import audit
from broker.web.browser_state import bind, unbind
from broker.web.replies import DownstreamFailure
from broker.web.saml_send import idp_of, outgoing_page
from broker.web.services import services

bp = Blueprint("link_offer", __name__)
KIND_OFFER, KIND_OFFER_OIDC, KIND_OFFER_SAML = "link-offer", "oidc-link-offer", "saml-link-offer"
OFFER_LIFETIME = timedelta(minutes=10)


def _candidates(identity: UpstreamIdentity) -> list[LinkedIdentity]:
    email = identity.linkable_email
    if email is None or services().accounts.find_by_identity(identity.issuer, identity.subject) is not None:
        return []
    return [o for o in services().accounts.verified_email_owners(email)
            if (o.issuer, o.subject) != (identity.issuer, identity.subject)]


def consider(login_request: LoginRequest, identity: UpstreamIdentity, now: datetime) -> Response | None:
    """Before a first sign-in completes: the offer page, an automatic link, or None (sign in as usual)."""
    svc = services()
    owners = _candidates(identity)
    if not owners:
        return None
    accounts = sorted({o.account_id for o in owners})
    rules = svc.settings.linking
    auto = [o for o in owners if (identity.upstream, o.upstream) in rules.auto_link_by_email]
    if len(accounts) == 1 and auto and identity.upstream in rules.email_authoritative:
        if svc.accounts.link_identity(accounts[0], identity, now) is LinkOutcome.LINKED:
            audit.record(AuditKind.LINKED, account_id=accounts[0], upstream=identity.upstream,
                         reason="automatic: verified e-mail, configured upstream pair")
        return None
    if len(accounts) != 1:
        return None  # the address is on several accounts: suggesting one of them would be a guess
    payload = json.dumps({"login": login_request.to_json(), "identity": identity.to_json(), "account": accounts[0],
                          "upstreams": sorted({o.upstream for o in owners})})
    handle = svc.pending.put(KIND_OFFER, payload, now + OFFER_LIFETIME)
    bind(handle)
    previous = [u for u in (svc.registry.upstream(n) for n in sorted({o.upstream for o in owners})) if u]
    return Response(render_template("link_offer.html", handle=handle, previous=previous,
                                    new=svc.registry.upstream(identity.upstream)), mimetype="text/html")


def _take(handle: str) -> dict[str, str]:
    svc = services()
    payload = svc.pending.take(KIND_OFFER, handle, svc.clock.now()) if unbind(handle) else None
    if payload is None:
        raise errors.LoginStateInvalid(detail="link offer unknown, expired, used or from another browser")
    try:
        offer = json.loads(payload)
        return {k: offer[k] for k in ("login", "identity", "account")} | {"upstreams": json.dumps(offer["upstreams"])}
    except (ValueError, KeyError, TypeError) as exc:
        raise errors.LoginStateInvalid(detail=f"stored link offer unreadable: {type(exc).__name__}") from exc


@bp.post("/link-offer/<handle>/separate")
def separate(handle: str) -> Response:
    """The person wants a separate account: the first sign-in completes as if nothing matched."""
    from broker.web import login  # login imports this module (``consider``, ``callback``): import at call time

    offer = _take(handle)
    waiting, identity = LoginRequest.from_json(offer["login"]), UpstreamIdentity.from_json(offer["identity"])
    return login.sign_in(waiting, identity, services().clock.now())


@bp.post("/link-offer/<handle>/prove/<name>")
def prove(handle: str, name: str) -> Response:
    """Go to the previous provider; its answer must name an identity of the offered account."""
    svc = services()
    now = svc.clock.now()
    offer = _take(handle)
    waiting = LoginRequest.from_json(offer["login"])
    adapter, idp = svc.upstream_adapter(name), svc.saml_upstream(name)
    if (adapter is None and idp is None) or name not in json.loads(offer["upstreams"]):
        raise DownstreamFailure(errors.UnknownUpstream(detail=f"{name!r} is not an offered upstream"), waiting)
    if adapter is None and idp is not None:
        outgoing, saml_pending = svc.saml_sp.authn_request(idp, None, now)
        svc.pending.put_with_handle(KIND_OFFER_SAML, saml_pending.relay_state, json.dumps(
            {"offer": offer, "upstream": saml_pending.to_json()}), now + OFFER_LIFETIME)
        bind(saml_pending.relay_state)
        return outgoing_page(outgoing)
    assert adapter is not None
    url, pending = adapter.start(now)
    svc.pending.put_with_handle(KIND_OFFER_OIDC, pending.state, json.dumps({"offer": offer, "upstream":
                                                                            pending.to_json()}), now + OFFER_LIFETIME)
    bind(pending.state)
    return redirect(url)


def callback(name: str, state: str, params: dict[str, str]) -> Response | None:
    """The previous provider's answer, or None when ``state`` is not a link offer's (see ``linking.callback``)."""
    svc = services()
    now = svc.clock.now()
    payload = svc.pending.take(KIND_OFFER_OIDC, state, now)
    if payload is None:
        return None
    offer, upstream, waiting, new = _stored(payload)
    pending = PendingAuthorization.from_json(upstream)
    adapter = svc.upstream_adapter(name)
    try:
        if pending.upstream != name or adapter is None:
            raise errors.UpstreamVerificationFailed(detail=f"offer state for {pending.upstream!r} at {name!r}")
        proven = adapter.finish(pending, params, now)
    except errors.BrokerError as exc:
        raise DownstreamFailure(exc, waiting) from exc
    return _proven(offer, waiting, new, name, proven)


def saml_callback(relay_state: str,
                  verify: Callable[[UpstreamIdp, SamlPending], UpstreamIdentity]) -> Response | None:
    """A SAML IdP's answer proving the old identity, or None when ``relay_state`` is not a link offer's."""
    svc = services()
    payload = svc.pending.take(KIND_OFFER_SAML, relay_state, svc.clock.now())
    if payload is None:
        return None
    offer, upstream, waiting, new = _stored(payload)
    pending = SamlPending.from_json(upstream)
    try:
        proven = verify(idp_of(pending), pending)
    except errors.BrokerError as exc:
        raise DownstreamFailure(exc, waiting) from exc
    return _proven(offer, waiting, new, pending.upstream, proven)


def _stored(payload: str) -> tuple[dict[str, str], str, LoginRequest, UpstreamIdentity]:
    """(the offer, the upstream's pending request as stored, the waiting login, the new identity)."""
    try:
        stored = json.loads(payload)
        offer = stored["offer"]
        return offer, str(stored["upstream"]), LoginRequest.from_json(offer["login"]), \
            UpstreamIdentity.from_json(offer["identity"])
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise errors.LoginStateInvalid(detail=f"stored link offer unreadable: {type(exc).__name__}") from exc


def _proven(offer: dict[str, str], waiting: LoginRequest, new: UpstreamIdentity, name: str,
            proven: UpstreamIdentity) -> Response:
    """The old identity answered: link the new one to its account, if it is the offered account."""
    from broker.web import login  # see ``separate``

    svc = services()
    now = svc.clock.now()
    try:
        account = svc.accounts.find_by_identity(proven.issuer, proven.subject)
        if account is None or account.account_id != offer["account"]:
            raise errors.LoginStateInvalid("You signed in with an account that is not the one we suggested, so "
                                           "nothing was linked. Please start again from the application.",
                                           detail="link offer proven by an identity of another account")
    except errors.BrokerError as exc:
        raise DownstreamFailure(exc, waiting) from exc
    outcome = svc.accounts.link_identity(account.account_id, new, now)
    if outcome is LinkOutcome.CONFLICT:  # linked elsewhere meanwhile: never moved
        raise DownstreamFailure(errors.LoginStateInvalid(detail="offered identity linked elsewhere meanwhile"),
                                waiting)
    audit.record(AuditKind.LINKED, account_id=account.account_id, upstream=new.upstream,
                 reason=f"link offer proven with {name}")
    return login.sign_in(waiting, new, now)  # the login continues for the app that started it
