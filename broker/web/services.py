"""The wired broker: settings, registry, stores and protocol adapters, built once per app.

``create_app`` builds one ``Services`` and keeps it in ``app.extensions["broker"]``; blueprints reach it
with ``services()``. This is the only place (with ``app.py``) that knows every adapter.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import requests
from flask import current_app
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from broker.config import Settings
from broker.core.model import Protocol, UpstreamParty, utcnow
from broker.core.ports import ClientStore
from broker.downstream.oidc.grants import Lifetimes
from broker.downstream.oidc.provider import OidcProvider, ProviderSettings
from broker.downstream.saml_server import IdpServers, SamlIdpSettings
from broker.keys import KeyRing
from broker.oidc.client import OidcClient
from broker.oidc.client_metadata import parse_client_metadata
from broker.registry import FileRegistry, UpstreamRegistration
from broker.registry.oidc_clients import FILE_POLICY
from broker.storage import SqlAccountStore, SqlAuditLog, SqlClientStore, SqlConsentStore, SqlPendingStore
from broker.storage.sso_sessions import SqlSsoSessionRegistry
from broker.upstream.factory import UpstreamAdapter, build_adapter, describe

CALLBACK_PATH = "/upstream/oidc/{name}/callback"
#: ``OidcClient.source`` of a client registered through Dynamic Client Registration (RFC 7591)
DYNAMIC_SOURCE = "dynamic"
#: what any client id looks like (RFC 7591 §2 text, as the metadata parser accepts it): other text is not
#: looked up at all, so no untrusted oddity (a NUL, a megabyte) reaches the database
PLAUSIBLE_CLIENT_ID = re.compile(r"[\x21-\x7e]{1,255}")
log = logging.getLogger(__name__)


class SystemClock:
    def now(self) -> datetime:
        return utcnow()


def describe_upstream(registration: UpstreamRegistration) -> UpstreamParty:
    """The core's view of a registration, with its preset's defaults (``ValueError`` if unusable)."""
    display_name, issuer = describe(registration)
    return UpstreamParty(registration.name, Protocol.OIDC, display_name, issuer)


def idp_settings(settings: Settings, keys: KeyRing) -> SamlIdpSettings:
    return SamlIdpSettings(
        entity_id=settings.saml.idp_entity_id,
        sso_redirect_url=settings.url("/saml2/idp/sso/redirect"),
        sso_post_url=settings.url("/saml2/idp/sso/post"),
        key_file=keys.key_file,
        cert_file=keys.cert_file,
        xmlsec_binary=shutil.which("xmlsec1") or "xmlsec1",
        clock_skew=settings.saml.clock_skew,
        request_max_age=settings.saml.request_max_age,
        want_authn_requests_signed=settings.saml.want_authn_requests_signed,
        assertion_lifetime=settings.saml.assertion_lifetime,
        sha1_allowed_for=settings.saml.sha1_allowed_for,
        pairwise_secret=settings.pairwise_secret,
    )


def email_indexer(settings: Settings) -> Callable[[str], str]:
    """HMAC-SHA256 of an address under a key derived from the pairwise secret: the database can match equal
    verified addresses for link offers without holding the addresses (``SqlAccountStore``)."""
    key = hmac.new(settings.pairwise_secret, b"broker e-mail index v1", hashlib.sha256).digest()

    def index(address: str) -> str:
        return hmac.new(key, address.encode(), hashlib.sha256).hexdigest()

    return index


def provider_settings(settings: Settings) -> ProviderSettings:
    oidc = settings.oidc
    return ProviderSettings(
        issuer=settings.base_url,
        token_endpoint=settings.url("/oidc/token"),
        lifetimes=Lifetimes(oidc.code_lifetime, oidc.access_token_lifetime, oidc.id_token_lifetime,
                            oidc.refresh_token_lifetime),
        release_unverified_email=settings.release_unverified_email,
        pairwise_secret=settings.pairwise_secret,
        merge_rules=settings.profile,
    )


def assertion_replay_guard(pending: SqlPendingStore) -> Callable[[str, str, datetime], bool]:
    """``first_use_of(client_id, jti, expires_at)``: records the assertion id in the shared pending store
    until the assertion expires; False when it is there already (RFC 7523 §3 item 7, one use per jti)."""

    def first_use_of(client_id: str, jti: str, expires_at: datetime) -> bool:
        handle = "jti:" + hashlib.sha256(f"{client_id}\x00{jti}".encode()).hexdigest()
        try:
            pending.put_with_handle("client-assertion", handle, "", expires_at)
        except IntegrityError:
            return False
        return True

    return first_use_of


def read_stored_client(metadata: str) -> OidcClient:
    """A dynamically registered client from its stored metadata (``StoredClient.metadata``). It was checked
    under the dynamic policy when registered; read back under the file policy, with the ``client_secret_hash``
    the broker added (``broker.oidc.client_metadata``). ``ValueError`` when it no longer parses."""
    return parse_client_metadata(json.loads(metadata), FILE_POLICY, client_id=None, source=DYNAMIC_SOURCE)


def dynamic_clients(store: ClientStore) -> Callable[[str], OidcClient | None]:
    """``FileRegistry(dynamic_client=...)``: the stored client of an id, or None (also when its stored metadata
    no longer parses, which is logged: one bad row must not break the provider). The registry stays
    unaware of storage; this layer knows both."""

    def find(client_id: str) -> OidcClient | None:
        if not PLAUSIBLE_CLIENT_ID.fullmatch(client_id):
            return None
        stored = store.get(client_id)
        if stored is None:
            return None
        try:
            return read_stored_client(stored.metadata)
        except (ValueError, RecursionError) as exc:  # ValueError: bad JSON or a ClientMetadataError
            log.warning("dynamically registered OIDC client %s is unusable and ignored: %s", client_id, exc)
            return None

    return find


@dataclass
class Services:
    settings: Settings
    keys: KeyRing
    registry: FileRegistry
    accounts: SqlAccountStore
    pending: SqlPendingStore
    #: clients registered through Dynamic Client Registration (RFC 7591)
    clients: SqlClientStore
    consents: SqlConsentStore
    audit: SqlAuditLog
    #: the SSO sessions that exist (the portal's active sessions, "sign out everywhere")
    sso_sessions: SqlSsoSessionRegistry
    idp: IdpServers
    oidc: OidcProvider
    http: requests.Session
    engine: Engine
    clock: SystemClock = field(default_factory=SystemClock)
    _upstreams: dict[str, tuple[UpstreamRegistration, UpstreamAdapter]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def release_cap(self, party_id: str) -> frozenset[str]:
        """The most ``party_id`` may receive: ``release_claims`` narrowed by the operator's release policy."""
        return self.registry.snapshot.policy.allows(party_id, self.settings.release_claims)

    def upstream_adapter(self, name: str) -> UpstreamAdapter | None:
        """The adapter for a registered OIDC upstream; rebuilt when its registration changes."""
        registration = self.registry.snapshot.upstreams.get(name)
        if registration is None:
            return None
        with self._lock:
            cached = self._upstreams.get(name)
            if cached is None or cached[0] != registration:
                redirect_uri = self.settings.url(CALLBACK_PATH.format(name=name))
                adapter = build_adapter(registration, redirect_uri, self.http)
                cached = (registration, adapter)
                self._upstreams[name] = cached
            return cached[1]


    def close(self) -> None:
        """Release connections (tests and orderly shutdown)."""
        self.engine.dispose()
        self.http.close()


def services() -> Services:
    found: Services = current_app.extensions["broker"]
    return found
