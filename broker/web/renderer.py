"""The one place the broker's pages are rendered: a journey's ``Outcome`` (``broker.core.outcomes``) becomes an
HTTP response here, and so do the failures that reach people and apps.

A ``DownstreamFailure`` carries an error that can go back to the app in its protocol (its return address was
already checked); any other ``BrokerError`` becomes a readable page. Every error page shows a support
reference that is also in the log line with the operator detail, is titled by what happened (``heading_for``),
shows the core's English message translated here (``gettext``: the core marks it with ``N_``), and offers the way
back to the app of the login (``broker.web.http.way_back``), else to the citizen's account and the home page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import urlsplit

from flask import redirect, render_template
from flask_babel import gettext as _
from markupsafe import Markup
from werkzeug.wrappers import Response

from broker.core import errors
from broker.core.audit import AuditKind
from broker.core.outcomes import Outcome, Page, PostForm, Redirect
from broker.journeys import login
from broker.journeys.context import Browser, DownstreamFailure, Journeys
from broker.journeys.way_back import WayBack, for_login
from broker.web.http import audit, way_back
from broker.web.http.journey_context import FlaskBrowser, support_reference
from broker.web.ops import metrics
from broker.web.services import services

log = logging.getLogger("broker.errors")

#: pages that show logos from registrations and metadata (https or data: only, ``core.display``)
LOGO_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; "
            "frame-ancestors 'none'; base-uri 'none'; object-src 'none'")


def framing_csp(urls: tuple[str, ...], *, logos: bool) -> str:
    """The policy of a page that loads ``urls`` in frames (front-channel logout): their origins alone in
    ``frame-src`` (CSP Level 3 §6.1.6), everything else as on every page."""
    origins = sorted({f"{p.scheme}://{p.netloc}" for p in map(urlsplit, urls) if p.scheme in ("https", "http")})
    images = "'self' data: https:" if logos else "'self' data:"
    return (f"default-src 'self'; script-src 'self'; style-src 'self'; img-src {images}; "
            f"frame-src {' '.join(origins) or chr(39) + 'none' + chr(39)}; "
            "frame-ancestors 'none'; base-uri 'none'; object-src 'none'")


def journeys() -> Journeys:
    return services().journeys


def browser() -> FlaskBrowser:
    return FlaskBrowser()


def run(step: Callable[[Journeys, Browser], Outcome]) -> Response:
    """Call one step of a journey with the wired ports and this request's browser, and render its outcome."""
    return render(step(journeys(), browser()))


def render(outcome: Outcome) -> Response:
    if isinstance(outcome, Redirect):
        return redirect(outcome.url, code=outcome.status)
    if isinstance(outcome, PostForm):
        return post_form_page(outcome)
    return page(outcome)


def page(shown: Page) -> Response:
    headers = {"Content-Security-Policy": LOGO_CSP} if shown.shows_logos else {}
    if shown.frames:
        headers["Content-Security-Policy"] = framing_csp(shown.frames, logos=shown.shows_logos)
    if shown.no_store:
        headers["Cache-Control"] = "no-store"
    return Response(html(shown.template, **shown.data), status=shown.status, mimetype="text/html", headers=headers)


def html(template: str, **data: Any) -> str:
    """A template rendered with ``data`` (for views whose page is not yet a ``Page``)."""
    return render_template(template, **data)


def post_form_page(form: PostForm, status: int = 200, heading: str | None = None) -> Response:
    """A page that posts ``form`` at once (with JavaScript) or when the person presses Continue."""
    return Response(html("post_form.html", form=form, heading=heading), status=status,
                    mimetype="text/html")


def heading_for(status: int, *, sign_in: bool = False) -> str:
    """An error page's title and heading by what happened (issue 20): only a failed sign-in says so; a missing
    page, a refused request, a rate limit and the broker's own failures each say what they are."""
    if status == 503:
        return str(_("The service is not available right now"))
    if status >= 500:
        return str(_("Something went wrong on our side"))
    if status == 429:
        return str(_("Too many attempts, please wait"))
    if sign_in:
        return str(_("We could not sign you in"))
    if status == 404:
        return str(_("Page not found"))
    return str(_("This request could not be handled"))


def error_html(status: int, message: str, reference: str, *, sign_in: bool = False,
               back: WayBack | None = None, look_up: bool = True) -> str:
    """The error page: its heading by ``status``, the (already translated) ``message``, the support reference,
    and the way back: to ``back``, else to the app this request's login came from (not ``look_up``: an outage,
    where the stores it would read are down), else the account and home."""
    return html("error.html", heading=heading_for(status, sign_in=sign_in), message=message, reference=reference,
                ways=True, way_back=back or (way_back.current() if look_up else None))


def error_page(error: errors.BrokerError, back: WayBack | None = None) -> Response:
    reference = support_reference()
    log.warning("ref=%s error=%s status=%s detail=%s", reference, type(error).__name__, error.http_status,
                error.detail)
    audit.record(AuditKind.LOGIN_FAILED, reason=type(error).__name__, reference=reference)
    metrics.login_failed(error)
    page = error_html(error.http_status, str(_(error.message)), reference, sign_in=True, back=back)
    return Response(page, status=error.http_status, mimetype="text/html")


def reply_to_downstream(failure: DownstreamFailure) -> Response:
    """The error in the app's protocol; a page when the app is gone from the registry."""
    reference = support_reference()
    log.warning("ref=%s error=%s downstream=%s detail=%s", reference, type(failure.error).__name__,
                failure.login.downstream, failure.error.detail)
    audit.record(AuditKind.LOGIN_FAILED, downstream=failure.login.downstream, reason=type(failure.error).__name__,
                 reference=reference)
    metrics.login_failed(failure.error, failure.login.downstream)
    reply = login.failure_answer(journeys(), failure.login, failure.error)
    return render(reply) if reply is not None else error_page(failure.error, for_login(journeys(), failure.login))



class FrontChannelMessage(Protocol):
    """A protocol message through the browser (``broker.upstream.saml_settings.Outgoing``)."""

    @property
    def url(self) -> str: ...

    @property
    def fields(self) -> tuple[tuple[str, str], ...]: ...

    @property
    def is_post(self) -> bool: ...


def outgoing_page(outgoing: FrontChannelMessage, heading: str | None = None) -> Response:
    """A message through the browser: a page that posts the form (HTTP-POST binding), or a redirect."""
    if outgoing.is_post:
        return post_form_page(PostForm(outgoing.url, outgoing.fields), heading=heading)
    return redirect(outgoing.url)


def json_data(text: str) -> Markup:
    """JSON to embed as data in ``<script type="application/json">``: "<", ">" and "&" escaped (as JSON string
    escapes, so it still parses the same), so no value can close the element or start markup."""
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))  # noqa: S704
