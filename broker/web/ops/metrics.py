"""Prometheus metrics at ``/metrics`` (``prometheus-client``).

- ``broker_logins_total{upstream, downstream, outcome}``: logins that ended; ``outcome`` is ``success`` (an
  upstream signed the citizen in), ``sso`` (answered from the SSO session) or the ``BrokerError`` class name
  of the failure (a fixed set, ``broker.core.errors``).
- ``broker_login_step_seconds{step}``: time spent in each step of a login (``STEPS``), measured by ``step``.
- ``broker_upstream_request_seconds{upstream, call}``: outbound HTTP to OpenID providers (``call``: discovery,
  jwks, token, userinfo, api, other), reported by ``broker.upstream.oidc_http.observers``.
- ``broker_http_requests_total{endpoint, status}``: every response, by Flask endpoint name.
- ``broker_idp_metadata_age_seconds{source}`` and ``broker_idp_metadata_entities{source}``: the SAML IdP
  metadata sources (``IdpDirectory.status()``), computed when scraped.
- ``broker_outbox_messages{state}`` and ``broker_outbox_oldest_pending_seconds``: the delivery outbox of
  back-channel logouts and security events (``Outbox.status()``, issue 18), computed when scraped.

Label values are bounded: upstream names are registered ones (an IdP of a federation directory counts as
``federation``; anything else ``other``), downstream names registered ones, at most ``MAX_PARTIES`` of
each per process (then ``other``).

Multi-process servers (gunicorn with several workers): set ``PROMETHEUS_MULTIPROC_DIR`` to an empty folder
writable by the workers before gunicorn starts (``deploy/gunicorn.conf.py`` marks exited workers dead); each
scrape then adds up every worker's counters (``prometheus_client.multiprocess``). Without it the numbers are
the answering process's own, which is right for a single process.

``/metrics`` requires ``Authorization: Bearer <token>`` when ``[broker] metrics_token_file`` (or
``BROKER_METRICS_TOKEN``) is set, which ``broker init`` does (``certs/metrics.token``). Without a token it
answers only a client on a loopback address (RFC 6890: 127.0.0.0/8, ::1) whose request no proxy relayed (no
``Forwarded`` or ``X-Forwarded-For``, RFC 7239): a reverse proxy on the same host connects from loopback on
behalf of anyone. Everything else gets 403. The figures (parties' names, login volumes, error kinds) are not
personal data but they map the federation and its traffic for an attacker. Neither rate limited nor CSRF
protected (GET only).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import ContextDecorator
from datetime import UTC, datetime
from types import TracebackType

from flask import Blueprint, Flask, has_app_context, request
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from werkzeug.wrappers import Response

from broker.core import errors
from broker.core.model import PORTAL_PARTY
from broker.core.outbox import Outbox
from broker.registry.metadata_refresh import IdpDirectory
from broker.upstream import oidc_http
from broker.web.services import services

log = logging.getLogger("broker.login")
bp = Blueprint("metrics", __name__)

#: the steps of a login, in order
STEPS = ("parse_request", "go_upstream", "upstream_verify", "complete_login", "answer")
#: the outbound calls, by a word of the ``what`` ``broker.upstream`` gives each request
CALLS = (("token", "token endpoint"), ("userinfo", "userinfo"), ("discovery", "discovery"), ("jwks", "jwks"),
         ("api", " api /"))
MAX_PARTIES = 500
#: endpoints whose failures are failed logins even when no downstream could be told
LOGIN_ENDPOINTS = frozenset({"saml_idp.sso_redirect", "saml_idp.sso_post", "oidc_provider.authorize",
                             "login.discover", "login.discovered", "login.go_upstream", "login.oidc_callback",
                             "saml_sp.acs", "consent.decide", "link_offer.separate",
                             "link_offer.prove", "step_up.verify", "login.passkey_finish"})

#: headers a proxy adds when it relays a request (RFC 7239 and the de-facto X-Forwarded-* family)
FORWARDING_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Real-IP")

LOGINS = Counter("broker_logins", "Logins that ended, by upstream, downstream and outcome",
                 ["upstream", "downstream", "outcome"])
STEP_SECONDS = Histogram("broker_login_step_seconds", "Time spent in each step of a login", ["step"],
                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
UPSTREAM_SECONDS = Histogram("broker_upstream_request_seconds", "Outbound HTTP requests to OpenID providers",
                             ["upstream", "call"],
                             buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0))
HTTP_REQUESTS = Counter("broker_http_requests", "HTTP responses, by Flask endpoint and status",
                        ["endpoint", "status"])


class _Bounded:
    """At most ``limit`` distinct label values per process; later newcomers are ``other``."""

    def __init__(self, limit: int) -> None:
        self.limit, self.seen, self.lock = limit, set[str](), threading.Lock()

    def __call__(self, value: str) -> str:
        with self.lock:
            if value in self.seen:
                return value
            if len(self.seen) >= self.limit:
                return "other"
            self.seen.add(value)
            return value


_upstreams, _downstreams = _Bounded(MAX_PARTIES), _Bounded(MAX_PARTIES)


def upstream_label(name: str | None) -> str:
    """A registered upstream's name; ``federation`` for an IdP of the metadata directory; ``none`` before one
    was chosen."""
    if not name:
        return "none"
    if name in services().registry.snapshot.upstreams:
        return _upstreams(name)
    return "federation" if services().saml_upstream(name) is not None else "other"


def downstream_label(party_id: str | None) -> str:
    if not party_id:
        return "none"
    registry = services().registry
    known = (party_id in registry.snapshot.saml.sps or party_id == PORTAL_PARTY.party_id
             or registry.oidc_client(party_id) is not None)
    return _downstreams(party_id) if known else "other"


def _error_kinds() -> frozenset[str]:
    found, todo = set[str](), [errors.BrokerError]
    while todo:
        kind = todo.pop()
        found.add(kind.__name__)
        todo.extend(kind.__subclasses__())
    return frozenset(found)


def login_succeeded(upstream: str | None, downstream: str, how: str) -> None:
    """Count a login answered (``how``: "upstream" or "sso")."""
    outcome = "sso" if how == "sso" else "success"
    LOGINS.labels(upstream_label(upstream), downstream_label(downstream), outcome).inc()


def login_failed(error: errors.BrokerError, downstream: str | None = None) -> None:
    """Count a failed login: always when a downstream is told, else only on the endpoints of a login."""
    if downstream is None and request.endpoint not in LOGIN_ENDPOINTS:
        return
    kind = type(error).__name__
    outcome = kind if kind in _error_kinds() else "BrokerError"
    args = request.view_args or {}
    upstream = args.get("name") or (request.values.get("entityID") if request.endpoint == "login.discovered" else None)
    LOGINS.labels(upstream_label(upstream if isinstance(upstream, str) else None), downstream_label(downstream),
                  outcome).inc()


class step(ContextDecorator):  # a lower-case name: used like a function, ``with step("answer"):``
    """Times one step of a login into ``broker_login_step_seconds`` and logs it (with the request and login
    ids, ``broker.logging_setup``)."""

    def __init__(self, name: str) -> None:
        if name not in STEPS:
            raise ValueError(f"unknown login step {name!r}")
        self.name, self.started = name, 0.0

    def _recreate_cm(self) -> step:
        return step(self.name)  # a decorated function may run in several threads at once

    def __enter__(self) -> step:
        self.started = time.perf_counter()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        seconds = time.perf_counter() - self.started
        STEP_SECONDS.labels(self.name).observe(seconds)
        outcome = "ok" if kind is None else "failed"
        log.info("login step %s %s in %.1f ms", self.name, outcome, seconds * 1000,
                 extra={"step": self.name, "outcome": outcome, "duration_ms": round(seconds * 1000, 1)})


def _observe_upstream(what: str, seconds: float) -> None:
    lowered = " " + what.lower()
    call = next((kind for kind, marker in CALLS if marker in lowered), "other")
    name = what.split(" ", 1)[0]
    known = has_app_context() and name in services().registry.snapshot.upstreams
    UPSTREAM_SECONDS.labels(_upstreams(name) if known else "other", call).observe(seconds)


def _count_response(response: Response) -> Response:
    HTTP_REQUESTS.labels(request.endpoint or "none", str(response.status_code)).inc()
    return response


class DirectoryCollector(Collector):
    """The IdP metadata sources' age and size, read from the directory when scraped."""

    def __init__(self, directory: IdpDirectory | None) -> None:
        self.directory = directory

    def describe(self) -> Iterable[Metric]:
        return ()

    def collect(self) -> Iterator[Metric]:
        age = GaugeMetricFamily("broker_idp_metadata_age_seconds", "Seconds since a SAML IdP metadata source "
                                "was last loaded", labels=["source"])
        entities = GaugeMetricFamily("broker_idp_metadata_entities", "IdPs in a SAML IdP metadata source "
                                     "(0 when expired)", labels=["source"])
        now = datetime.now(UTC)
        for source in self.directory.status() if self.directory is not None else ():
            entities.add_metric([source.name], source.entities)
            if source.loaded_at is not None:
                age.add_metric([source.name], max(0.0, (now - source.loaded_at).total_seconds()))
        yield age
        yield entities


class OutboxCollector(Collector):
    """The delivery outbox (issue 18), read when scraped: messages by state, and the age of the oldest pending one
    (a backlog that grows, or an age past the retry schedule, means no worker runs or a receiver keeps failing;
    dead letters wait for the operator, ``broker outbox``)."""

    def __init__(self, outbox: Outbox | None) -> None:
        self.outbox = outbox

    def describe(self) -> Iterable[Metric]:
        return ()

    def collect(self) -> Iterator[Metric]:
        if self.outbox is None:
            return
        try:
            status = self.outbox.status()
        except Exception:  # the database is down: the other metrics are still worth scraping
            log.warning("outbox status unavailable for /metrics", exc_info=True)
            return
        messages = GaugeMetricFamily("broker_outbox_messages", "Messages owed to apps, by state", labels=["state"])
        for state, count in status.counts:
            messages.add_metric([state.value], count)
        yield messages
        age = GaugeMetricFamily("broker_outbox_oldest_pending_seconds", "Age of the oldest pending message (0: none)")
        oldest = status.oldest_pending
        age.add_metric([], max(0.0, (datetime.now(UTC) - oldest).total_seconds()) if oldest is not None else 0.0)
        yield age


def _collected() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
        return merged
    return REGISTRY


@bp.get("/metrics")
def metrics() -> Response:
    svc = services()
    token = svc.settings.metrics_token
    if token:
        given = request.headers.get("Authorization", "").encode("utf-8", "replace")
        if not hmac.compare_digest(given, b"Bearer " + token):
            return Response("a bearer token is required\n", status=401, mimetype="text/plain",
                            headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    elif not _local_client():
        return Response("metrics are served only to this host without metrics_token_file\n", status=403,
                        mimetype="text/plain")
    directory = CollectorRegistry(auto_describe=False)
    directory.register(DirectoryCollector(svc.idp_directory))
    directory.register(OutboxCollector(svc.outbox))
    return Response(generate_latest(_collected()) + generate_latest(directory),
                    headers={"Content-Type": CONTENT_TYPE_LATEST})


def _local_client() -> bool:
    """The client is on a loopback address and no proxy relayed the request (see the module docstring)."""
    try:
        loopback = ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False
    return loopback and not any(name in request.headers for name in FORWARDING_HEADERS)


def init_metrics(app: Flask) -> None:
    """``/metrics``, the response counter, and (once per process) the upstream HTTP observer."""
    app.register_blueprint(bp)
    app.after_request(_count_response)
    if _observe_upstream not in oidc_http.observers:
        oidc_http.observers.append(_observe_upstream)
