"""Abuse limits on the sign-in and client registration endpoints (flask-limiter; Redis-backed when
configured).

Three kinds, each configurable (``[limits]``): per client address on every sign-in endpoint, per upstream
on its callback (all clients together: a flood against one provider's callback cannot starve the
others), and per downstream app once its AuthnRequest names it. A refusal is HTTP 429 with
``Retry-After`` and a readable page, and is logged as a security event.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, request
from flask_limiter import Limiter, RequestLimit
from flask_limiter.util import get_remote_address
from limits import parse_many
from werkzeug.exceptions import TooManyRequests

from broker.config import LimitSettings

log = logging.getLogger("broker.security")
#: the views every client address is limited on
SIGN_IN_VIEWS = ("saml_idp.sso_redirect", "saml_idp.sso_post", "login.discover", "login.go_upstream",
                 "login.oidc_callback",
                 # Dynamic Client Registration (RFC 7591 §3.1) and its management (RFC 7592 §2)
                 "oidc_registration.register", "oidc_registration.manage")


def _breach(limit: RequestLimit) -> None:
    log.warning("rate limit exceeded: endpoint=%s limit=%s", request.endpoint, limit.limit)


def _upstream_key() -> str:
    return "upstream:" + str((request.view_args or {}).get("name"))


def _wrap(app: Flask, endpoint: str, decorator: Callable[[Any], Any]) -> None:
    wrapped: Any = decorator(app.view_functions[endpoint])
    app.view_functions[endpoint] = wrapped


def init_limits(app: Flask, settings: LimitSettings, prefix: str) -> Limiter:
    """A limiter for ``app`` alone (``prefix`` keeps apps that share a store apart), wrapping its views."""
    limiter = Limiter(
        get_remote_address, app=app, storage_uri=settings.storage_url, key_prefix=prefix,
        headers_enabled=True, enabled=settings.enabled, on_breach=_breach, swallow_errors=False,
    )
    for endpoint in SIGN_IN_VIEWS:
        _wrap(app, endpoint, limiter.limit(settings.per_ip))
    _wrap(app, "login.oidc_callback", limiter.limit(settings.per_upstream, key_func=_upstream_key))
    app.extensions["broker_downstream_limits"] = (limiter, parse_many(settings.per_downstream))
    return limiter


def check_downstream(app: Flask, party_id: str) -> None:
    """Count one sign-in request of ``party_id``; ``TooManyRequests`` with Retry-After when over its limit."""
    limiter, items = app.extensions["broker_downstream_limits"]
    if not limiter.enabled:
        return
    strategy: Any = limiter.limiter
    for item in items:
        if not strategy.hit(item, "downstream", party_id):
            reset, _ = strategy.get_window_stats(item, "downstream", party_id)
            log.warning("rate limit exceeded: downstream=%s limit=%s", party_id, item)
            raise TooManyRequests("Too many sign-in requests from this application. Please try again shortly.",
                                  retry_after=max(1, int(reset - time.time())))
