"""The broker's SAML SP role on the web: its metadata, sending AuthnRequests, and the Assertion Consumer Service.

A login whose chosen upstream is a SAML IdP leaves through ``send`` (signed AuthnRequest, Redirect or POST); the
IdP answers at ``/saml2/sp/acs`` (HTTP-POST binding, SAML Bindings §3.5). The ACS accepts only a Response to a
request this browser started: the RelayState is the handle of the pending request, bound to the browser, used
once; the Response must be ``InResponseTo`` that request (``saml_response`` checks it with the rest). An
unsolicited Response is accepted only from an upstream registered with ``allow_unsolicited``; it signs the
citizen in to the portal. Each assertion ID is kept in the shared pending store until the assertion expires,
so a replayed assertion is refused on every instance.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime

from flask import Blueprint, request, session, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from broker.core import errors
from broker.core.model import PORTAL_PARTY, LoginRequest, Protocol, UpstreamIdentity
from broker.core.pending_kinds import Kind
from broker.core.pending_records import LoginAtSamlUpstream, take_record
from broker.core.ports import HandleInUse
from broker.downstream.saml_responses import PostForm
from broker.upstream import saml_response
from broker.upstream.saml_identity import identity_from
from broker.upstream.saml_model import ResponseRefused, UpstreamStatus, VerifiedAssertion
from broker.upstream.saml_settings import SamlPending, UpstreamIdp
from broker.upstream.saml_slo import STATE_KEYS
from broker.upstream.saml_structure import StructureError, parse_document
from broker.web import link_offer, linking, login, metrics
from broker.web.browser_state import unbind
from broker.web.replies import DownstreamFailure, post_form_page
from broker.web.saml_send import idp_of
from broker.web.services import services

bp = Blueprint("saml_sp", __name__)
ACS_PATH = "/saml2/sp/acs"
SAME_SITE_MARK = "_same_site"
_STATUS = "urn:oasis:names:tc:SAML:2.0:status:"
_ISSUER = "{urn:oasis:names:tc:SAML:2.0:assertion}Issuer"


@bp.get("/saml2/sp/metadata")
def metadata() -> Response:
    """The broker's SP metadata, signed (SAML 2.0 Metadata §2.4.4): what upstream IdPs register."""
    return Response(services().saml_sp.metadata_xml(), mimetype="application/samlmetadata+xml")


def _status_error(exc: UpstreamStatus) -> errors.BrokerError:
    """The IdP's non-Success status (SAML Core §3.2.2.2) as the error the downstream receives."""
    detail = f"IdP status {exc.status} / {exc.sub_status}: {exc.message!r:.200}"
    if exc.sub_status == _STATUS + "NoPassive":
        return errors.NoPassive(detail=detail)
    if exc.sub_status == _STATUS + "NoAuthnContext":
        return errors.InsufficientAssurance(detail=detail)
    return errors.UpstreamError(detail=detail)


def _first_use(assertion: VerifiedAssertion) -> None:
    """Replay defence (SAML Profiles §4.1.4.5): an assertion ID is accepted once, on any instance, until the
    assertion expires."""
    svc = services()
    handle = "saml:" + hashlib.sha256(f"{assertion.issuer}\x00{assertion.assertion_id}".encode()).hexdigest()
    try:
        svc.pending.put_with_handle(Kind.SAML_ASSERTION, handle, "", assertion.keep_id_until)
    except HandleInUse as exc:
        raise errors.UpstreamVerificationFailed(detail=f"assertion {assertion.assertion_id!r:.80} replayed") from exc


@metrics.step("upstream_verify")
def _verify(idp: UpstreamIdp, pending: SamlPending | None, form_value: str, now: datetime) -> VerifiedAssertion:
    svc = services()
    try:
        assertion = saml_response.verify_response(form_value, svc.saml_sp.expectations(idp, pending), now)
    except ResponseRefused as exc:
        raise errors.UpstreamVerificationFailed(detail=f"SAML Response from {idp.entity_id}: {exc.reason}") from exc
    except UpstreamStatus as exc:
        raise _status_error(exc) from exc
    _first_use(assertion)
    return assertion


def _unsolicited_idp(form_value: str) -> UpstreamIdp:
    """The upstream an unsolicited Response claims to come from, if it may send one; its signature and every
    other rule are checked next by ``_verify`` against that upstream's metadata."""
    try:
        root = parse_document(base64.b64decode(form_value, validate=True)[: 256 * 1024 + 1])
        issuer = (root.findtext(_ISSUER) or "").strip()
    except (StructureError, ValueError) as exc:
        raise errors.LoginStateInvalid(detail=f"unsolicited SAML Response unreadable: {exc}") from exc
    idp = services().saml_upstream_by_entity(issuer)
    if idp is None or not idp.allow_unsolicited:
        raise errors.LoginStateInvalid(detail=f"unsolicited SAML Response from {issuer[:200]!r}, which may not "
                                              "send one (or no request of this browser is waiting)")
    return idp


def upstream_state(assertion: VerifiedAssertion) -> tuple[tuple[str, str], ...]:
    """What the IdP needs to end its session at logout (``broker.upstream.saml_slo``): its NameID, as issued."""
    values = (assertion.name_id, assertion.name_id_format, assertion.name_qualifier, assertion.sp_name_qualifier,
              assertion.session_index)
    return tuple((key, value) for key, value in zip(STATE_KEYS, values, strict=True) if value)


@bp.post(ACS_PATH)
def acs() -> Response:
    """Step 4 (back) for SAML IdPs: verify the Response, then steps 5 and 6 (``login.sign_in``).

    The IdP's POST is cross-site, so the browser sends no ``SameSite=Lax`` cookie with it: the broker first
    answers with its own page that posts the same fields here again, same-site, with the cookie.
    """
    svc = services()
    now = svc.clock.now()
    form = request.form.to_dict()
    relay_state = form.get("RelayState", "")
    form_value = form.get("SAMLResponse", "")
    if not form_value:
        raise errors.InvalidRequest(detail="no SAMLResponse in the POST")
    if relay_state not in session.get("pending", []) and SAME_SITE_MARK not in form:
        fields = tuple(sorted({**form, SAME_SITE_MARK: "1"}.items()))
        return post_form_page(PostForm(svc.settings.url(url_for("saml_sp.acs")), fields),
                              heading=_("Completing your sign-in"))
    bound = bool(relay_state) and unbind(relay_state)
    stored = take_record(svc.pending, LoginAtSamlUpstream, relay_state, now) if bound else None
    if stored is None and bound:
        # not a login's request: a link journey from the portal, or the old identity proven for a link offer
        def verify(idp: UpstreamIdp, pending: SamlPending) -> UpstreamIdentity:
            return identity_from(idp, _verify(idp, pending, form_value, now))

        for journey in (linking.saml_callback, link_offer.saml_callback):
            if (answered := journey(relay_state, verify)) is not None:
                return answered
    if stored is None:
        idp = _unsolicited_idp(form_value)
        assertion = _verify(idp, None, form_value, now)
        portal = LoginRequest(PORTAL_PARTY.party_id, Protocol.PORTAL, url_for("portal.home"), None, None, frozenset())
        return login.sign_in(portal, identity_from(idp, assertion), now, upstream_state(assertion))
    login_request, pending = stored.login, SamlPending.from_json(stored.upstream)  # LoginStateInvalid if damaged
    try:
        sender = idp_of(pending)
        assertion = _verify(sender, pending, form_value, now)
        identity = identity_from(sender, assertion)
        offered = link_offer.consider(login_request, identity, now)
    except errors.BrokerError as exc:
        raise DownstreamFailure(exc, login_request) from exc
    if offered is not None:
        return offered
    return login.sign_in(login_request, identity, now, upstream_state(assertion))
