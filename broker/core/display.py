"""How an app is named and shown to citizens: a display name, a logo and a privacy policy link, never a URL.

Apps describe themselves in their registration (SAML Metadata UI §2.1.1 ``mdui:DisplayName``, §2.1.4
``mdui:Logo``, §2.1.2 ``mdui:PrivacyStatementURL``; RFC 7591 §2 ``client_name``, ``logo_uri``, ``policy_uri``)
or the operator names them. What an app sends is untrusted: a logo is shown only from ``https:`` or an inline
``data:image/...`` (never ``http:``, which would be mixed content, nor ``javascript:``), a policy link only to
``https:``, and a name that is itself a URL is replaced by its host, so no citizen page shows an entity id.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

MAX_NAME = 200
MAX_URI = 2000
#: inline images a browser shows but never runs (no SVG: it can carry script when opened on its own)
_DATA_IMAGE_RE = re.compile(r"data:image/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/=\s]+")
_HOST_RE = re.compile(r"[A-Za-z0-9.-]+")


def logo_problem(uri: object) -> str | None:
    """Why ``uri`` cannot be shown as a logo, or None: ``https:`` with a host, or ``data:image/...;base64``."""
    if not isinstance(uri, str) or not uri:
        return "must be text"
    if _DATA_IMAGE_RE.fullmatch(uri):
        return None if len(uri) <= 100_000 else "an inline image must be at most 100000 characters"
    return _https_problem(uri)


def policy_problem(uri: object) -> str | None:
    """Why ``uri`` cannot be linked as the app's privacy policy, or None (``https:`` with a host)."""
    if not isinstance(uri, str) or not uri:
        return "must be text"
    return _https_problem(uri)


def _https_problem(uri: str) -> str | None:
    if len(uri) > MAX_URI or not uri.isascii() or any(c.isspace() or not c.isprintable() for c in uri):
        return f"must be printable ASCII without spaces, at most {MAX_URI} characters"
    try:
        parts = urlsplit(uri)
    except ValueError:
        return "is not a valid URI"
    if parts.scheme != "https" or not parts.hostname or "@" in parts.netloc:
        return "must be an https URL with a host (or, for a logo, a data:image/png|jpeg|gif|webp;base64 URI)"
    return None


def name_problem(name: object) -> str | None:
    """Why ``name`` cannot be an operator's display name, or None: printable text, not a URL."""
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME or not name.isprintable():
        return f"must be printable text of at most {MAX_NAME} characters"
    if looks_like_uri(name):
        return "must be a name people recognise, not a URL or entity id"
    return None


def looks_like_uri(text: str) -> bool:
    """An absolute URI (``https://...``, ``urn:...``): not something to show a citizen as a name."""
    scheme, sep, rest = text.strip().partition(":")
    return bool(sep) and bool(re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme)) and " " not in text.strip() \
        and (rest.startswith("//") or scheme.lower() == "urn")


def readable_name(candidates: tuple[str | None, ...], identifier: str, last_resort: str = "") -> str:
    """The first of ``candidates`` (best first) that is a name rather than a URL; else the host of
    ``identifier`` when it is a URL; else ``last_resort`` (e.g. the registration's file name); never
    ``identifier`` itself when it is a URI."""
    for candidate in candidates:
        if candidate is not None and candidate.strip() and not looks_like_uri(candidate):
            return candidate.strip()[:MAX_NAME]
    for candidate in (*candidates, identifier):
        host = _host_of(candidate)
        if host:
            return host
    if identifier and not looks_like_uri(identifier):
        return identifier[:MAX_NAME]
    return last_resort or "an app"


def _host_of(text: str | None) -> str | None:
    if not text:
        return None
    try:
        host = urlsplit(text.strip()).hostname
    except ValueError:
        return None
    if not host or not _HOST_RE.fullmatch(host):
        return None
    return host.removeprefix("www.")
