"""Where a state-changing request comes from: the broker's origin check, next to Flask-WTF's CSRF token.

Every page of the broker is served with ``Referrer-Policy: same-origin`` (W3C Referrer Policy §3): a browser
then sends the full ``Referer`` to the broker itself and nothing to any other origin, and on a form POST it
serialises ``Origin`` as the page's origin when the form posts to the broker, and as ``null`` when the form
posts to another origin (Fetch standard §3.2.5 "append a request `Origin` header", step 4: under
``same-origin`` a cross-origin request's origin becomes ``null``; under ``no-referrer`` every one does).

The check (``problem``), for every POST, PUT, PATCH and DELETE that is not CSRF-exempt by design:

- ``Origin`` present: it must be the origin of the configured ``base_url`` (RFC 6454 §4, compared as
  scheme, host and port, §5), never the ``Host`` header, which the client or a proxy may rewrite.
  ``Origin: null`` (a cross-origin form, a sandboxed frame, a redirect across origins, Fetch §3.2.4) or any
  other origin is refused.
- ``Origin`` absent (older browsers on same-origin POSTs): the ``Referer`` must be a URL of that origin.
- Both absent: refused. A browser on a broker page always sends one of them; only a request made by hand
  or by a page that suppressed both can lack them, and a form of the broker never needs that.

Trusted: the operator's ``base_url``. Untrusted: both headers (an attacker's own client can send anything,
which is why the session-bound CSRF token is checked as well; what the origin check adds is that a victim's
browser, which does not let a page forge these headers, cannot be made to post from another origin even
with a leaked token).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, current_app, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError, CSRFProtect

#: (scheme, host, port): a tuple origin, RFC 6454 §4 (the port always explicit)
Origin = tuple[str, str, int]
_DEFAULT_PORTS = {"http": 80, "https": 443}


class CrossOriginRequest(CSRFError):  # type: ignore[misc]  # flask_wtf ships no type information
    """A state-changing request that does not come from a page of the broker. ``kind`` (for the audit
    record): ``origin-null``, ``foreign-origin``, ``foreign-referer`` or ``no-origin``."""

    def __init__(self, kind: str) -> None:
        super().__init__(_("This form was not sent from a page of this service, so it was not accepted. "
                           "Go back to the page you came from and try again."))
        self.kind = kind


def origin_of(url: str) -> Origin | None:
    """The origin of an http(s) URL (RFC 6454 §4): scheme and host lower-cased, the host in its ASCII form
    (§6.2 asks for the IDNA form, as browsers send it), the default port made explicit; None for anything
    else (``null``, a relative or malformed URL, another scheme)."""
    try:
        parts = urlsplit(url.strip())
        scheme, host, port = parts.scheme.lower(), parts.hostname, parts.port
    except ValueError:  # an invalid port or IPv6 literal
        return None
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    try:
        ascii_host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        return None
    return scheme, ascii_host.lower(), port if port is not None else _DEFAULT_PORTS[scheme]


def _serialised_origin(value: str) -> Origin | None:
    """The ``Origin`` header's one serialised origin (RFC 6454 §6.2, §7.1): scheme, host and an optional
    port, nothing else (no path, user, query, fragment, nor a list of origins)."""
    value = value.strip()
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if " " in value or parts.path or parts.query or parts.fragment or "@" in parts.netloc:
        return None
    return origin_of(value)


def problem(origin: str | None, referer: str | None, expected: Origin) -> str | None:
    """Why a state-changing request is not from ``expected`` (a ``CrossOriginRequest`` kind), or None.

    ``origin`` and ``referer`` are the raw header values (None when absent)."""
    if origin is not None:
        if origin.strip() == "null":  # Fetch §3.2.5: an opaque or privacy-sensitive origin
            return "origin-null"
        return None if _serialised_origin(origin) == expected else "foreign-origin"
    if referer is None or not referer.strip():
        return "no-origin"
    return None if origin_of(referer) == expected else "foreign-referer"


class OriginCheckedCsrf(CSRFProtect):  # type: ignore[misc]  # flask_wtf ships no type information
    """Flask-WTF's ``CSRFProtect`` with the broker's origin check in place of its https ``Referer`` check
    (``WTF_CSRF_SSL_STRICT``, which demands a ``Referer`` that a browser never sends under
    ``Referrer-Policy: no-referrer`` and compares it with the ``Host`` header). The views and blueprints
    exempted with ``exempt`` skip both checks; the token check is unchanged."""

    def __init__(self, app: Flask, base_url: str) -> None:
        expected = origin_of(base_url)
        if expected is None:
            raise ValueError(f"base_url {base_url!r} has no http(s) origin")
        self.expected: Origin = expected
        #: views checked for their origin only, without a CSRF token (``origin_only``)
        self.origin_only_views: set[str] = set()
        app.config["WTF_CSRF_SSL_STRICT"] = False  # replaced by ``problem``, for http and https alike
        super().__init__(app)

    def origin_only(self, view: Callable[..., Any]) -> None:
        """``view`` takes POSTs from a page that carries no session, so no session-bound token either (a page
        that showed a token would open a session for every anonymous visitor, issue 15 point 3): only the
        origin check applies, which is what stops a form of another site from posting it."""
        self.origin_only_views.add(f"{view.__module__}.{view.__name__}")

    def protect(self, apply_exemptions: bool = False) -> None:
        """Refuse a cross-origin request, then check the CSRF token (Flask-WTF ≥ 1.3 calls this from its
        ``before_request`` hook with ``apply_exemptions=True``; ``_is_exempt`` is its own exemption test)."""
        if apply_exemptions and (not request.endpoint or self._is_exempt()):
            return
        if request.method in current_app.config["WTF_CSRF_METHODS"]:
            kind = problem(request.headers.get("Origin"), request.headers.get("Referer"), self.expected)
            if kind is not None:
                raise CrossOriginRequest(kind)
            view = current_app.view_functions.get(request.endpoint or "")
            if view is not None and f"{view.__module__}.{view.__name__}" in self.origin_only_views:
                return
        super().protect()
