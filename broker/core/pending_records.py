"""What the pending store (``broker.core.ports.PendingStore``) holds, one frozen dataclass per stored shape, and
the one codec that writes and reads them (issue 16).

Each record class names the ``Kind`` it is stored under (``KIND``); two kinds that hold the same shape (a link
offer's proof at an OIDC provider or at a SAML IdP) are two subclasses of one shape. ``encode`` writes a record
as a JSON object with one member per field; ``decode`` reads it back and refuses anything else (not JSON, a
missing member, a member of the wrong type, a damaged nested object) with ``errors.LoginStateInvalid``, so every
caller answers a damaged or foreign row with the same clear refusal, never a ``KeyError`` and a 500.

A field is text (or text or None), a whole number, a yes/no, a tuple of texts, a model object stored through its own
``to_json``/``from_json`` (``LoginRequest``, ``UpstreamIdentity``, ``LinkProof``: kept as a JSON string, as
before), or another record (kept as a nested JSON object). A field added later has a default, and a record stored
before it (without its member) reads back with that default. Pending objects owned by an adapter
(``PendingAuthorization``, ``SamlPending``) stay the adapter's JSON text: the core may not import adapters.

``put_record``, ``put_record_with_handle``, ``take_record`` and ``peek_record`` put, take and peek at a record
under its own kind. The records of second factors (step-up, enrolments, passkey sign-in and sign-up) are in
``broker.core.factor_records``.
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import MISSING, dataclass, fields
from datetime import datetime
from typing import Any, ClassVar, TypeVar

from broker.core import errors
from broker.core.linking import LinkProof
from broker.core.model import LoginRequest, UpstreamIdentity
from broker.core.pending_kinds import Kind
from broker.core.ports import PendingStore

#: model objects kept as their own ``to_json`` text inside a record
_MODELS: tuple[type[LoginRequest] | type[UpstreamIdentity] | type[LinkProof], ...] = (
    LoginRequest, UpstreamIdentity, LinkProof)


@dataclass(frozen=True)
class PendingRecord:
    """A record of the pending store; a subclass stored on its own sets ``KIND``."""

    KIND: ClassVar[Kind]


R = TypeVar("R", bound=PendingRecord)


@dataclass(frozen=True)
class WaitingLogin(PendingRecord):
    """A login waiting for the person: at discovery or at the consent page."""

    login: LoginRequest


@dataclass(frozen=True)
class LoginAtDiscovery(WaitingLogin):
    """A login waiting for the person to pick an upstream (``broker.web.login``)."""

    KIND: ClassVar[Kind] = Kind.LOGIN


@dataclass(frozen=True)
class LoginAtConsent(WaitingLogin):
    """A login waiting for the consent page's answer (``broker.web.consent_gate``, ``broker.web.consent``)."""

    KIND: ClassVar[Kind] = Kind.CONSENT


@dataclass(frozen=True)
class LoginAtUpstream(PendingRecord):
    """A login sent to an upstream; ``upstream`` is the adapter's pending request (its JSON)."""

    login: LoginRequest
    upstream: str


@dataclass(frozen=True)
class LoginAtOidcUpstream(LoginAtUpstream):
    """Keyed by the OAuth ``state`` (``broker.web.login``)."""

    KIND: ClassVar[Kind] = Kind.OIDC_UPSTREAM


@dataclass(frozen=True)
class LoginAtSamlUpstream(LoginAtUpstream):
    """Keyed by the RelayState (``broker.web.saml_send``, taken by ``broker.web.saml_sp``)."""

    KIND: ClassVar[Kind] = Kind.SAML_UPSTREAM


@dataclass(frozen=True)
class LinkOffer(PendingRecord):
    """An offer to link ``identity``, the new upstream's, to ``account``, proven at one of ``upstreams``; made
    while this browser had the SSO session ``sso`` ("" for none) (``broker.web.link_offer``)."""

    KIND: ClassVar[Kind] = Kind.LINK_OFFER
    login: LoginRequest
    identity: UpstreamIdentity
    account: str
    upstreams: tuple[str, ...]
    sso: str


@dataclass(frozen=True)
class LinkOfferAtUpstream(PendingRecord):
    """A link offer sent to its proving upstream; ``upstream`` is the adapter's pending request (its JSON)."""

    offer: LinkOffer
    upstream: str


@dataclass(frozen=True)
class LinkOfferOidc(LinkOfferAtUpstream):
    KIND: ClassVar[Kind] = Kind.LINK_OFFER_OIDC


@dataclass(frozen=True)
class LinkOfferSaml(LinkOfferAtUpstream):
    KIND: ClassVar[Kind] = Kind.LINK_OFFER_SAML


@dataclass(frozen=True)
class LinkOfferConfirm(PendingRecord):
    """A link offer proven at ``proven_with``, waiting for the person's confirmation."""

    KIND: ClassVar[Kind] = Kind.LINK_OFFER_CONFIRM
    offer: LinkOffer
    proven_with: str


@dataclass(frozen=True)
class PortalLinkProof(PendingRecord):
    """Which account asked the portal to link a sign-in method, and when (``broker.web.linking``)."""

    KIND: ClassVar[Kind] = Kind.LINK_PROOF
    proof: LinkProof


@dataclass(frozen=True)
class PortalLinkAtUpstream(PendingRecord):
    """A portal link request sent to the upstream: the handle of its ``PortalLinkProof`` and the adapter's
    pending request (its JSON)."""

    proof: str
    upstream: str


@dataclass(frozen=True)
class PortalLinkOidc(PortalLinkAtUpstream):
    KIND: ClassVar[Kind] = Kind.LINK_OIDC


@dataclass(frozen=True)
class PortalLinkSaml(PortalLinkAtUpstream):
    KIND: ClassVar[Kind] = Kind.LINK_SAML


@dataclass(frozen=True)
class PortalLinkConfirm(PendingRecord):
    """A proven portal link waiting for the citizen's confirmation: the proof and the identity that answered."""

    KIND: ClassVar[Kind] = Kind.LINK_CONFIRM
    proof: LinkProof
    identity: UpstreamIdentity


@dataclass(frozen=True)
class OidcLogout(PendingRecord):
    """An RP-initiated logout waiting for its confirmation page: where to go after it, with which ``state``,
    for which client (``broker.web.oidc_provider``)."""

    KIND: ClassVar[Kind] = Kind.OIDC_LOGOUT
    target: str | None
    state: str | None
    client: str | None


@dataclass(frozen=True)
class SamlUpstreamLogout(PendingRecord):
    """A LogoutRequest sent to an upstream SAML IdP (``broker.web.saml_upstream_logout``), until its
    LogoutResponse (``broker.web.saml_sp_slo``)."""

    KIND: ClassVar[Kind] = Kind.SAML_UPSTREAM_LOGOUT
    request_id: str
    entity_id: str
    return_url: str


@dataclass(frozen=True)
class SamlUpstreamLogoutReply(PendingRecord):
    """The LogoutResponse owed to an upstream SAML IdP after the local logout (``broker.web.saml_sp_slo``)."""

    KIND: ClassVar[Kind] = Kind.SAML_UPSTREAM_LOGOUT_REPLY
    request_id: str
    entity_id: str
    relay_state: str | None
    success: bool


def encode(record: PendingRecord) -> str:
    """The record as stored: a JSON object, one member per field."""
    return json.dumps(_to_object(record))


def decode(cls: type[R], text: str) -> R:
    """Read back ``encode``'s text as a ``cls``; ``errors.LoginStateInvalid`` for anything else."""
    try:
        return _from_object(cls, json.loads(text))
    except (ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError) as exc:
        raise errors.LoginStateInvalid(
            detail=f"stored {cls.__name__} unreadable: {type(exc).__name__}") from exc


def put_record(store: PendingStore, record: PendingRecord, expires_at: datetime) -> str:
    """Store ``record`` under its kind; its new handle."""
    return store.put(record.KIND, encode(record), expires_at)


def put_record_with_handle(store: PendingStore, handle: str, record: PendingRecord, expires_at: datetime) -> None:
    """Store ``record`` under its kind and a handle chosen elsewhere (an OAuth state, a RelayState)."""
    store.put_with_handle(record.KIND, handle, encode(record), expires_at)


def take_record(store: PendingStore, cls: type[R], handle: str, now: datetime) -> R | None:
    """Take (single use) the ``cls`` stored under ``handle``: None when there is none (unknown, expired, used),
    ``errors.LoginStateInvalid`` when the row cannot be read as one."""
    text = store.take(cls.KIND, handle, now)
    return None if text is None else decode(cls, text)


def peek_record(store: PendingStore, cls: type[R], handle: str, now: datetime) -> R | None:
    """``take_record`` without taking: the record stays for a later ``take_record``."""
    text = store.peek(cls.KIND, handle, now)
    return None if text is None else decode(cls, text)


def _to_object(record: PendingRecord) -> dict[str, Any]:
    return {f.name: _to_value(getattr(record, f.name)) for f in fields(record)}


def _to_value(value: object) -> object:
    if isinstance(value, PendingRecord):
        return _to_object(value)
    if isinstance(value, _MODELS):
        return value.to_json()
    if isinstance(value, tuple):
        return list(value)
    if value is None or isinstance(value, str | int):  # bool is an int
        return value
    raise TypeError(f"a pending record cannot hold a {type(value).__name__}")


#: each record class's field types, resolved once (``typing.get_type_hints`` evaluates the annotations' text
#: each time it is called)
_HINTS: dict[type, dict[str, Any]] = {}


def _type_hints(cls: type) -> dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    return hints


def _from_object(cls: type[R], raw: object) -> R:
    if not isinstance(raw, dict):
        raise TypeError(f"{cls.__name__} must be a JSON object")
    hints = _type_hints(cls)
    # a member missing from an older record is its field's default, when the field has one (else KeyError)
    return cls(**{f.name: _from_value(hints[f.name], raw[f.name]) for f in fields(cls)
                  if f.name in raw or f.default is MISSING})


def _from_value(hint: Any, raw: object) -> object:
    if isinstance(hint, type) and issubclass(hint, PendingRecord):
        return _from_object(hint, raw)
    if hint in _MODELS:
        if not isinstance(raw, str):
            raise TypeError(f"a stored {hint.__name__} must be its JSON text")
        return hint.from_json(raw)  # ValueError for a damaged one
    if typing.get_origin(hint) is tuple and typing.get_args(hint) == (str, ...):
        if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
            raise TypeError("a stored tuple must be a list of texts")
        return tuple(raw)
    if hint in (str, int, bool) and type(raw) is hint:
        return raw
    if isinstance(hint, types.UnionType) and set(typing.get_args(hint)) == {str, type(None)} \
            and (raw is None or type(raw) is str):
        return raw
    raise TypeError(f"expected {hint!r}, found {type(raw).__name__}")

