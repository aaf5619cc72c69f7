"""The broker's SAML IdP endpoints: metadata and single sign-on (HTTP-Redirect and HTTP-POST)."""

from __future__ import annotations

from flask import Blueprint, current_app, request
from werkzeug.wrappers import Response

from broker.core.model import Protocol
from broker.core.protocol_ports import POST, REDIRECT, DownstreamMessage
from broker.journeys import login
from broker.web import theme
from broker.web.ops.limits import check_downstream
from broker.web.renderer import journeys, run
from broker.web.services import services

bp = Blueprint("saml_idp", __name__, url_prefix="/saml2/idp")


@bp.get("/metadata")
def metadata() -> Response:
    svc = services()
    xml = svc.idp.metadata_xml(svc.registry.snapshot.saml)
    return Response(xml, mimetype="application/samlmetadata+xml")


def _handle(message: DownstreamMessage) -> Response:
    login_request = login.read_request(journeys(), Protocol.SAML, message)
    check_downstream(current_app, login_request.downstream)
    theme.remember_login_app(login_request.downstream)  # the login's pages wear the app's theme
    return run(lambda j, b: login.begin(j, b, login_request))


@bp.get("/sso/redirect")
def sso_redirect() -> Response:
    return _handle(DownstreamMessage(REDIRECT, tuple(request.args.items(multi=True)), request.query_string))


@bp.post("/sso/post")
def sso_post() -> Response:
    hint = request.args.get("idp_hint")
    fields = (("idp_hint", hint),) if hint else ()
    return _handle(DownstreamMessage(POST, (*fields, *request.form.items(multi=True))))
