"""HTTP to an upstream OpenID provider: timeouts, no redirects, bounded bodies, and errors as ``UpstreamError``.

Every request the adapter makes goes through ``call`` (or ``fetch``, for a body that is not a JSON object) on
the process's pooled client (``http_pool.UpstreamHttp``, which holds those rules), so no HTTP library's
exception ever leaves the adapter, the operator's log says which endpoint failed and how, and every call is
measured by the ``observers``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from broker.core import errors
from broker.upstream.http_pool import MAX_BODY_BYTES, Answer, UpstreamHttp

__all__ = ["MAX_BODY_BYTES", "Reply", "UpstreamHttp", "access_token_of", "call", "fetch", "observers",
           "require_json"]

#: called after every request, answered or not, with its ``what`` and its duration in seconds: how the web layer
#: measures upstream calls (``broker.web.ops.metrics``) without this package knowing of it
observers: list[Callable[[str, float], None]] = []


@dataclass(frozen=True)
class Reply:
    """An HTTP answer: its status, its content type and, when the body is a JSON object, that object."""

    status: int
    content_type: str
    body: Mapping[str, Any] | None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def call(
    http: UpstreamHttp,
    method: str,
    url: str,
    *,
    what: str,
    timeout: float,
    data: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Reply:
    """One request; redirects are not followed (an endpoint that redirects is misconfigured, and following
    would carry credentials elsewhere). ``what`` names the endpoint in error details."""
    answer = fetch(http, method, url, what=what, timeout=timeout, data=data, headers=headers)
    return Reply(answer.status, answer.content_type, _json_object(answer.body))


def fetch(
    http: UpstreamHttp,
    method: str,
    url: str,
    *,
    what: str,
    timeout: float,
    data: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Answer:
    """``call`` with the body as bytes, whatever it is; measured by the ``observers`` all the same."""
    started = time.perf_counter()
    try:
        return http.request(method, url, what=what, timeout=timeout, data=data, headers=headers)
    finally:
        for observe in observers:
            observe(what, time.perf_counter() - started)


def access_token_of(body: Mapping[str, Any], what: str) -> str:
    """The ``access_token`` of a token response, refused unless it is visible ASCII (RFC 6749 Appendix A.12,
    VSCHAR): it goes into an Authorization header, which cannot carry anything else."""
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        raise errors.UpstreamError(detail=f"{what}: no access_token in the answer")
    if not token.isascii() or not token.isprintable() or " " in token:
        raise errors.UpstreamError(detail=f"{what}: access_token is not visible ASCII (RFC 6749 Appendix A.12)")
    return token


def require_json(reply: Reply, what: str) -> Mapping[str, Any]:
    """The body of a successful JSON answer, else ``UpstreamError``."""
    if not reply.ok:
        code = reply.body.get("error") if reply.body else None
        raise errors.UpstreamError(detail=f"{what}: HTTP {reply.status}" + (f", error {code!r:.80}" if code else ""))
    if reply.body is None:
        raise errors.UpstreamError(detail=f"{what}: the answer is not a JSON object ({reply.content_type or '?'})")
    return reply.body


def _json_object(raw: bytes) -> Mapping[str, Any] | None:
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):  # ValueError includes UnicodeDecodeError
        return None
    return value if isinstance(value, dict) else None
