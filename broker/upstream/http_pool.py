"""The HTTP client for calls to upstream providers: kept-alive pooled connections on urllib3 (issue 21).

One ``UpstreamHttp`` serves the whole process (``broker.web.services``); every adapter call goes through
``request`` (by way of ``oidc_http``), which holds these rules:

* connections are kept alive and reused, per scheme, host and port (``urllib3.PoolManager``);
* ``timeout`` bounds the whole exchange: connecting, the answer's first byte, and the body, which is read
  with each socket wait cut to what is left of the budget; nothing is retried;
* redirects are never followed (RFC 9110 §15.4 lets a client follow them; an endpoint that redirects is
  misconfigured, and following would carry credentials such as the client secret elsewhere): a 3xx is the
  answer;
* the body is read in chunks and refused past ``max_body_bytes`` (a declared ``Content-Length`` over it is
  refused unread);
* https is verified (RFC 9110 §4.3.4) against ``ca_bundle``, or, as ``requests`` did before, the file or
  folder named by ``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE`` when the call is made, else certifi's bundle;
* no cookies are kept: one provider's answer never travels with a later call;
* an outbound proxy is used as ``requests`` did: ``HTTPS_PROXY`` / ``HTTP_PROXY`` (or lower case) name it and
  ``NO_PROXY`` the hosts reached directly (``urllib.request.getproxies_environment``, read when the client is
  made); https goes through it in a CONNECT tunnel, so the proxy never sees the exchange (RFC 9110 §9.3.6);
* every failure is ``errors.UpstreamError`` naming the endpoint (``what``), never a urllib3 exception.

What is trusted: nothing of the answer; its status, content type and bytes go back to the adapter to check.
"""

from __future__ import annotations

import os
import socket
import ssl
import threading
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

import certifi
import urllib3
from urllib3 import exceptions
from urllib3.util import parse_url
from urllib3.util.ssl_ import create_urllib3_context

from broker.core import errors

#: an answer larger than this is refused (discovery documents and JWKS are a few kilobytes)
MAX_BODY_BYTES = 1024 * 1024
#: how much one read of the body asks for
CHUNK_BYTES = 65536
#: the environment variables ``requests`` reads for its CA bundle, in its order
CA_BUNDLE_ENV = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
USER_AGENT = "civic-broker"


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: status, media type (lower case, no parameters) and the body's bytes."""

    status: int
    content_type: str
    body: bytes


class UpstreamHttp:
    """Pooled HTTP(S) for upstream calls; thread-safe, share one per process.

    ``ca_bundle`` is a PEM file or a folder of hashed certificates to verify https against (see the module
    docstring for the default); ``pool_size`` is how many idle connections are kept per host (more are opened
    when needed, and closed after use).
    """

    def __init__(self, *, ca_bundle: str | None = None, max_body_bytes: int = MAX_BODY_BYTES,
                 pool_size: int = 10) -> None:
        if max_body_bytes <= 0 or pool_size <= 0:
            raise ValueError("max_body_bytes and pool_size must be positive")
        self._ca_bundle = ca_bundle
        self.max_body_bytes = max_body_bytes
        self._pools = urllib3.PoolManager(num_pools=32, maxsize=pool_size, block=False, retries=False)
        self._pool_size = pool_size
        self._proxies = urllib.request.getproxies_environment()
        self._proxied: dict[str, urllib3.ProxyManager] = {}
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._lock = threading.Lock()

    def request(self, method: str, url: str, *, what: str, timeout: float, data: Mapping[str, str] | None = None,
                headers: Mapping[str, str] | None = None) -> Answer:
        """One request; ``data`` is sent form-encoded. ``what`` names the endpoint in error details."""
        started = time.monotonic()
        sent = {"User-Agent": USER_AGENT, **(headers or {})}
        body = None
        if data is not None:
            body = urlencode(dict(data)).encode("ascii")
            sent.setdefault("Content-Type", "application/x-www-form-urlencoded")
        try:
            parts = parse_url(url)
            tls = self._tls_kwargs(parts.scheme)
            proxy = self._proxy_for(parts.scheme, parts.host)
            manager = self._pools if proxy is None else self._proxy_manager(proxy)
            pool = manager.connection_from_url(url, pool_kwargs=tls)
            # A plain-http request through a proxy names the whole URL (RFC 9112 §3.2.2, absolute-form).
            target = url if proxy is not None and parts.scheme == "http" else parts.request_uri
            response = pool.urlopen(method, target, body=body, headers=sent, retries=False,
                                    redirect=False, assert_same_host=False, timeout=urllib3.Timeout(total=timeout),
                                    preload_content=False, release_conn=False)
            try:
                raw = self._read_bounded(response, what, started + timeout)
            finally:
                response.release_conn()
        except exceptions.HTTPError as exc:
            raise _failure(exc, what, url, timeout) from exc
        except OSError as exc:
            raise errors.UpstreamError(detail=f"{what}: could not reach {url} (ConnectionError)") from exc
        except ValueError as exc:  # a header http.client cannot send (the adapters check theirs first)
            raise errors.UpstreamError(detail=f"{what}: could not reach {url} ({type(exc).__name__})") from exc
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        return Answer(response.status, content_type, raw)

    def close(self) -> None:
        """Close every pooled connection; the client stays usable (it opens new ones)."""
        self._pools.clear()
        with self._lock:
            for manager in self._proxied.values():
                manager.clear()

    def _proxy_for(self, scheme: str | None, host: str | None) -> str | None:
        """The proxy a call to ``host`` goes through, if any (see the module docstring)."""
        proxy = self._proxies.get(scheme or "")
        if not proxy or urllib.request.proxy_bypass(host or ""):  # NO_PROXY
            return None
        return proxy

    def _proxy_manager(self, proxy: str) -> urllib3.ProxyManager:
        """One pool manager per proxy (the TLS settings come with each call's ``pool_kwargs``)."""
        with self._lock:
            manager = self._proxied.get(proxy)
            if manager is None:
                manager = urllib3.ProxyManager(proxy, num_pools=32, maxsize=self._pool_size, block=False,
                                               retries=False)
                self._proxied[proxy] = manager
        return manager

    def __enter__(self) -> UpstreamHttp:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _tls_kwargs(self, scheme: str | None) -> dict[str, Any] | None:
        """The verifying TLS context for https: one per CA bundle, made once (loading certifi's costs ~ms)."""
        if scheme != "https":
            return None
        bundle = self._ca_bundle or next((v for name in CA_BUNDLE_ENV if (v := os.environ.get(name))), None)
        bundle = bundle or certifi.where()
        with self._lock:
            context = self._contexts.get(bundle)
            if context is None:
                context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED)
                if os.path.isdir(bundle):
                    context.load_verify_locations(capath=bundle)
                else:
                    context.load_verify_locations(cafile=bundle)
                self._contexts[bundle] = context
        return {"ssl_context": context, "cert_reqs": "CERT_REQUIRED"}

    def _read_bounded(self, response: urllib3.BaseHTTPResponse, what: str, deadline: float) -> bytes:
        """The body, at most ``max_body_bytes`` of it, by ``deadline``; else the connection is dropped unread."""
        limit = self.max_body_bytes
        declared = response.headers.get("Content-Length", "")
        chunks: list[bytes] = []
        size = 0
        try:
            if declared.isdigit() and int(declared) > limit:
                raise errors.UpstreamError(detail=f"{what}: answer larger than {limit} bytes")
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise _OutOfTime()
                sock = _socket_of(response)
                if sock is not None:  # each wait for the next bytes ends with the budget
                    sock.settimeout(left)
                chunk = response.read1(CHUNK_BYTES)
                if not chunk:
                    return b"".join(chunks)
                size += len(chunk)
                if size > limit:
                    raise errors.UpstreamError(detail=f"{what}: answer larger than {limit} bytes")
                chunks.append(chunk)
        except BaseException:
            response.close()  # the rest stays unread: the connection cannot be reused
            raise


def _socket_of(response: urllib3.BaseHTTPResponse) -> socket.socket | None:
    """The socket the body comes on: the connection's, or (once the server said ``Connection: close``, when
    http.client lets go of it there) the one under the response's file; None if neither can be found."""
    for sock in (getattr(response.connection, "sock", None),
                 getattr(getattr(getattr(getattr(response, "_fp", None), "fp", None), "raw", None), "_sock", None)):
        if isinstance(sock, socket.socket):
            return sock
    return None


class _OutOfTime(exceptions.TimeoutError):
    """The body was still coming when the call's time was up."""


def _failure(exc: exceptions.HTTPError, what: str, url: str, timeout: float) -> errors.UpstreamError:
    """The broker's error for a urllib3 failure, in the words ``requests`` gave before (the operator's log)."""
    if isinstance(exc, exceptions.TimeoutError) and not isinstance(exc, exceptions.NewConnectionError):
        return errors.UpstreamError(detail=f"{what}: no answer from {url} within {timeout:g} s")
    if isinstance(exc, exceptions.SSLError):
        kind = "SSLError"
    elif isinstance(exc, exceptions.LocationValueError):
        kind = "InvalidURL"
    elif isinstance(exc, exceptions.ProxyError):
        kind = "ProxyError"
    elif isinstance(exc, exceptions.DecodeError):
        kind = "ContentDecodingError"
    else:
        kind = "ConnectionError"
    return errors.UpstreamError(detail=f"{what}: could not reach {url} ({kind})")
