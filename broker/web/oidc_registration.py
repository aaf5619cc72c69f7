"""OpenID Connect Dynamic Client Registration (RFC 7591) and its management protocol (RFC 7592).

    POST   /oidc/register              register a client (RFC 7591 §3.1); bearer: the initial access token (§3)
    GET    /oidc/register/<client_id>  read its registration (RFC 7592 §2.1)     } bearer: the client's
    PUT    /oidc/register/<client_id>  replace its metadata (RFC 7592 §2.2)      } registration access
    DELETE /oidc/register/<client_id>  delete it (RFC 7592 §2.3)                 } token (RFC 7592 §3)

Who is trusted: registration is open only when the operator set an initial access token
(``[oidc] registration_token_file``); without it ``POST /oidc/register`` is 404. Whoever holds that token
registers under the dynamic policy (``broker.oidc.client_metadata``): no broker extensions, redirect URIs
only on ``registration_allowed_hosts``, and a pairwise ``sub`` only (OIDC Core §8.1): ``subject_type:
public`` is ``invalid_client_metadata`` (RFC 7591 §3.2.2) unless ``registration_allow_public_subjects``.
What it names itself (``client_name``, ``logo_uri``, ``policy_uri``) is shown to citizens as the app's
own claim, not the city's (``DownstreamParty.self_described``). Management needs the registration access
token issued with the client; it keeps working when registration is switched off, so registered clients can
still leave.

What is stored (``oidc_clients``): the validated metadata, which reads back under the file policy to the
same client, with the hash of the client secret; and the SHA-256 of the registration access token. Neither
secret is kept in plain, so a read (GET) cannot return ``client_secret`` (RFC 7592 §3 makes it optional);
it echoes the registration access token the caller presented. An update keeps the secret (a client moving
to a secret-based method without one gets a new secret, returned once). Deleting a client ends its
grants and tokens with it (RFC 7592 §2.3): the provider looks up each token's client and finds none.

Files win: a client id registered by a file in ``metadata/oidc-clients/`` is found there first, is not in
the store, and so can never be read, changed or deleted here; a new registration never takes an id any
party already has. Errors are JSON (RFC 7591 §3.2.2, RFC 6750 §3.1); an unknown client id is refused
exactly like a wrong token (RFC 7592 §2.1), so the endpoint does not tell which clients exist.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import logging
import secrets
from datetime import datetime
from typing import Any, NoReturn

from flask import Blueprint, request
from werkzeug.wrappers import Response

from broker.core.audit import AuditKind
from broker.core.grants import token_hash
from broker.core.ports import StoredClient
from broker.downstream.oidc.errors import OAuthError
from broker.downstream.oidc.provider import bearer_challenge
from broker.oidc.client import DYNAMIC_SOURCE, OidcClient, hash_secret
from broker.oidc.client_metadata import (
    SECRET_METHODS,
    ClientMetadataError,
    RegistrationPolicy,
    client_metadata_document,
    parse_client_metadata,
)
from broker.web.http import audit
from broker.web.oidc_api import json_response
from broker.web.services import PLAUSIBLE_CLIENT_ID, Services, read_stored_client, services

log = logging.getLogger(__name__)
bp = Blueprint("oidc_registration", __name__)
REGISTER_PATH = "/oidc/register"
JSON = "application/json"
MAX_BODY = 64 * 1024
#: RFC 7592 §2.2: members of the client information response the client must not send back in an update;
#: the broker ignores them (``client_secret`` is checked instead: it must be the current secret)
ISSUED_MEMBERS = ("registration_access_token", "registration_client_uri", "client_secret_expires_at",
                  "client_id_issued_at")
#: compared against when the client id is unknown, so the time taken does not tell whether it exists
_NO_CLIENT = token_hash(secrets.token_urlsafe(32))


@bp.after_request
def _cors(response: Response) -> Response:
    """Callable from browsers like the other JSON endpoints: only bearer tokens the caller sends count here."""
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
    response.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, DELETE, OPTIONS"
    return response


def _bearer() -> str | None:
    """RFC 6750 §2.1: the token of an ``Authorization: Bearer`` header, or None."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    value = value.strip()
    return value if scheme.lower() == "bearer" and value else None


def _refuse_token(presented: bool, detail: str, downstream: str | None = None) -> NoReturn:
    """401 ``invalid_token`` (RFC 6750 §3.1; no error in the challenge when no token came at all)."""
    audit.record(AuditKind.REQUEST_REFUSED, downstream=downstream, reason=f"{request.endpoint}: {detail}")
    challenge = (bearer_challenge("invalid_token", "the access token is invalid") if presented
                 else 'Bearer realm="broker"')
    raise OAuthError("invalid_token", "the access token is missing or invalid", 401, detail=detail,
                     www_authenticate=challenge)


def _invalid(description: str, error: str = "invalid_client_metadata") -> OAuthError:
    """RFC 7591 §3.2.2: 400 with ``invalid_redirect_uri`` or ``invalid_client_metadata``."""
    return OAuthError(error, description)


def _metadata_body() -> dict[str, Any]:
    """The request's JSON object (RFC 7591 §3.1), at most ``MAX_BODY`` bytes. Untrusted."""
    if request.mimetype != JSON:
        raise _invalid(f"the request body must be {JSON} (RFC 7591 §3.1)")
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise _invalid(f"the client metadata is larger than {MAX_BODY // 1024} KiB")
    data = request.get_data(cache=False)
    if len(data) > MAX_BODY:
        raise _invalid(f"the client metadata is larger than {MAX_BODY // 1024} KiB")
    try:
        raw = json.loads(data, parse_constant=_no_constant, object_pairs_hook=_unique_members)
    except RecursionError as exc:
        raise _invalid("the client metadata is nested too deeply") from exc
    except ValueError as exc:  # also UnicodeDecodeError
        raise _invalid(f"the request body is not valid JSON ({exc})") from exc
    if not isinstance(raw, dict):
        raise _invalid("the client metadata must be a JSON object (RFC 7591 §2)")
    return raw


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON (RFC 8259 §6)")


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """RFC 8259 §4: names should be unique; a repeated one is refused rather than read as its last copy, which
    another reader of the same request (a gateway, an audit tool) might not do."""
    found = dict(pairs)
    if len(found) != len(pairs):
        raise ValueError("a member name is repeated")
    return found


def _parse(raw: dict[str, Any], client_id: str, svc: Services) -> OidcClient:
    """Validate under the dynamic policy; the secret hash is the broker's to add."""
    oidc = svc.settings.oidc
    policy = RegistrationPolicy(oidc.registration_allowed_hosts, dynamic=True,
                                public_subjects=oidc.registration_allow_public_subjects)
    try:
        return parse_client_metadata(raw, policy, client_id=client_id, source=DYNAMIC_SOURCE)
    except ClientMetadataError as exc:
        raise _invalid(str(exc), exc.error) from exc


def _stored_metadata(client: OidcClient) -> str:
    """``StoredClient.metadata``: the RFC 7591 §2 document with ``client_id`` and ``client_secret_hash``,
    which reads back (under the file policy) to exactly ``client``."""
    document = client_metadata_document(client)
    if client.client_secret_hash is not None:
        document["client_secret_hash"] = client.client_secret_hash
    text = json.dumps(document, sort_keys=True, separators=(",", ":"))
    if read_stored_client(text) != client:  # a bug, never the client's doing: store nothing
        raise RuntimeError(f"the stored form of client {client.client_id} does not read back to the same client")
    return text


def _information(svc: Services, client: OidcClient, issued_at: datetime, access_token: str,
                 secret: str | None) -> dict[str, Any]:
    """The client information response (RFC 7591 §3.2.1, RFC 7592 §3)."""
    body = client_metadata_document(client)
    body["client_id_issued_at"] = int(issued_at.timestamp())
    if secret is not None:
        body["client_secret"] = secret
        body["client_secret_expires_at"] = 0  # does not expire
    body["registration_access_token"] = access_token
    body["registration_client_uri"] = svc.settings.url(f"{REGISTER_PATH}/{client.client_id}")
    return body


def _with_secret(client: OidcClient, current_hash: str | None) -> tuple[OidcClient, str | None]:
    """The client with its secret hash: ``current_hash`` kept, or a new secret for a secret-based method that
    has none yet (returned, once, in plain); no hash for the other methods."""
    if client.token_endpoint_auth_method not in SECRET_METHODS:
        return dataclasses.replace(client, client_secret_hash=None), None
    if current_hash is not None:
        return dataclasses.replace(client, client_secret_hash=current_hash), None
    secret = secrets.token_urlsafe(32)
    return dataclasses.replace(client, client_secret_hash=hash_secret(secret)), secret


@bp.post(REGISTER_PATH)
def register() -> Response:
    """RFC 7591 §3.1: register a client; 201 with the client information response (§3.2.1)."""
    svc = services()
    expected = svc.settings.oidc.registration_token
    if expected is None:
        raise OAuthError("invalid_request", "dynamic client registration is not offered here", 404,
                         detail="registration is off: no [oidc] registration_token_file")
    presented = _bearer()
    # RFC 7591 §3: the initial access token, compared in constant time
    if presented is None or not hmac.compare_digest(presented.encode(), expected):
        _refuse_token(presented is not None, "initial access token missing or wrong")
    raw = _metadata_body()
    client_id = secrets.token_urlsafe(24)
    if svc.registry.oidc_client(client_id) is not None or svc.registry.downstream(client_id) is not None:
        # 192 random bits: never in practice; but a registration must never shadow a party the operator made
        raise OAuthError("server_error", "no client identifier could be assigned; try again", 500,
                         detail=f"generated client id {client_id} is taken")
    client, secret = _with_secret(_parse(raw, client_id, svc), None)
    access_token = secrets.token_urlsafe(32)
    now = svc.clock.now()
    try:
        svc.clients.add(StoredClient(client_id, _stored_metadata(client), token_hash(access_token), now, now))
    except ValueError as exc:  # the same id stored a moment ago by another instance
        raise OAuthError("server_error", "no client identifier could be assigned; try again", 500,
                         detail=str(exc)) from exc
    audit.record(AuditKind.REGISTRATION_CHANGED, downstream=client_id,
                 reason=f"registered oidc-client {client_id} (dynamic)")
    log.info("registered oidc-client %s (dynamic)", client_id)
    return json_response(_information(svc, client, now, access_token, secret), 201)


def _authorized(svc: Services, client_id: str) -> tuple[StoredClient, str]:
    """RFC 7592 §2.1: the stored client and the presented token, which must be its registration access token.
    An unknown client is refused exactly like a wrong token, and takes the same comparison."""
    presented = _bearer()
    stored = svc.clients.get(client_id) if PLAUSIBLE_CLIENT_ID.fullmatch(client_id) else None
    expected = stored.registration_token_hash if stored is not None else _NO_CLIENT
    matches = presented is not None and hmac.compare_digest(token_hash(presented), expected)
    if presented is None or stored is None or not matches:
        _refuse_token(presented is not None, "registration access token missing or wrong, or client unknown",
                      downstream=stored.client_id if stored is not None else None)
    return stored, presented


@bp.route(f"{REGISTER_PATH}/<client_id>", methods=["GET", "PUT", "DELETE"])
def manage(client_id: str) -> Response:
    """RFC 7592 §2: read, replace or delete a dynamically registered client."""
    svc = services()
    stored, access_token = _authorized(svc, client_id)
    current = read_stored_client(stored.metadata)
    if request.method == "GET":
        return json_response(_information(svc, current, stored.created_at, access_token, None))
    if request.method == "DELETE":
        if not svc.clients.remove(client_id):  # deleted a moment ago
            _refuse_token(True, "client deleted concurrently")
        audit.record(AuditKind.REGISTRATION_CHANGED, downstream=client_id,
                     reason=f"deleted oidc-client {client_id} (dynamic)")
        log.info("deleted oidc-client %s (dynamic)", client_id)
        return Response(status=204, headers={"Cache-Control": "no-store"})
    return _update(svc, stored, current, access_token)


def _update(svc: Services, stored: StoredClient, current: OidcClient, access_token: str) -> Response:
    """RFC 7592 §2.2: the body is the whole new metadata with the client's own ``client_id``; a
    ``client_secret`` in it must be the current one (a client never chooses its secret)."""
    raw = _metadata_body()
    if raw.get("client_id") != stored.client_id:
        raise _invalid("client_id must be given and be this client's identifier (RFC 7592 §2.2)")
    echoed = raw.pop("client_secret", None)
    if echoed is not None and not (isinstance(echoed, str) and current.check_secret(echoed)):
        raise _invalid("client_secret, when sent, must be the client's current secret: the broker issues "
                       "secrets, a client cannot choose one (RFC 7592 §2.2)")
    for name in ISSUED_MEMBERS:
        raw.pop(name, None)
    client, secret = _with_secret(_parse(raw, stored.client_id, svc), current.client_secret_hash)
    if secret is None and echoed is not None and client.client_secret_hash == current.client_secret_hash:
        secret = echoed  # the client showed it knows it: it may be in the answer again (RFC 7592 §3)
    if not svc.clients.replace(stored.client_id, _stored_metadata(client), svc.clock.now()):
        _refuse_token(True, "client deleted concurrently")
    audit.record(AuditKind.REGISTRATION_CHANGED, downstream=stored.client_id,
                 reason=f"updated oidc-client {stored.client_id} (dynamic)")
    log.info("updated oidc-client %s (dynamic)", stored.client_id)
    return json_response(_information(svc, client, stored.created_at, access_token, secret))
