"""Client metadata members checked one by one for ``broker.oidc.client_metadata``: the logout URIs (Back-Channel
Logout 1.0 §2.2, Front-Channel Logout 1.0 §2), their flags, and the URIs shown to citizens (RFC 7591 §2
``logo_uri``, ``policy_uri``). Each appends its problems and returns the value it accepted, or None."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from broker.core.display import logo_problem, policy_problem
from broker.oidc.redirect_uris import LOOPBACK_HOSTS, UriRefused, redirect_uri_sector

if TYPE_CHECKING:
    from broker.oidc.client_metadata import RegistrationPolicy


def _shown(value: object) -> str:
    """An untrusted value as it appears in an error message: quoted, and cut short."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def logout_uri(raw: Mapping[str, Any], key: str, policy: RegistrationPolicy, problems: list[str]) -> str | None:
    """``backchannel_logout_uri`` (Back-Channel Logout 1.0 §2.2) or ``frontchannel_logout_uri`` (Front-Channel
    Logout 1.0 §2): an absolute https URL, http only on loopback as for redirect URIs (the same checks, and the
    same allowed hosts), which may hold a port, path and query but no fragment. Untrusted under a dynamic policy.

    The broker itself POSTs to a back-channel URI, so a dynamically registered one must name a host by its DNS
    name: loopback hosts and IP addresses are refused unless the operator listed that very host in
    ``registration_allowed_hosts`` (a client may not point the broker at its own machine or network)."""
    value = raw.get(key)
    if value is None:
        return None
    shown = _shown(value)
    scheme = value.partition(":")[0].lower() if isinstance(value, str) and ":" in value else ""
    if isinstance(value, str) and scheme not in ("https", "http"):
        problems.append(f"{key}: {shown} must be an absolute https URL (http only on the loopback hosts "
                        "127.0.0.1, localhost and [::1])")
        return None
    try:
        host = redirect_uri_sector(value, policy.allows_host, public=False)
    except UriRefused as exc:
        problems.append(f"{key}: {shown} {exc}")
        return None
    if (policy.dynamic and key == "backchannel_logout_uri" and (host in LOOPBACK_HOSTS or _is_ip_address(host))
            and host not in {h.lower().strip("[]") for h in policy.allowed_hosts}):
        problems.append(f"{key}: {shown} must name its host by a DNS name: the broker sends this request itself, "
                        "so a registered client may not point it at a loopback host or an IP address")
        return None
    return str(value)


def _is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def flag(raw: Mapping[str, Any], key: str, problems: list[str]) -> bool:
    """A boolean member, false when absent (``*_logout_session_required``, Back-Channel Logout 1.0 §2.2,
    Front-Channel Logout 1.0 §2)."""
    value = raw.get(key, False)
    if not isinstance(value, bool):
        problems.append(f"{key} must be true or false, not {_shown(value)}")
        return False
    return value


def display_uri(raw: Mapping[str, Any], key: str, problems: list[str]) -> str | None:
    """RFC 7591 §2 ``logo_uri`` / ``policy_uri``: shown to citizens, so https only (a logo also as an inline
    data:image), checked by ``core.display``."""
    value = raw.get(key)
    if value is None:
        return None
    problem = logo_problem(value) if key == "logo_uri" else policy_problem(value)
    if problem:
        problems.append(f"{key} {problem}")
        return None
    return str(value)
