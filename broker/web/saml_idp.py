"""The broker's SAML IdP endpoints: metadata and single sign-on (HTTP-Redirect and HTTP-POST)."""

from __future__ import annotations

from flask import Blueprint, current_app, request
from werkzeug.wrappers import Response

from broker.core import errors
from broker.downstream.saml_requests import IncomingRequest, RequestRejected, parse_authn_request, redirect_request
from broker.journeys.context import DownstreamFailure
from broker.web import login
from broker.web.ops import metrics
from broker.web.ops.limits import check_downstream
from broker.web.services import services

bp = Blueprint("saml_idp", __name__, url_prefix="/saml2/idp")
BINDING_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
BINDING_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"


@bp.get("/metadata")
def metadata() -> Response:
    svc = services()
    xml = svc.idp.metadata_xml(svc.registry.snapshot.saml)
    return Response(xml, mimetype="application/samlmetadata+xml")


def _handle(incoming: IncomingRequest) -> Response:
    svc = services()
    try:
        with metrics.step("parse_request"):
            login_request = parse_authn_request(svc.idp, svc.registry.snapshot.saml, incoming, svc.clock.now())
    except RequestRejected as rejected:
        if rejected.reply is not None:
            raise DownstreamFailure(rejected.error, rejected.reply) from rejected
        raise rejected.error from rejected
    check_downstream(current_app, login_request.downstream)
    return login.begin(login_request)


@bp.get("/sso/redirect")
def sso_redirect() -> Response:
    try:
        incoming = redirect_request(request.query_string)
    except RequestRejected as rejected:
        raise rejected.error from rejected
    return _handle(incoming)


@bp.post("/sso/post")
def sso_post() -> Response:
    saml_request = request.form.get("SAMLRequest")
    if not saml_request:
        raise errors.InvalidRequest(detail="SAMLRequest missing")
    return _handle(IncomingRequest(
        binding=BINDING_POST, saml_request=saml_request, relay_state=request.form.get("RelayState"),
        idp_hint=request.args.get("idp_hint") or request.form.get("idp_hint"),
    ))
