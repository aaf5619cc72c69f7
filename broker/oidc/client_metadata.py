"""RFC 7591 §2 client metadata, validated into an ``OidcClient``, and back.

Who is trusted: a file in ``metadata/oidc-clients/`` is written by the operator (by hand or by ``broker
client add``) and may use the broker's extensions; a Dynamic Client Registration request (RFC 7591 §3.1)
comes from whoever holds the initial access token and may not. ``RegistrationPolicy.dynamic`` says which.
Metadata the broker stored after a dynamic registration was checked under the dynamic policy then; the
broker reads it back under the file policy, with the ``client_secret_hash`` it added itself.
``grant_types`` and ``scope`` are checked by ``client_grants`` (an app, or an automation client of the admin
API, which only files may register), the logout and display URIs by ``client_members``.

Errors carry their RFC 7591 §3.2.2 code::

    ValueError
     └── ClientMetadataError        error = "invalid_client_metadata"
          └── RedirectUriError      error = "invalid_redirect_uri"   (a problem with redirect_uris)

Every problem found is listed in the message, not only the first.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from broker.core.identifiers import client_sector
from broker.oidc import client_grants, client_members
from broker.oidc.client import AUTH_METHODS, SIGNING_ALGS, OidcClient
from broker.oidc.client_grants import CLIENT_CREDENTIALS
from broker.oidc.client_jwks import public_jwks_text
from broker.oidc.client_secret import hash_problem
from broker.oidc.redirect_uris import LOOPBACK_HOSTS, UriRefused, is_host_name, redirect_uri_sector

SUBJECT_TYPES = ("pairwise", "public")
SECRET_METHODS = ("client_secret_basic", "client_secret_post")
MAX_REDIRECT_URIS = 20
_CLIENT_ID_RE = re.compile(r"[\x21-\x7e]{1,255}")  # printable ASCII, no spaces
#: RFC 8252 §7.1: a private-use scheme is a reverse domain name the app controls, so it holds a dot
#: RFC 7518 §6: the members only a private (or symmetric) key has


class ClientMetadataError(ValueError):
    """Client metadata the broker refuses (RFC 7591 §3.2.2); the message lists every problem."""

    error = "invalid_client_metadata"

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = tuple(problems)


class RedirectUriError(ClientMetadataError):
    """At least one of the problems is with ``redirect_uris``."""

    error = "invalid_redirect_uri"


@dataclass(frozen=True)
class RegistrationPolicy:
    """What a registration may ask for: files (``dynamic=False``) or Dynamic Client Registration."""

    #: hosts redirect URIs may use, or "*.example.org" for any host below example.org; empty: any host
    allowed_hosts: frozenset[str]
    dynamic: bool
    #: dynamic only: whether ``subject_type: public`` may be asked for (``[oidc]
    #: registration_allow_public_subjects``); files may always choose it
    public_subjects: bool = False

    def allows_host(self, host: str) -> bool:
        if not self.allowed_hosts:
            return True
        for entry in (e.lower().strip("[]") for e in self.allowed_hosts):
            if host == entry or (entry.startswith("*.") and host.endswith(entry[1:]) and len(host) > len(entry) - 1):
                return True
        return False


def _shown(value: object) -> str:
    """An untrusted value as it appears in an error message: quoted, and cut short."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _uris(raw: Mapping[str, Any], key: str, policy: RegistrationPolicy, public: bool,
          problems: list[str]) -> tuple[tuple[str, ...], list[str]]:
    """The URIs of ``key`` and the sector of each; problems appended, each naming the URI."""
    value = raw.get(key, [])
    if not isinstance(value, list):
        problems.append(f"{key} must be a list of URIs")
        return (), []
    if len(value) > MAX_REDIRECT_URIS:
        problems.append(f"{key} lists {len(value)} URIs; at most {MAX_REDIRECT_URIS}")
        return (), []
    uris, sectors = [], []
    for uri in value:
        shown = _shown(uri)
        try:
            sectors.append(redirect_uri_sector(uri, policy.allows_host, public=public))
        except UriRefused as exc:
            problems.append(f"{key}: {shown} {exc}")
            continue
        if uri in uris:
            problems.append(f"{key}: {shown} is listed twice")
        uris.append(uri)
    return tuple(uris), sectors


def _choice(raw: Mapping[str, Any], key: str, choices: tuple[str, ...], default: str, problems: list[str]) -> str:
    value = raw.get(key, default)
    if value not in choices:
        problems.append(f"{key} must be one of {', '.join(choices)}, not {_shown(value)}")
        return default
    return str(value)


def _strings(raw: Mapping[str, Any], key: str, default: tuple[str, ...], problems: list[str]) -> tuple[str, ...]:
    value = raw.get(key, list(default))
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        problems.append(f"{key} must be a list of text")
        return default
    return tuple(dict.fromkeys(value))


def _client_id(raw: Mapping[str, Any], forced: str | None, problems: list[str]) -> str:
    client_id = raw.get("client_id") if forced is None else forced
    if not isinstance(client_id, str) or not _CLIENT_ID_RE.fullmatch(client_id):
        problems.append("client_id is required: 1 to 255 printable ASCII characters without spaces")
        return ""
    return client_id


def _secret_hash(raw: Mapping[str, Any], method: str, policy: RegistrationPolicy, problems: list[str]) -> str | None:
    """Files carry only the hash of a secret (either form of ``broker.oidc.client_secret``); dynamic
    registration carries none, because the broker issues the secret itself (RFC 7591 §3.2.1)."""
    if "client_secret" in raw:
        problems.append("client_secret is issued by the broker, not chosen by the client (RFC 7591 §3.2.1)"
                        if policy.dynamic else
                        "a plain client_secret must not be written in the file: use `broker client add` (which "
                        "makes a secret, or takes the app's own with --client-secret-file) or `broker client "
                        "import`; both store only its hash (client_secret_hash)")
    value = raw.get("client_secret_hash")
    if policy.dynamic:
        if value is not None:
            problems.append("client_secret_hash is set only in metadata files; the broker issues the secret")
        return None
    if method not in SECRET_METHODS:
        if value is not None:
            problems.append(f"client_secret_hash is only for {' and '.join(SECRET_METHODS)}, not {method}")
        return None
    if value is None:
        problems.append(f"{method} needs client_secret_hash; `broker client add` makes a secret and writes its hash")
        return None
    problem = hash_problem(value)
    if problem is not None:
        problems.append(problem)
        return None
    return str(value)


def _sector(raw: Mapping[str, Any], sectors: list[str], subject_type: str, policy: RegistrationPolicy,
            client_id: str, problems: list[str]) -> tuple[str, str | None]:
    """OIDC Core §8.1: the pairwise sector is the sector_identifier_uri's host, else the one host of the
    redirect URIs, else, when they are all loopback (RFC 8252 §7.3: any app on the device may take any port,
    so the host is no one's), the client alone. A file's sector_identifier_uri is trusted as given (its
    document is not fetched)."""
    uri = raw.get("sector_identifier_uri")
    if uri is not None:
        if policy.dynamic:
            problems.append("sector_identifier_uri is not supported in dynamic registration (the broker does not "
                            "fetch remote documents): register redirect URIs on one host")
            return "", None
        try:
            parts = urlsplit(uri) if isinstance(uri, str) else None
        except ValueError:
            parts = None
        if (parts is None or parts.scheme != "https" or not parts.hostname or "@" in parts.netloc
                or "#" in uri or "*" in uri or not is_host_name(parts.hostname)):
            problems.append("sector_identifier_uri must be an https URL with a host, without fragment or user name")
            return "", None
        return parts.hostname, uri
    hosts = sorted(set(sectors))
    if hosts and LOOPBACK_HOSTS.issuperset(hosts):
        return client_sector(client_id), None
    if len(hosts) > 1:
        if subject_type == "pairwise":
            problems.append(f"redirect_uris use several hosts ({', '.join(hosts)}): pairwise subjects need one "
                            "sector (OIDC Core §8.1), so give a sector_identifier_uri or use one host")
        return "", None
    return (hosts[0] if hosts else ""), None


def parse_client_metadata(raw: object, policy: RegistrationPolicy, *, client_id: str | None,
                          source: str) -> OidcClient:
    """Validate RFC 7591 §2 client metadata (untrusted under a dynamic policy) into an ``OidcClient``.

    Unknown members are ignored (RFC 7591 §2), except the broker's extensions: ``allowed_upstreams``,
    ``default_upstream``, ``subject_type`` (OIDC Registration §2), and, in files only, ``may_introspect`` and
    ``client_secret_hash``. ``client_name``, ``logo_uri`` and ``policy_uri`` (RFC 7591 §2) are shown to citizens.
    The logout members of Back-Channel Logout 1.0 §2.2 and Front-Channel Logout 1.0 §2 are read as well.
    ``client_id``, when given, is used instead of the metadata's own (dynamic registration makes one).
    ``grant_types`` and ``scope`` make an app or an automation client (``broker.oidc.client_grants``).
    """
    if not isinstance(raw, dict):
        raise ClientMetadataError(["client metadata must be a JSON object (RFC 7591 §2)"])
    problems: list[str] = []
    the_id = _client_id(raw, client_id, problems)
    method = raw.get("token_endpoint_auth_method", "client_secret_basic")
    if method not in AUTH_METHODS:
        problems.append(f"token_endpoint_auth_method must be one of {', '.join(AUTH_METHODS)}, not {_shown(method)}")
    public = method == "none"
    grants = client_grants.grant_types(raw, policy.dynamic, problems)
    automation = CLIENT_CREDENTIALS in grants
    if automation:
        problems.extend(client_grants.automation_problems(raw, method))

    redirect_problems: list[str] = []
    if raw.get("redirect_uris") in (None, []) and not automation:
        redirect_problems.append("redirect_uris is required: a list of at least one URI")
    redirect_uris, sectors = _uris(raw, "redirect_uris", policy, public, redirect_problems)
    post_logout, _ = _uris(raw, "post_logout_redirect_uris", policy, public, problems)

    jwks = None
    if "jwks_uri" in raw:
        problems.append("jwks_uri is not supported: give the client's public keys in jwks")
    if "jwks" in raw:
        jwks = public_jwks_text(raw["jwks"], problems)
    elif method == "private_key_jwt":
        problems.append("private_key_jwt needs the client's public keys in jwks")
    secret_hash = _secret_hash(raw, method, policy, problems) if method in AUTH_METHODS else None

    if "response_types" in raw and raw["response_types"] != ["code"] and not automation:
        problems.append('response_types must be ["code"]: implicit and hybrid flows are not offered (RFC 9700 §2.1.2)')
    alg = _choice(raw, "id_token_signed_response_alg", SIGNING_ALGS, "RS256", problems)
    subject_type = _choice(raw, "subject_type", SUBJECT_TYPES, "pairwise", problems)
    if policy.dynamic and subject_type == "public" and not policy.public_subjects:
        # OIDC Core §8: a public sub is the same for every public client, so registering one would let its
        # holder correlate citizens with the operator's own apps; OIDC Registration §2 lets the OP choose
        problems.append("subject_type public is not offered to dynamically registered clients: their sub is "
                        "pairwise (OIDC Core §8.1)")
    scope = client_grants.scope(raw, grants, problems)

    name = raw.get("client_name", the_id)
    if "client_name" in raw and (not isinstance(name, str) or not name.strip() or len(name) > 200
                                 or not name.isprintable()):
        problems.append("client_name must be printable text of at most 200 characters")
    upstreams = _strings(raw, "allowed_upstreams", (), problems)
    default_upstream = raw.get("default_upstream")
    if default_upstream is not None and (not isinstance(default_upstream, str) or not default_upstream
                                         or (upstreams and default_upstream not in upstreams)):
        problems.append("default_upstream must be the name of an upstream (one of allowed_upstreams when given)")
    logo_uri = client_members.display_uri(raw, "logo_uri", problems)
    policy_uri = client_members.display_uri(raw, "policy_uri", problems)
    back_uri = client_members.logout_uri(raw, "backchannel_logout_uri", policy, problems)
    front_uri = client_members.logout_uri(raw, "frontchannel_logout_uri", policy, problems)
    back_sid = client_members.flag(raw, "backchannel_logout_session_required", problems)
    front_sid = client_members.flag(raw, "frontchannel_logout_session_required", problems)
    may_introspect = raw.get("may_introspect", False)
    if policy.dynamic and "may_introspect" in raw:
        problems.append("may_introspect is granted by the operator in a metadata file, not by registration")
    elif not isinstance(may_introspect, bool):
        problems.append("may_introspect must be true or false")

    sector, sector_uri = ("", None)
    if not redirect_problems:
        sector, sector_uri = _sector(raw, sectors, subject_type, policy, the_id, problems)
    if redirect_problems:
        raise RedirectUriError(redirect_problems + problems)
    if problems:
        raise ClientMetadataError(problems)
    return OidcClient(
        client_id=the_id, client_name=name, redirect_uris=redirect_uris, token_endpoint_auth_method=method,
        client_secret_hash=secret_hash, post_logout_redirect_uris=post_logout, jwks=jwks, scope=scope,
        subject_type=subject_type, sector=sector, id_token_signed_response_alg=alg,
        grant_types=grants, allowed_upstreams=upstreams,
        may_introspect=may_introspect is True, source=source, sector_identifier_uri=sector_uri,
        logo_uri=logo_uri, policy_uri=policy_uri,
        default_upstream=default_upstream if isinstance(default_upstream, str) else None,
        backchannel_logout_uri=back_uri, backchannel_logout_session_required=back_sid,
        frontchannel_logout_uri=front_uri, frontchannel_logout_session_required=front_sid,
    )


def client_metadata_document(client: OidcClient) -> dict[str, Any]:
    """The client's registration in RFC 7591 §2 form, without any secret or secret hash: the body of the
    RFC 7591 §3.2.1 response (before the broker adds what it issued) and what ``broker client list`` shows.
    Parsing it again (with the hash, under the file policy) gives back the same client."""
    document: dict[str, Any] = {
        "client_id": client.client_id,
        "client_name": client.client_name,
        "redirect_uris": list(client.redirect_uris),
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "grant_types": list(client.grant_types),
        "response_types": [] if CLIENT_CREDENTIALS in client.grant_types else ["code"],
        "scope": " ".join(client.scope),
        "subject_type": client.subject_type,
        "id_token_signed_response_alg": client.id_token_signed_response_alg,
    }
    if client.post_logout_redirect_uris:
        document["post_logout_redirect_uris"] = list(client.post_logout_redirect_uris)
    if client.jwks is not None:
        document["jwks"] = json.loads(client.jwks)
    if client.sector_identifier_uri is not None:
        document["sector_identifier_uri"] = client.sector_identifier_uri
    if client.allowed_upstreams:
        document["allowed_upstreams"] = list(client.allowed_upstreams)
    if client.may_introspect:
        document["may_introspect"] = True
    for key in ("logo_uri", "policy_uri", "default_upstream"):
        if getattr(client, key) is not None:
            document[key] = getattr(client, key)
    for channel in ("backchannel", "frontchannel"):
        uri, required = getattr(client, f"{channel}_logout_uri"), getattr(client, f"{channel}_logout_session_required")
        if uri is not None:
            document[f"{channel}_logout_uri"] = uri
        if uri is not None or required:
            document[f"{channel}_logout_session_required"] = required
    return document
