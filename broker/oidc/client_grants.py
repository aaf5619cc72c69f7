"""What a registered client may be granted: its ``grant_types`` and ``scope`` (RFC 7591 §2), checked for
``broker.oidc.client_metadata``.

A client is one of two kinds, never both:

- an **app** people sign in to: ``grant_types`` ``authorization_code``, optionally with ``refresh_token``
  (RFC 6749 §4.1, §6); ``scope`` from ``SCOPES``, with ``openid`` (OIDC Core §3.1.2.1);
- an **automation client** (a CI pipeline registering apps, issue 19): ``grant_types`` exactly
  ``["client_credentials"]`` (RFC 6749 §4.4) and ``scope`` only admin scopes (``core.admin_scopes``), which the
  admin API reads from its access token. RFC 6749 §4.4: "The client credentials grant type MUST only be used by
  confidential clients", so it authenticates with a secret or ``private_key_jwt``, never ``none``. It signs no
  one in, so it has no ``redirect_uris`` and no ``response_types`` (RFC 7591 §2.1: ``client_credentials`` uses
  no response type).

Keeping them apart means an authorization request can never be granted an admin scope, and a leaked app
secret never opens the admin API. Automation clients are registered by the operator only (a metadata file,
``broker client import``): Dynamic Client Registration (RFC 7591 §3.1) may ask for neither
``client_credentials`` nor an admin scope. Both are refused with the words that say what to do instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from broker.core.admin_scopes import CLIENT_SCOPES, PEOPLE_ONLY, admin_scope, is_admin_scope, scope_permission
from broker.oidc.client import SCOPES

CLIENT_CREDENTIALS = "client_credentials"
#: in the order ``OidcClient.grant_types`` keeps them
GRANT_TYPES = ("authorization_code", "refresh_token", CLIENT_CREDENTIALS)
APP_GRANT_TYPES = ("authorization_code", "refresh_token")
DEFAULT_SCOPE = ("openid", "profile", "email")
CONFIDENTIAL_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt")


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def grant_types(raw: Mapping[str, Any], dynamic: bool, problems: list[str]) -> tuple[str, ...]:
    """RFC 7591 §2 ``grant_types`` (default ``authorization_code``), in ``GRANT_TYPES`` order; problems appended."""
    value = raw.get("grant_types", ["authorization_code"])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        problems.append("grant_types must be a list of text")
        return ("authorization_code",)
    asked = tuple(dict.fromkeys(value))
    if CLIENT_CREDENTIALS in asked:
        if dynamic:
            problems.append("grant_types: client_credentials is only for automation clients the operator "
                            "registers (a file in metadata/oidc-clients/ or `broker client import`), not through "
                            "dynamic registration")
        elif asked != (CLIENT_CREDENTIALS,):
            problems.append('grant_types: client_credentials stands alone (["client_credentials"]): an automation '
                            "client signs no one in, so register the app people sign in to as a client of its own")
        return (CLIENT_CREDENTIALS,)
    if not set(asked) <= set(APP_GRANT_TYPES) or "authorization_code" not in asked:
        problems.append("grant_types must include authorization_code and may add refresh_token (or be "
                        f'["client_credentials"] for an automation client), not {_shown(list(asked))}')
    return tuple(g for g in GRANT_TYPES if g in asked)


def automation_problems(raw: Mapping[str, Any], method: object) -> list[str]:
    """What an automation client (``client_credentials``) may not have: a public method (RFC 6749 §4.4), redirect
    URIs or response types (it signs no one in)."""
    problems = []
    if method not in CONFIDENTIAL_METHODS:
        problems.append(f"client_credentials needs a confidential client (RFC 6749 §4.4): token_endpoint_auth_method "
                        f"{' or '.join(CONFIDENTIAL_METHODS)}, not {_shown(method)}")
    for key in ("redirect_uris", "post_logout_redirect_uris", "response_types"):
        if raw.get(key) not in (None, []):
            problems.append(f"{key}: an automation client (client_credentials) signs no one in: leave it out")
    return problems


def scope(raw: Mapping[str, Any], grants: tuple[str, ...], problems: list[str]) -> tuple[str, ...]:
    """RFC 7591 §2 ``scope``, space-separated: an app's from ``SCOPES`` with ``openid``; an automation client's
    admin scopes only (``core.admin_scopes.CLIENT_SCOPES``), at least one."""
    automation = CLIENT_CREDENTIALS in grants
    value = raw.get("scope", None if automation else " ".join(DEFAULT_SCOPE))
    if automation and value is None:
        problems.append(f"scope must list the automation client's admin scopes, such as {CLIENT_SCOPES[0]} "
                        f"(offered: {' '.join(CLIENT_SCOPES)})")
        return ()
    if not isinstance(value, str):
        problems.append("scope must be space-separated text")
        return () if automation else DEFAULT_SCOPE
    scopes = tuple(dict.fromkeys(value.split()))
    people = [s for s in scopes if (p := scope_permission(s)) is not None and p in PEOPLE_ONLY]
    if people:
        problems.append(f"scope: {_shown(' '.join(people))} never goes to a client: "
                        f"{' and '.join(sorted(admin_scope(p) for p in PEOPLE_ONLY))} stay with people, who sign "
                        "in to the console for them")
    if automation:
        unknown = [s for s in scopes if s not in CLIENT_SCOPES and s not in people]
        if unknown:
            problems.append(f"scope: {_shown(' '.join(unknown))} not offered to an automation client (offered: "
                            f"{' '.join(CLIENT_SCOPES)})")
        if not scopes:
            problems.append("scope must list at least one admin scope")
        return scopes
    admin = [s for s in scopes if is_admin_scope(s) and s not in people]
    if admin:
        problems.append(f"scope: {_shown(' '.join(admin))} only for automation clients registered with grant_types "
                        '["client_credentials"] by the operator')
    unknown = [s for s in scopes if s not in SCOPES and not is_admin_scope(s)]
    if unknown:
        problems.append(f"scope: {_shown(' '.join(unknown))} not offered (offered: {' '.join(SCOPES)})")
    if "openid" not in scopes:
        problems.append("scope must include openid")
    return scopes
