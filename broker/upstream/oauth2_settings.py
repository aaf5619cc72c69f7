"""What the GitHub adapter (``broker.upstream.github``) is configured with, and how a registration becomes that.

GitHub is OAuth 2.0 (RFC 6749) with a REST API, not OpenID Connect: there is no discovery document, so the
endpoints are configured (github.com's by default, a GitHub Enterprise Server's through ``options``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from broker.upstream.preset_base import Registration

#: the issuer of identities from github.com; a GitHub Enterprise Server is its own issuer (see ``settings_from``)
ISSUER = "https://github.com"
DEFAULT_SCOPES = ("read:user", "user:email")
#: the ``options`` a registration may give, each an endpoint URL (GitHub Enterprise Server, tests)
ENDPOINT_OPTIONS = ("authorize_url", "token_url", "api_url")
#: github.com's OAuth endpoints are ``{OAUTH_URL}/authorize`` and ``{OAUTH_URL}/access_token``
OAUTH_URL = "https://github.com/login/oauth"
API_URL = "https://api.github.com"
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x2b\x2d-\x5b\x5d-\x7e]+")  # RFC 6749 §3.3 scope-token, minus ","


@dataclass(frozen=True)
class GitHubSettings:
    """One GitHub (github.com, or a GitHub Enterprise Server through the endpoint URLs).

    ``issuer`` is the first half of every identity key; the numeric user id is only unique within one
    GitHub, so a GitHub Enterprise Server needs an issuer of its own (``settings_from`` sets it).
    """

    name: str
    display_name: str
    client_id: str
    client_secret: str = field(repr=False)
    redirect_uri: str
    authorize_url: str = f"{OAUTH_URL}/authorize"
    token_url: str = f"{OAUTH_URL}/access_token"
    api_url: str = API_URL
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    http_timeout_seconds: float = 10.0
    issuer: str = ISSUER

    def __post_init__(self) -> None:
        for label in ("authorize_url", "token_url", "api_url", "issuer"):
            _check_url(label, getattr(self, label), query_allowed=label == "authorize_url")
        if not self.name or not self.client_id or not self.client_secret:
            raise ValueError("name, client_id and client_secret must not be empty")
        bad = [s for s in self.scopes if not _SCOPE_TOKEN.fullmatch(s)]
        if bad or not self.scopes:
            raise ValueError(f"scopes must be scope tokens without spaces or commas (RFC 6749 §3.3), not {bad}")
        if self.http_timeout_seconds <= 0:
            raise ValueError("http_timeout_seconds must be positive")


def _check_url(label: str, url: str, *, query_allowed: bool) -> None:
    """RFC 6749 §3.1, §3.2 and §10.9: endpoints are https URLs without a fragment (plain http: loopback only)."""
    parts = urlsplit(url)
    secure = parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK)
    if (not secure or not parts.hostname or parts.username is not None or parts.fragment
            or (parts.query and not query_allowed)):
        raise ValueError(f"{label} {url!r} must be an https URL without user, fragment"
                         f"{'' if query_allowed else ' or query'} (plain http only on the loopback interface)")


#: what ``settings_from`` reads: the registration protocol every preset reads (``preset_base.Registration``)
GitHubRegistration = Registration


def settings_from(registration: GitHubRegistration, redirect_uri: str) -> GitHubSettings:
    """The settings for a registration of the ``github`` preset; ``ValueError`` when it cannot be used.

    ``options`` may override ``authorize_url``, ``token_url`` and ``api_url`` (a GitHub Enterprise Server:
    ``https://HOST/login/oauth/...`` and ``https://HOST/api/v3``). The two OAuth endpoints must be on one
    origin, and that origin is the issuer: ``https://github.com`` unless they are overridden.
    """
    options: dict[str, str] = {}
    for key, value in registration.options:
        if key not in ENDPOINT_OPTIONS:
            raise ValueError(f"upstream {registration.name!r}: unknown option {key!r} for GitHub; "
                             f"known: {', '.join(ENDPOINT_OPTIONS)}")
        if not isinstance(value, str):
            raise ValueError(f"upstream {registration.name!r}: option {key!r} must be one URL")
        options[key] = value
    authorize_url = options.get("authorize_url", f"{OAUTH_URL}/authorize")
    token_url = options.get("token_url", f"{OAUTH_URL}/access_token")
    origin = _origin(authorize_url)
    if _origin(token_url) != origin:
        raise ValueError(f"upstream {registration.name!r}: authorize_url and token_url must be on one host")
    return GitHubSettings(
        name=registration.name,
        display_name=registration.display_name or "GitHub",
        client_id=registration.client_id,
        client_secret=registration.client_secret,
        redirect_uri=redirect_uri,
        authorize_url=authorize_url,
        token_url=token_url,
        api_url=options.get("api_url", API_URL),
        scopes=registration.scopes or DEFAULT_SCOPES,
        issuer=origin,
    )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()
