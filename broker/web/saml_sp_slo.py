"""The broker's SingleLogoutService as a SAML SP (``/saml2/sp/slo/redirect`` and ``/saml2/sp/slo/post``), as
HTTP. Two messages arrive here from upstream IdPs (SAML 2.0 Profiles §4.4), each verified by the
``UpstreamLogout`` adapter (``broker.upstream.saml_idp_logout``) against the sending IdP's metadata: the
LogoutResponse to the broker's own LogoutRequest, and an IdP-initiated LogoutRequest. What each does:
``broker.journeys.logout``.

The IdP's POST is cross-site: the broker first posts the same fields to itself, same-site, with the cookie.
"""

from __future__ import annotations

from flask import Blueprint, request, session, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from broker.core.outcomes import PostForm
from broker.journeys import upstream_logout
from broker.web.renderer import journeys, post_form_page, run
from broker.web.services import services

bp = Blueprint("saml_sp_slo", __name__, url_prefix="/saml2/sp/slo")
SAME_SITE_MARK = "_same_site"


@bp.get("/redirect")
def slo_redirect() -> Response:
    return _handle(request.args.to_dict(), request.query_string, url_for("saml_sp_slo.slo_redirect"))


@bp.post("/post")
def slo_post() -> Response:
    form = request.form.to_dict()
    if SAME_SITE_MARK not in form and form.get("RelayState", "") not in session.get("pending", []):
        fields = tuple(sorted({**form, SAME_SITE_MARK: "1"}.items()))
        return post_form_page(PostForm(services().settings.url(url_for("saml_sp_slo.slo_post")), fields),
                              heading=_("Signing you out"))
    form.pop(SAME_SITE_MARK, None)
    return _handle(form, None, url_for("saml_sp_slo.slo_post"))


def _handle(params: dict[str, str], query_string: bytes | None, path: str) -> Response:
    j = journeys()
    if j.upstream_logout is None:
        raise RuntimeError("upstream single logout is not wired")
    message = j.upstream_logout.read(params, query_string, services().settings.url(path), j.now())
    return run(lambda j, b: upstream_logout.message_from_idp(j, b, message, params.get("RelayState")))


@bp.get("/reply/<handle>")
def reply(handle: str) -> Response:
    """After the chain: the signed LogoutResponse to the IdP that asked."""
    return run(lambda j, b: upstream_logout.reply(j, b, handle))
