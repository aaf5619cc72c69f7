"""Google as an upstream OpenID provider: plain OpenID Connect plus an optional Workspace domain restriction.

With the ``hosted_domain`` option the broker asks Google to offer only accounts of that Google Workspace domain
(the ``hd`` authentication request parameter) and, because the request travels through the browser and anyone
can remove or change the parameter, also refuses every ID token whose signed ``hd`` claim is not that domain.
Google's OpenID Connect documentation ("Authentication URI parameters", ``hd``): "Don't rely on this UI
optimization to control who can access your app [...] Be sure to validate that the returned ID token has an
``hd`` claim value that matches what you expect". Accounts outside any Workspace (gmail.com) carry no ``hd``
claim, so they are refused too. ``email_verified`` is honoured as in plain OpenID Connect (OIDC Core 1.0 §5.1).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from broker.upstream.preset_base import OidcPreset, OptionValue, Registration
from broker.upstream.quirks import StandardQuirks, refuse

__all__ = ["GOOGLE", "GoogleQuirks", "build_google_quirks"]

#: a DNS name of at least two labels, letters, digits and hyphens (RFC 1035 §2.3.1, RFC 1123 §2.1)
_DOMAIN = re.compile(r"(?=.{1,253}\Z)(?:(?!-)[a-z0-9-]{1,63}(?<!-)\.)+(?!-)[a-z0-9-]{1,63}(?<!-)\Z")
_OPTIONS_HELP: Mapping[str, str] = MappingProxyType({
    "hosted_domain": "optional: only accounts of this Google Workspace domain (e.g. example.org); sent as hd= "
                     "and checked against the ID token's hd claim",
})


class GoogleQuirks(StandardQuirks):
    """Google; with ``hosted_domain`` only accounts of that Workspace domain are accepted."""

    def __init__(self, hosted_domain: str | None = None) -> None:
        if hosted_domain is not None and not _DOMAIN.match(hosted_domain.lower()):
            raise ValueError(f"hosted_domain {hosted_domain!r} is not a domain name such as example.org")
        self.hosted_domain = hosted_domain.lower() if hosted_domain is not None else None

    def authorization_params(self) -> Mapping[str, str]:
        """``hd``: Google shows only accounts of the domain (a hint to Google, not a check: see ``check_claims``)."""
        return {"hd": self.hosted_domain} if self.hosted_domain is not None else {}

    def check_claims(self, claims: Mapping[str, Any]) -> None:
        """The signed ``hd`` claim must name the hosted domain; the request parameter proves nothing.

        Google OpenID Connect, ``hd`` parameter: validate that the returned ID token has an ``hd`` claim value
        that matches what you expect. Domain names compare without regard to case (RFC 4343 §3).
        """
        if self.hosted_domain is None:
            return
        hd = claims.get("hd")
        if not isinstance(hd, str):
            raise refuse(f"ID token has no hd claim, but only accounts of the Google Workspace domain "
                         f"{self.hosted_domain!r} are accepted (a consumer account, or hd= was removed)")
        if hd.lower() != self.hosted_domain:
            raise refuse(f"ID token hd claim {hd!r:.100} is not the hosted domain {self.hosted_domain!r}")


def build_google_quirks(options: Mapping[str, OptionValue], registration: Registration) -> GoogleQuirks:
    """The quirks for a registration's ``options``; ``ValueError`` names what is wrong."""
    unknown = sorted(set(options) - set(_OPTIONS_HELP))
    if unknown:
        raise ValueError(f"upstream {registration.name!r}: unknown option(s) {unknown} for Google; "
                         f"known: {sorted(_OPTIONS_HELP)}")
    domain = options.get("hosted_domain")
    if domain is not None and not isinstance(domain, str):
        raise ValueError(f"upstream {registration.name!r}: option hosted_domain takes one domain, not a list")
    requested = dict(registration.authorization_params).get("hd")
    if domain is not None and requested is not None and requested.lower() != domain.lower():
        raise ValueError(f"upstream {registration.name!r}: authorization_params hd={requested!r} contradicts "
                         f"option hosted_domain={domain!r}; set only the option")
    try:
        return GoogleQuirks(domain)
    except ValueError as exc:
        raise ValueError(f"upstream {registration.name!r}: {exc}") from None


GOOGLE = OidcPreset(
    name="google",
    display_name="Google",
    issuer="https://accounts.google.com",  # exactly as in its discovery document
    scopes=("openid", "email", "profile"),
    allowed_algs=("RS256",),
    build_quirks=build_google_quirks,
    options_help=_OPTIONS_HELP,
)
