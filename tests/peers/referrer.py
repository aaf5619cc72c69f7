"""What a browser sends as ``Referer`` and ``Origin``, given the page's Referrer-Policy (for the test Browser).

The algorithms are the standards' own, step by step, for navigations and form submissions (mode
"navigate", no CORS): W3C Referrer Policy §8.1 (parsing the header), §8.3 (determine request's referrer),
§8.4 (strip a URL for use as a referrer); Fetch standard §3.2.4 (redirect-tainted origin) and §3.2.5
(append a request ``Origin`` header); Secure Contexts §3.1 (potentially trustworthy: https, loopback).
Origins are serialised as in RFC 6454 §6.2 (``scheme://host[:port]``, the default port left out).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit

POLICIES = frozenset({"no-referrer", "no-referrer-when-downgrade", "same-origin", "origin", "strict-origin",
                      "origin-when-cross-origin", "strict-origin-when-cross-origin", "unsafe-url"})
#: the policy of a document that names none (Referrer Policy §3, as browsers ship it)
DEFAULT_POLICY = "strict-origin-when-cross-origin"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def parse_policy(header: str | None) -> str | None:
    """§8.1: the last token of the comma-separated header that is a known policy; None when there is none."""
    known = [token.strip().lower() for token in (header or "").split(",") if token.strip().lower() in POLICIES]
    return known[-1] if known else None


def origin(url: str) -> str:
    """The serialised origin of an http(s) URL (RFC 6454 §6.2)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    port = parts.port if parts.port not in (None, _DEFAULT_PORTS.get(parts.scheme)) else None
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def same_origin(a: str, b: str) -> bool:
    return origin(a) == origin(b)


def potentially_trustworthy(url: str) -> bool:
    """Secure Contexts §3.1 for http(s) URLs: https, or a loopback host (127.0.0.0/8, ::1, localhost)."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return True
    host = parts.hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def strip_for_referrer(url: str, *, origin_only: bool) -> str:
    """§8.4: no user info, no fragment; with ``origin_only`` only scheme, host and port (path "/")."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    if origin_only:
        return urlunsplit((parts.scheme, netloc, "/", "", ""))
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))


def referrer(source: str | None, policy: str, target: str) -> str | None:
    """§8.3: the ``Referer`` a request to ``target`` carries when made by (or redirected from a request made
    by) the document at ``source`` under ``policy``; None for no header."""
    if source is None:
        return None
    full, only_origin = strip_for_referrer(source, origin_only=False), strip_for_referrer(source, origin_only=True)
    if len(full) > 4096:
        full = only_origin
    downgrade = potentially_trustworthy(full) and not potentially_trustworthy(target)
    same = same_origin(full, target)
    choices = {
        "no-referrer": None,
        "origin": only_origin,
        "unsafe-url": full,
        "strict-origin": None if downgrade else only_origin,
        "strict-origin-when-cross-origin": full if same else None if downgrade else only_origin,
        "same-origin": full if same else None,
        "origin-when-cross-origin": full if same else only_origin,
        "no-referrer-when-downgrade": None if downgrade else full,
    }
    return choices[policy]


def redirect_tainted(request_origin: str, url_list: Sequence[str]) -> bool:
    """Fetch §3.2.4: some redirect went across origins, away from a URL that is not of the request's origin."""
    last: str | None = None
    for url in url_list:
        if last is not None and not same_origin(url, last) and origin(last) != request_origin:
            return True
        last = url
    return False


def origin_header(request_origin: str, policy: str, url_list: Sequence[str], method: str) -> str | None:
    """Fetch §3.2.5 for a navigation or form submission (no CORS): the ``Origin`` sent to the last URL of
    ``url_list`` by a request that ``request_origin``'s document made; None for no header (GET, HEAD)."""
    if method.upper() in ("GET", "HEAD"):
        return None
    current = url_list[-1]
    serialised = "null" if redirect_tainted(request_origin, url_list) else request_origin
    if policy == "no-referrer":
        serialised = "null"
    elif policy in ("no-referrer-when-downgrade", "strict-origin", "strict-origin-when-cross-origin"):
        if request_origin.startswith("https://") and urlsplit(current).scheme != "https":
            serialised = "null"
    elif policy == "same-origin" and request_origin != origin(current):
        serialised = "null"
    return serialised
