"""Liveness and readiness for load balancers and orchestrators (Docker HEALTHCHECK, Kubernetes probes).

``/healthz`` (liveness): the process answers HTTP. It touches nothing else, so a database outage never makes
an orchestrator restart healthy workers.

``/readyz`` (readiness): this instance can serve sign-ins now. Each check answers ``"ok"`` or a short reason:

- ``database``: ``SELECT 1`` on the broker's engine answers within ``DATABASE_TIMEOUT`` seconds;
- ``redis`` (browser sessions in Redis) and ``redis_limits`` (rate-limit counters in another Redis): PING
  answers within ``REDIS_TIMEOUT`` seconds; absent when the configuration uses no Redis;
- ``idp_metadata``: every SAML IdP metadata source (``metadata/saml-idp``, federations) has a loaded copy that
  has not expired (``IdpDirectory.status()``).

200 ``{"status": "ready", "checks": {...}}`` or 503 ``{"status": "not ready", "checks": {...}}``. The answer
names checks and metadata sources only: no URL, host, error text or stack trace; the reason is logged.
Both are GETs (no CSRF token) and not rate-limited (``broker.web.ops.limits`` limits the sign-in and back-channel
views only).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from flask import Blueprint
from sqlalchemy import Engine, text

from broker.config.settings import Settings
from broker.registry.metadata_refresh import IdpDirectory
from broker.web.services import services

log = logging.getLogger("broker.health")
bp = Blueprint("health", __name__)

#: seconds the database may take to answer ``SELECT 1`` (including a new connection) before "timeout"
DATABASE_TIMEOUT = 2.0
#: seconds Redis may take to connect and answer PING
REDIS_TIMEOUT = 1.0
OK = "ok"
#: URL schemes of the limits storage that are plain Redis (others, e.g. redis+sentinel://, are not probed)
_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")

# One database probe at a time per engine: a probe stuck in connect() (a dropped SYN can take minutes) is
# waited on by the next ones instead of piling up a thread per probe.
_inflight: dict[int, tuple[threading.Thread, list[str]]] = {}
_inflight_lock = threading.Lock()


@bp.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@bp.get("/readyz")
def readyz() -> tuple[dict[str, object], int]:
    svc = services()
    checks: dict[str, str] = {"database": _database(svc.engine)}
    for name, url in redis_urls(svc.settings).items():
        checks[name] = _redis(name, url)
    checks["idp_metadata"] = _idp_metadata(svc.idp_directory)
    ready = all(result == OK for result in checks.values())
    return {"status": "ready" if ready else "not ready", "checks": dict(checks)}, 200 if ready else 503


def redis_urls(settings: Settings) -> dict[str, str]:
    """The Redis servers this configuration depends on, by check name."""
    urls: dict[str, str] = {}
    if settings.session_type == "redis" and settings.redis_url:
        urls["redis"] = settings.redis_url
    limits = settings.limits.storage_url
    if settings.limits.enabled and limits.startswith(_REDIS_SCHEMES) and limits not in urls.values():
        urls["redis_limits"] = limits
    return urls


def _bounded(key: int, probe: Callable[[], str], timeout: float) -> str:
    """``probe()`` in a daemon thread, "timeout" when it has not answered within ``timeout`` seconds."""
    with _inflight_lock:
        running = _inflight.get(key)
        if running is None or not running[0].is_alive():
            result: list[str] = []
            thread = threading.Thread(target=lambda: result.append(probe()), name="readyz-probe", daemon=True)
            running = _inflight[key] = (thread, result)
            thread.start()
    thread, result = running
    thread.join(timeout)
    return result[0] if result else "timeout"


def _database(engine: Engine) -> str:
    def select_one() -> str:
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as exc:  # any failure means "not ready"; the reason goes to the log only
            log.warning("readiness: database unavailable: %s", type(exc).__name__)
            log.debug("readiness: database error", exc_info=True)
            return "unavailable"
        return OK

    answer = _bounded(id(engine), select_one, DATABASE_TIMEOUT)
    if answer == "timeout":
        log.warning("readiness: database did not answer within %.1f s", DATABASE_TIMEOUT)
    return answer


def _redis(name: str, url: str) -> str:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        log.warning("readiness: %s unavailable: %s", name, type(exc).__name__)
        return "timeout" if isinstance(exc, redis.TimeoutError) else "unavailable"
    finally:
        client.close()
    return OK


def _idp_metadata(directory: IdpDirectory | None) -> str:
    """"ok", or which sources have no usable copy: never loaded (first fetch failed) or expired (validUntil
    passed and no fresh copy could be fetched). Entities skipped inside a loaded source do not count."""
    if directory is None:
        return OK
    statuses = directory.status()
    expired = sorted(s.name for s in statuses if s.expired)
    missing = sorted(s.name for s in statuses if s.loaded_at is None and not s.expired)
    reasons = ([f"expired: {', '.join(expired)}"] if expired else []) + (
        [f"not loaded: {', '.join(missing)}"] if missing else [])
    if reasons:
        log.warning("readiness: SAML IdP metadata %s", "; ".join(reasons))
    return "; ".join(reasons) or OK
