"""The authorization request (OpenID Connect Core 1.0 §3.1.2.1, RFC 6749 §4.1.1) -> a ``LoginRequest``.

Validation order matters: until ``client_id`` and ``redirect_uri`` are known to be registered together, no
error may be sent to the redirect URI (RFC 6749 §4.1.2.1, §10.15 open redirectors): those errors are a page.
After that, errors go back to the client in its response mode with its ``state``.

Only the authorization code flow is offered (``response_type=code``); implicit and hybrid are refused
(OAuth 2.0 Security BCP, RFC 9700 §2.1.2). PKCE (RFC 7636) is required of public clients and accepted from
confidential ones, with ``S256`` only (``plain`` would put the verifier in the front channel).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from broker.core import errors
from broker.core.assurance import Comparison
from broker.core.claims import claims_for_scopes, from_oidc_name
from broker.core.model import LoginRequest, Protocol
from broker.downstream.oidc.errors import (
    InvalidScope,
    RegistrationNotSupported,
    RequestNotSupported,
    RequestUriNotSupported,
    UnsupportedResponseType,
)
from broker.oidc.client import OidcClient

RESPONSE_MODES = ("query", "form_post")
PROMPTS = frozenset({"none", "login", "consent", "select_account"})
PKCE_CHALLENGE = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")  # RFC 7636 §4.2
MAX_STATE, MAX_NONCE, MAX_HINT, MAX_CLAIMS = 2048, 512, 256, 8192
#: the ID token claims that name the sign-in itself rather than the person
SESSION_CLAIMS = frozenset({"acr", "auth_time", "amr", "sid"})


class AuthorizeRejected(Exception):
    """``reply`` is set when the error may go back to the client (its redirect URI was checked)."""

    def __init__(self, error: errors.BrokerError, reply: LoginRequest | None) -> None:
        super().__init__(error.message)
        self.error, self.reply = error, reply


@dataclass(frozen=True)
class ClaimsRequest:
    """The ``claims`` parameter (OIDC Core §5.5), reduced to what the broker acts on."""

    #: broker claim names asked for, in the ID token or at UserInfo
    wanted: frozenset[str]
    #: broker claim names asked for in the ID token itself
    id_token: frozenset[str]
    #: acr values one of which is essential (``"acr": {"essential": true, "values": [...]}``)
    essential_acr: tuple[str, ...]
    preferred_acr: tuple[str, ...]
    #: broker claim names marked ``essential`` (the app cannot work without them; consent cannot decline them)
    essential: frozenset[str] = frozenset()


def _single(pairs: Iterable[tuple[str, str]]) -> tuple[dict[str, str], set[str]]:
    """The parameters, and the names sent more than once (RFC 6749 §3.1: each at most once; a parameter
    without a value is treated as omitted)."""
    seen: dict[str, str] = {}
    repeated: set[str] = set()
    for name, value in pairs:
        if name in seen:
            repeated.add(name)
        else:
            seen[name] = value
    return {name: value for name, value in seen.items() if value != ""}, repeated


def _claims_request(raw: str) -> ClaimsRequest:
    """Parse ``claims``; ``ValueError`` when it is not the JSON object of OIDC Core §5.5."""
    if len(raw) > MAX_CLAIMS:
        raise ValueError("claims parameter too long")
    document = json.loads(raw)
    if not isinstance(document, dict):
        raise ValueError("claims must be a JSON object")
    wanted: set[str] = set()
    in_id_token: set[str] = set()
    essential_acr: list[str] = []
    essential: set[str] = set()
    preferred_acr: list[str] = []
    for member in ("userinfo", "id_token"):
        requests: Any = document.get(member, {})
        if requests is None:
            continue
        if not isinstance(requests, dict):
            raise ValueError(f"claims.{member} must be an object")
        for name, spec in requests.items():
            if spec is not None and not isinstance(spec, dict):
                raise ValueError(f"claims.{member}.{name} must be null or an object")
            if name == "acr" and member == "id_token":
                values = _acr_values(spec or {})
                (essential_acr if (spec or {}).get("essential") is True else preferred_acr).extend(values)
                continue
            found = from_oidc_name(str(name))
            if found is not None:
                wanted.add(found.name)
                if spec is not None and spec.get("essential") is True:
                    essential.add(found.name)
                if member == "id_token":
                    in_id_token.add(found.name)
    return ClaimsRequest(frozenset(wanted), frozenset(in_id_token), tuple(essential_acr), tuple(preferred_acr),
                         frozenset(essential))


def _acr_values(spec: Mapping[str, Any]) -> list[str]:
    values = spec.get("values", [spec["value"]] if "value" in spec else [])
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ValueError("acr values must be strings")
    return list(values)


def parse_authorization_request(pairs: Iterable[tuple[str, str]],
                                lookup: Callable[[str], OidcClient | None]) -> LoginRequest:
    """The ``LoginRequest`` for these query (GET) or form (POST) parameters, or ``AuthorizeRejected``."""
    params, repeated = _single(pairs)
    client_id = params.get("client_id", "")
    client = lookup(client_id) if client_id and "client_id" not in repeated else None
    if client is None:
        raise AuthorizeRejected(errors.UnknownParty(detail=f"unknown client_id {client_id[:80]!r}"), None)
    redirect_uri = params.get("redirect_uri", "")
    # Exact string comparison (OIDC Core §3.1.2.1; RFC 9700 §4.1.3): no prefixes, no normalisation.
    if "redirect_uri" in repeated or redirect_uri not in client.redirect_uris:
        raise AuthorizeRejected(errors.UnregisteredReturnUrl(
            detail=f"redirect_uri {redirect_uri[:200]!r} not registered for {client_id!r}"), None)
    response_mode = params.get("response_mode", "query")
    state = params.get("state")
    reply = LoginRequest(
        downstream=client.client_id, protocol=Protocol.OIDC, return_to=redirect_uri, request_id=None,
        relay_state=state if state is not None and len(state) <= MAX_STATE else None, requested_claims=frozenset(),
        protocol_state=(("response_mode", response_mode if response_mode in RESPONSE_MODES else "query"),),
    )

    def reject(error: errors.BrokerError) -> AuthorizeRejected:
        return AuthorizeRejected(error, reply)

    if repeated:
        raise reject(errors.InvalidRequest(detail=f"parameters repeated: {sorted(repeated)}"))
    if response_mode not in RESPONSE_MODES:
        raise reject(errors.InvalidRequest(detail=f"response_mode {response_mode[:40]!r} not supported"))
    if state is not None and len(state) > MAX_STATE:
        raise reject(errors.InvalidRequest(detail="state too long"))
    if "request" in params:
        raise reject(RequestNotSupported(detail="request objects are not supported"))
    if "request_uri" in params:
        raise reject(RequestUriNotSupported(detail="request_uri is not supported"))
    if "registration" in params:
        raise reject(RegistrationNotSupported(detail="registration parameter is not supported"))
    if params.get("response_type") != "code":
        raise reject(UnsupportedResponseType(detail=f"response_type {params.get('response_type', '')[:40]!r}"))
    scopes = [s for s in params.get("scope", "").split(" ") if s]
    if "openid" not in scopes:
        raise reject(InvalidScope(detail="scope must include openid (OIDC Core §3.1.2.1)"))
    granted = tuple(dict.fromkeys(s for s in scopes if s in client.scope))
    pkce = _pkce(params, client)
    if isinstance(pkce, errors.BrokerError):
        raise reject(pkce)
    prompt = frozenset(p for p in params.get("prompt", "").split(" ") if p)
    if not prompt <= PROMPTS or ("none" in prompt and len(prompt) > 1):
        raise reject(errors.InvalidRequest(detail=f"prompt {params.get('prompt', '')[:60]!r} not valid"))
    max_age = _max_age(params.get("max_age"))
    if max_age == -1:
        raise reject(errors.InvalidRequest(detail="max_age must be a non-negative integer"))
    nonce = params.get("nonce")
    login_hint = params.get("login_hint")
    if len(nonce or "") > MAX_NONCE or any(len(params.get(k, "")) > MAX_HINT
                                          for k in ("login_hint", "idp_hint", "acr_values")):
        raise reject(errors.InvalidRequest(detail="nonce, login_hint, idp_hint or acr_values too long"))
    try:
        claims = _claims_request(params["claims"]) if "claims" in params else ClaimsRequest(
            frozenset(), frozenset(), (), ())
    except (ValueError, RecursionError) as exc:
        raise reject(errors.InvalidRequest(detail=f"claims parameter: {exc}")) from exc
    voluntary_acr = tuple(a for a in params.get("acr_values", "").split(" ") if a)
    hint = params.get("idp_hint")
    state_fields = {
        "response_mode": response_mode,
        "scope": " ".join(granted),
        "nonce": nonce or "",
        "code_challenge": pkce or "",
        "prompt": " ".join(sorted(prompt)),
        "id_token_claims": " ".join(sorted(claims.id_token)),
        "essential": " ".join(sorted(claims.essential)),
    }
    return LoginRequest(
        downstream=client.client_id, protocol=Protocol.OIDC, return_to=redirect_uri, request_id=None,
        relay_state=state, requested_claims=claims_for_scopes(granted) | claims.wanted,
        acr_values=claims.essential_acr,
        # an essential acr is met by a sign-in at least that strong and answered with a requested value
        # (OIDC Core §5.5.1.1; core.assurance)
        acr_comparison=Comparison.MINIMUM,
        preferred_acr=tuple(dict.fromkeys([*voluntary_acr, *claims.preferred_acr])),
        # OIDC Core §3.1.2.1: prompt=login and max_age=0 both ask for a fresh sign-in; select_account asks for
        # the choice of account, which for a broker means the choice of provider again.
        force_authn="login" in prompt or "select_account" in prompt or max_age == 0,
        passive="none" in prompt,
        upstream_hints=(hint,) if hint else (),
        protocol_state=tuple(state_fields.items()),
        login_hint=login_hint or None,
        max_age=max_age,
    )


def _pkce(params: Mapping[str, str], client: OidcClient) -> str | errors.BrokerError | None:
    """The S256 challenge, None when absent and allowed, or the error (RFC 7636 §4.3, §4.4.1)."""
    challenge, method = params.get("code_challenge"), params.get("code_challenge_method")
    if challenge is None:
        if method is not None:
            return errors.InvalidRequest(detail="code_challenge_method without code_challenge")
        if client.is_public:
            return errors.InvalidRequest(detail="public clients must use PKCE (code_challenge)")
        return None
    if method != "S256":
        # RFC 7636 defaults a missing method to plain; the broker accepts S256 only.
        return errors.InvalidRequest(detail=f"code_challenge_method {str(method)[:20]!r} not supported (S256 only)")
    if not PKCE_CHALLENGE.match(challenge):
        return errors.InvalidRequest(detail="code_challenge malformed")
    return challenge


def _max_age(raw: str | None) -> int | None:
    """``max_age`` in seconds (OIDC Core §3.1.2.1); -1 when malformed (a separate value keeps the caller's flow
    flat). ASCII digits only: ``str.isdigit`` is also true of "²" (which ``int`` refuses) and of other scripts'
    digits (which it reads), neither of which is an integer in an OAuth request."""
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 10:
        return -1
    return int(raw)
