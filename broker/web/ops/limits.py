"""Abuse limits on the sign-in, back-channel and client registration endpoints (flask-limiter; Redis-backed
when configured).

Each configurable (``[limits]``, ``broker.config.sections.LimitSettings``):

- per client address on the views that may create an account (``SIGN_UP_VIEWS``: sign-up with a passkey alone,
  ``per_ip_sign_up``), besides ``per_ip``;
- per client address on every view that starts or continues a sign-in (``SIGN_IN_VIEWS``: SAML SSO, OIDC Core
  §3.1.2.1 authorization, discovery, upstream callbacks and ACS, consent, link offers, portal sign-in,
  RFC 7591 registration) and on each back-channel endpoint (``API_VIEWS``);
- shared budgets: per upstream on its callback (a flood against one provider's callback cannot starve the
  others) and per downstream app once its request names it. A shared budget is only spent by requests that
  passed the per-address limit first, and one address may spend at most ``1/address_share`` of it (its own
  counter is checked before the budget's), so one address cannot lock every citizen out of an app
  (issue 15, point 3);
- per client on the back channel: its successful requests (``per_client``, spent only with the client's own
  credentials), and failed client authentication (RFC 6749 §2.3, §5.2) per (client_id, address), so
  guessing secrets, each checked with scrypt, costs the broker little (issue 15, point 4).

The back channel needs no Redis: when the counters' store is down, its limits are skipped (logged) and apps
keep redeeming codes and refreshing tokens; the sign-in limits fail closed with the rest of the sign-in
(``broker.web.ops.outages``).

A refusal is HTTP 429 with ``Retry-After`` (RFC 6585 §4): a readable page, or OAuth-style JSON on the back
channel (``broker.web.pages``); it is logged as a security event and audited at most once per window.

Round trips to the counters' store (issue 21): a request that is allowed costs one per check and nothing more.
No ``X-RateLimit-*`` headers are sent (no client of the broker reads them, and each cost a read of the window's
count and expiry after the request); the window is read only for a refusal's ``Retry-After``. The counters of one
check (an address's share and the shared budget; a client's failures and its budget) go together in one round
trip (``broker.web.ops.limit_counters``).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import redis.exceptions
from flask import Flask, current_app, request
from flask_limiter import Limiter, RequestLimit
from flask_limiter.util import get_remote_address
from limits import RateLimitItem, parse_many
from werkzeug.exceptions import TooManyRequests

from broker.config.sections import LimitSettings
from broker.core.audit_throttle import AuditThrottle
from broker.web.ops.limit_counters import Counter, first_refused

log = logging.getLogger("broker.security")
#: the views every client address is limited on: each starts or continues a sign-in
SIGN_IN_VIEWS = ("saml_idp.sso_redirect", "saml_idp.sso_post", "oidc_provider.authorize",
                 "login.discover", "login.discovered", "login.go_upstream", "login.oidc_callback", "saml_sp.acs",
                 "consent.decide", "link_offer.separate", "link_offer.prove", "portal.sign_in", "linking.start",
                 "console.sign_in",
                 "step_up.verify", "step_up.send_code", "step_up.enrol", "step_up.resume",
                 "authenticators.confirm", "authenticators.confirm_it_is_you",
                 "authenticators.email_start", "authenticators.email_confirm",
                 "authenticators.passkey_confirm", "login.passkey_begin", "login.passkey_finish",
                 "login.passkey_sign_up_begin", "login.passkey_sign_up_finish",
                 # Dynamic Client Registration (RFC 7591 §3.1) and its management (RFC 7592 §2)
                 "oidc_registration.register", "oidc_registration.manage")
#: the views that may create an account (sign-up with a passkey alone), limited per client address with
#: ``per_ip_sign_up`` as well: an address cannot mint accounts faster than a household or a library desk would
SIGN_UP_VIEWS = ("login.passkey_sign_up_finish",)
#: the back channel: token (RFC 6749 §3.2), UserInfo (OIDC Core §5.3), revocation (RFC 7009), introspection
#: (RFC 7662), and upstream providers' logout tokens (Back-Channel Logout 1.0 §2.5); each limited per client
#: address with ``per_ip_api``
API_VIEWS = ("oidc_api.token", "oidc_api.userinfo", "oidc_api.revoke", "oidc_api.introspect",
             "upstream_backchannel.logout",
             # the Shared Signals stream management API (SSF 1.0 §8.1), authenticated like the back channel
             "ssf.streams", "ssf.status", "ssf.verify")
#: blueprints every view of which is limited like ``API_VIEWS``: the admin API (issue 19, ``broker.web.admin_api``)
API_BLUEPRINTS = ("admin_api",)
#: the failed-authentication counter of client ids that are not registered: one per address, not one per id
UNKNOWN_CLIENT = "?"


@dataclass(frozen=True)
class _Budgets:
    limiter: Limiter
    prefix: str  # keeps apps that share a store apart
    per_downstream: tuple[RateLimitItem, ...]
    per_upstream: tuple[RateLimitItem, ...]
    address_share: int
    per_client: tuple[RateLimitItem, ...]
    failed_client_auth: tuple[RateLimitItem, ...]
    per_ip_api: tuple[RateLimitItem, ...]


def _breach(limit: RequestLimit) -> None:
    """A per-address limit of flask-limiter refused the request: 429 with Retry-After (RFC 6585 §4), the window's
    reset read now, for the refusal alone (``headers_enabled=False``: never for an allowed request)."""
    log.warning("rate limit exceeded: endpoint=%s limit=%s", request.endpoint, limit.limit)
    raise TooManyRequests(retry_after=max(1, int(limit.reset_at - time.time())))


def _wrap(app: Flask, endpoint: str, decorator: Callable[[Any], Any]) -> None:
    wrapped: Any = decorator(app.view_functions[endpoint])
    app.view_functions[endpoint] = wrapped


def _share(item: RateLimitItem, share: int) -> RateLimitItem:
    """What one address may spend of a shared budget: the same window, ``1/share`` of the amount (at least 1)."""
    return type(item)(max(1, item.amount // share), item.multiples)


def init_limits(app: Flask, settings: LimitSettings, prefix: str) -> Limiter:
    """A limiter for ``app`` alone (``prefix`` keeps apps that share a store apart), wrapping its views."""
    limiter = Limiter(
        get_remote_address, app=app, storage_uri=settings.storage_url, key_prefix=prefix,
        headers_enabled=False, enabled=settings.enabled, on_breach=_breach, swallow_errors=False,
    )
    app.extensions["broker_limits"] = _Budgets(
        limiter, prefix, tuple(parse_many(settings.per_downstream)), tuple(parse_many(settings.per_upstream)),
        settings.address_share, tuple(parse_many(settings.per_client)),
        tuple(parse_many(settings.failed_client_auth)), tuple(parse_many(settings.per_ip_api)))
    app.extensions["broker_audit_throttle"] = AuditThrottle(timedelta(seconds=settings.audit_window_seconds))
    # inside the per-address limit: only a request that passed it reaches the upstream's shared budget
    _wrap(app, "login.oidc_callback", _spending_upstream_budget)
    for endpoint in SIGN_UP_VIEWS:  # inside the per-address limit below
        _wrap(app, endpoint, limiter.limit(settings.per_ip_sign_up, scope="sign-up"))
    for endpoint in SIGN_IN_VIEWS:
        _wrap(app, endpoint, limiter.limit(settings.per_ip))
    for endpoint in (*API_VIEWS, *(e for e in list(app.view_functions) if e.split(".")[0] in API_BLUEPRINTS)):
        _wrap(app, endpoint, _per_address_api)
    return limiter


@contextmanager
def _store_outage_tolerated() -> Iterator[None]:
    """On the back channel, a counters' store that cannot be reached skips the limit instead of failing the
    request: refreshing tokens must not depend on Redis (the operator contract of ``broker.web.ops.outages``)."""
    try:
        yield
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        log.warning("rate-limit store unavailable, back channel served without limits: endpoint=%s cause=%s",
                    request.endpoint, type(exc).__name__)


def _per_address_api(view: Callable[..., Any]) -> Callable[..., Any]:
    """``per_ip_api``: each back-channel endpoint, per client address."""
    @functools.wraps(view)
    def limited(*args: Any, **kwargs: Any) -> Any:
        budgets = _budgets()
        if budgets is not None:
            keys = ("api", str(request.endpoint), get_remote_address())
            with _store_outage_tolerated():
                _check(budgets, [(item, keys) for item in budgets.per_ip_api], "Too many requests from this address.")
        return view(*args, **kwargs)
    return limited


def _budgets() -> _Budgets | None:
    budgets: _Budgets = current_app.extensions["broker_limits"]
    return budgets if budgets.limiter.enabled else None


def _check(budgets: _Budgets, counters: list[Counter], *messages: str, hit: bool = True) -> None:
    """Spend one of each counter in order (``hit=False``: only look), in one round trip; ``TooManyRequests`` for
    the first one used up, with ``messages[i]`` for counter ``i`` (the last message for every later one)."""
    refused = first_refused(budgets.limiter, budgets.prefix, counters, hit=hit)
    if refused is not None:
        item, keys = counters[refused]
        _refuse(budgets, item, keys, messages[min(refused, len(messages) - 1)])


def _refuse(budgets: _Budgets, item: RateLimitItem, keys: tuple[str, ...], message: str) -> None:
    strategy: Any = budgets.limiter.limiter
    reset, _ = strategy.get_window_stats(item, budgets.prefix, *keys)
    log.warning("rate limit exceeded: endpoint=%s %s=%s limit=%s", request.endpoint, keys[0], keys[1], item)
    raise TooManyRequests(message, retry_after=max(1, int(reset - time.time())))


def _spend_shared(budgets: _Budgets, scope: str, name: str, items: tuple[RateLimitItem, ...],
                  message: str) -> None:
    """One request against the shared budget ``scope``/``name``: first this address's share of it (a refusal
    there spends nothing of the budget), then the budget itself."""
    address = get_remote_address()
    _check(budgets, [(_share(item, budgets.address_share), (scope + "-share", name, address)) for item in items]
           + [(item, (scope, name)) for item in items], message)


def check_downstream(app: Flask, party_id: str) -> None:
    """Count one sign-in request of ``party_id``; ``TooManyRequests`` with Retry-After when over its limit or
    when this address used its share of it. Called by the views after their per-address limit passed."""
    budgets: _Budgets = app.extensions["broker_limits"]
    if budgets.limiter.enabled:
        _spend_shared(budgets, "downstream", party_id, budgets.per_downstream,
                      "Too many sign-in requests from this application. Please try again shortly.")


def _spending_upstream_budget(view: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(view)
    def limited(*args: Any, **kwargs: Any) -> Any:
        budgets = _budgets()
        if budgets is not None:
            _spend_shared(budgets, "upstream", str((request.view_args or {}).get("name")), budgets.per_upstream,
                          "Too many sign-in answers from this provider. Please try again shortly.")
        return view(*args, **kwargs)
    return limited


# -- the back channel: per client ----------------------------------------------------------------------------
def check_client(client_id: str | None) -> None:
    """Before authenticating a client: refuse when this address failed too often for ``client_id`` (a
    registered id, or None for any other) or when the client spent its budget of successful requests."""
    budgets = _budgets()
    if budgets is None:
        return
    failed = ("client-auth-failed", client_id or UNKNOWN_CLIENT, get_remote_address())
    failures: list[Counter] = [(item, failed) for item in budgets.failed_client_auth]
    own: list[Counter] = [(item, ("client", str(client_id))) for item in budgets.per_client if client_id is not None]
    with _store_outage_tolerated():
        _check(budgets, failures + own, *(["too many failed client authentications from this address"] * len(failures)),
               "too many requests from this client", hit=False)


def client_auth_failed(client_id: str | None) -> None:
    """Count a failed authentication of ``client_id`` (registered, or None) from this address."""
    budgets = _budgets()
    if budgets is None:
        return
    keys = ("client-auth-failed", client_id or UNKNOWN_CLIENT, get_remote_address())
    with _store_outage_tolerated():
        first_refused(budgets.limiter, budgets.prefix, [(item, keys) for item in budgets.failed_client_auth],
                      until_refused=False)


def client_succeeded(client_id: str) -> None:
    """Count a successful request of an authenticated client against its budget."""
    budgets = _budgets()
    if budgets is None:
        return
    with _store_outage_tolerated():
        first_refused(budgets.limiter, budgets.prefix, [(item, ("client", client_id)) for item in budgets.per_client],
                      until_refused=False)
