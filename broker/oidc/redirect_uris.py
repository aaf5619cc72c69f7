"""Redirect URIs of OAuth clients, checked one by one (RFC 6749 §3.1.2, RFC 9700 §2.1 and §4.1, RFC 8252 §7):
what ``broker.oidc.client_metadata`` accepts in ``redirect_uris`` and ``post_logout_redirect_uris``, and the
pairwise sector (OIDC Core §8.1) each one belongs to.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from urllib.parse import urlsplit

#: hosts a native app's http redirect may use (RFC 8252 §7.3); nobody owns them, so they are no sector
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
MAX_URI_LENGTH = 2000
_PRIVATE_SCHEME_RE = re.compile(r"[a-z][a-z0-9+-]*(\.[a-z0-9+-]+)+")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST_RE = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")


def is_host_name(text: str) -> bool:
    """``text`` is a DNS host name in lower case (RFC 1123 §2.1 labels)."""
    return bool(_HOST_RE.fullmatch(text))


class UriRefused(Exception):
    """One URI's problem, turned into a line of the error message by the caller."""


def redirect_uri_sector(uri: object, allows_host: Callable[[str], bool], *, public: bool) -> str:
    """The sector of one redirect URI: its host, or its private-use scheme. Untrusted input.

    RFC 6749 §3.1.2: absolute, no fragment. RFC 9700 (OAuth Security BCP) §2.1: compared by exact string
    match, so no wildcards; §4.1: https, except http on loopback for native apps (RFC 8252 §7.3), and
    private-use schemes for native apps, which are public clients (RFC 8252 §7.1, §8.4).
    """
    if not isinstance(uri, str):
        raise UriRefused("must be text")
    if len(uri) > MAX_URI_LENGTH:
        raise UriRefused(f"is longer than {MAX_URI_LENGTH} characters")
    if not uri.isascii() or any(c.isspace() or not c.isprintable() for c in uri):
        raise UriRefused("must be printable ASCII without spaces (percent-encode other characters)")
    if "*" in uri:
        raise UriRefused("must not hold a wildcard: redirect URIs are compared exactly (RFC 9700 §2.1)")
    if "#" in uri:
        raise UriRefused("must not have a fragment (RFC 6749 §3.1.2)")
    try:
        parts = urlsplit(uri)
    except ValueError as exc:  # an unbalanced "[" of an IPv6 host
        raise UriRefused("is not a valid URI") from exc
    scheme = parts.scheme.lower()
    if not scheme:
        raise UriRefused("is not an absolute URI")
    if scheme in ("https", "http"):
        if "@" in parts.netloc:
            raise UriRefused("must not carry a user name or password")
        host = _host(parts.netloc, parts.hostname)
        try:
            parts.port  # noqa: B018 - parsing the port is the check
        except ValueError as exc:
            raise UriRefused("has an invalid port") from exc
        if scheme == "http" and host not in LOOPBACK_HOSTS:
            raise UriRefused("must use https (http only on the loopback hosts 127.0.0.1, localhost and [::1], "
                           "RFC 8252 §7.3)")
        if not allows_host(host):
            raise UriRefused(f"uses the host {host}, which is not allowed to register here")
        return host
    if not _PRIVATE_SCHEME_RE.fullmatch(scheme):
        raise UriRefused(f"uses the scheme {scheme!r}: only https, http on loopback, or a private-use scheme in "
                       "reverse domain form such as com.example.app:/callback (RFC 8252 §7.1)")
    rest = uri[len(scheme) + 1:]
    if not rest.startswith("/") or rest.startswith("//"):
        raise UriRefused("a private-use scheme is followed by a single slash, as in com.example.app:/callback "
                       "(RFC 8252 §7.1)")
    if not public:
        raise UriRefused("a private-use scheme is for native apps, which are public clients "
                       "(token_endpoint_auth_method none, RFC 8252 §8.4)")
    if not allows_host(".".join(reversed(scheme.split(".")))):
        raise UriRefused(f"uses the scheme {scheme}, whose domain is not allowed to register here")
    return scheme


def _host(netloc: str, hostname: str | None) -> str:
    if not hostname:
        raise UriRefused("has no host")
    if netloc.split(":")[0].startswith("[") or ":" in hostname:
        try:
            return str(ipaddress.IPv6Address(hostname))
        except ValueError as exc:
            raise UriRefused("has an invalid IPv6 address") from exc
    if not _HOST_RE.fullmatch(hostname):
        raise UriRefused(f"has an invalid host {hostname!r}")
    return hostname
