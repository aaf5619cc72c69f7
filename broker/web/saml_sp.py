"""The broker's SAML SP role on the web: its metadata, and the Assertion Consumer Service.

A login whose chosen upstream is a SAML IdP leaves with a signed AuthnRequest (``broker.upstream.saml_upstreams``);
the IdP answers at ``/saml2/sp/acs`` (HTTP-POST binding, SAML Bindings §3.5), which hands the answer to
``broker.journeys.upstream_answers``: the RelayState is the handle of the waiting request, bound to the browser,
used once. The adapter checks the Response (``InResponseTo`` that request, signature, replay, status); an
unsolicited Response is accepted only from an upstream registered with ``allow_unsolicited``.
"""

from __future__ import annotations

from flask import Blueprint, request, session, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from broker.core import errors
from broker.core.model import Protocol
from broker.core.outcomes import PostForm
from broker.journeys.upstream_answers import upstream_answer
from broker.web.http import way_back
from broker.web.renderer import post_form_page, run
from broker.web.services import services

bp = Blueprint("saml_sp", __name__)
ACS_PATH = "/saml2/sp/acs"
SAME_SITE_MARK = "_same_site"


@bp.get("/saml2/sp/metadata")
def metadata() -> Response:
    """The broker's SP metadata, signed (SAML 2.0 Metadata §2.4.4): what upstream IdPs register."""
    return Response(services().saml_sp.metadata_xml(), mimetype="application/samlmetadata+xml")


@bp.post(ACS_PATH)
def acs() -> Response:
    """Step 4 (back) for SAML IdPs.

    The IdP's POST is cross-site, so the browser sends no ``SameSite=Lax`` cookie with it: the broker first
    answers with its own page that posts the same fields here again, same-site, with the cookie.
    """
    form = request.form.to_dict()
    relay_state = form.get("RelayState", "")
    if not form.get("SAMLResponse", ""):
        raise errors.InvalidRequest(detail="no SAMLResponse in the POST")
    if relay_state not in session.get("pending", []) and SAME_SITE_MARK not in form:
        fields = tuple(sorted({**form, SAME_SITE_MARK: "1"}.items()))
        return post_form_page(PostForm(services().settings.url(url_for("saml_sp.acs")), fields),
                              heading=_("Completing your sign-in"))
    # a replay (Back to this address) is refused, but its page leads back to the app (``broker.web.http.way_back``)
    return way_back.through(relay_state, lambda: run(lambda j, b: upstream_answer(j, b, Protocol.SAML,
                                                                                 relay_state, form)))
