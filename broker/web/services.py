"""The wired broker: settings, registry, stores and protocol adapters, built once per app.

``create_app`` builds one ``Services`` and keeps it in ``app.extensions["broker"]``; blueprints reach it
with ``services()``. This is the only place (with ``app.py``) that knows every adapter.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import re
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol as Interface
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import Engine

from broker.config.settings import Settings
from broker.core.app_roles import AppRoleStore
from broker.core.factors import Authenticators, Passkeys
from broker.core.model import Protocol, UpstreamParty, utcnow
from broker.core.notify import Mailer
from broker.core.operators import OperatorGrants
from broker.core.outbox import Outbox
from broker.core.ports import AuditLog, AuditTrail, ClientStore, ConsentStore, PendingStore, SsoSessionRegistry
from broker.core.replay import first_use
from broker.core.risk import LoginHistory
from broker.core.ssf_streams import SsfStreamStore
from broker.downstream.oidc.grants import Lifetimes
from broker.downstream.oidc.provider import OidcProvider, ProviderSettings
from broker.downstream.saml_server import IdpServers, SamlIdpSettings
from broker.downstream.ssf import SsfTransmitter, TransmitterSettings
from broker.journeys.account_data import apps_used
from broker.journeys.context import Accounts, Journeys
from broker.keys.keyring import KeyRing
from broker.notify.smtp import SmtpMailer, SmtpSettings
from broker.oidc.client import DYNAMIC_SOURCE, OidcClient
from broker.oidc.client_metadata import RegistrationPolicy, parse_client_metadata
from broker.registry import FileRegistry, UpstreamRegistration
from broker.registry.idp_entity import IdpEntity
from broker.registry.metadata_refresh import IdpDirectory
from broker.registry.oidc_clients import FILE_POLICY
from broker.storage.audit import ChainCheck
from broker.upstream.factory import ProviderAdapter, build_adapter, describe
from broker.upstream.http_pool import UpstreamHttp
from broker.upstream.saml_settings import BINDING_POST, BINDING_REDIRECT, SpSettings, UpstreamIdp
from broker.upstream.saml_sp import SamlSp

CALLBACK_PATH = "/upstream/oidc/{name}/callback"
#: what any client id looks like (RFC 7591 §2 text, as the metadata parser accepts it): other text is not
#: looked up at all, so no untrusted oddity (a NUL, a megabyte) reaches the database
PLAUSIBLE_CLIENT_ID = re.compile(r"[\x21-\x7e]{1,255}")
log = logging.getLogger(__name__)


class AuditStore(AuditLog, AuditTrail, Interface):
    """The audit log as the web layer uses it: append, read (the portal), check the chain (the console)."""

    def check(self) -> ChainCheck: ...


class SystemClock:
    def now(self) -> datetime:
        return utcnow()


def describe_upstream(registration: UpstreamRegistration) -> UpstreamParty:
    """The core's view of a registration, with its preset's defaults (``ValueError`` if unusable)."""
    if registration.protocol == "saml":
        entity_id = registration.issuer or ""
        return UpstreamParty(registration.name, Protocol.SAML, registration.display_name or entity_id, entity_id)
    display_name, issuer = describe(registration)
    return UpstreamParty(registration.name, Protocol.OIDC, display_name, issuer)


def sp_settings(settings: Settings, keys: KeyRing) -> SpSettings:
    """The broker's SAML SP role toward upstream IdPs (``broker.upstream.saml_sp``)."""
    return SpSettings(
        entity_id=settings.saml.sp_entity_id,
        acs_url=settings.url("/saml2/sp/acs"),
        slo_redirect_url=settings.url("/saml2/sp/slo/redirect"),
        slo_post_url=settings.url("/saml2/sp/slo/post"),
        key_file=keys.key_file,
        cert_file=keys.cert_file,
        encryption_cert_file=keys.encryption_cert,
        decryption_key_files=keys.decryption_key_files,
        clock_skew=settings.saml.clock_skew,
        xmlsec_binary=shutil.which("xmlsec1") or "xmlsec1",
        extra_cert_files=keys.published_cert_files,
    )


def upstream_idp(entity: IdpEntity, registration: UpstreamRegistration | None) -> UpstreamIdp:
    """An IdP of the directory with its registration's options (none: the safe defaults)."""
    options = dict(registration.options) if registration is not None else {}
    binding = BINDING_POST if options.get("request_binding") == "post" else BINDING_REDIRECT
    subject_attribute = options.get("subject_attribute")
    return UpstreamIdp(
        name=registration.name if registration is not None else entity.entity_id,
        entity_id=entity.entity_id,
        display_name=(registration.display_name if registration is not None else None) or entity.display_name(),
        sso_services=entity.sso_services,
        slo_services=entity.slo_services,
        signing_certs=entity.signing_certs,
        want_authn_requests_signed=entity.want_authn_requests_signed,
        allow_unsolicited=options.get("allow_unsolicited") == "true",
        want_assertions_signed=options.get("want_assertions_signed") == "true",
        email_verified=options.get("email_verified") == "true",
        subject_attribute=subject_attribute if isinstance(subject_attribute, str) else None,
        request_binding=binding,
    )


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
        extra_cert_files=keys.published_cert_files,
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


def assertion_replay_guard(pending: PendingStore) -> Callable[[str, str, datetime], bool]:
    """``first_use_of(client_id, jti, expires_at)``: records the assertion id in the shared pending store
    until the assertion expires; False when it is there already (``core.replay``)."""

    def first_use_of(client_id: str, jti: str, expires_at: datetime) -> bool:
        return first_use(pending, client_id, jti, expires_at)

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
    accounts: Accounts
    pending: PendingStore
    #: clients registered through Dynamic Client Registration (RFC 7591)
    clients: ClientStore
    consents: ConsentStore
    audit: AuditStore
    #: the SSO sessions that exist (the portal's active sessions, "sign out everywhere")
    sso_sessions: SsoSessionRegistry
    #: the second factors citizens enrol at the broker (step-up, ``core.factors``)
    authenticators: Authenticators
    #: passkeys among them (WebAuthn); None when the broker's address is an IP address, which WebAuthn does not
    #: accept as a relying party ID (§5.1.4.1: a valid domain string)
    passkeys: Passkeys | None
    #: the logins seen per account, for the risk rules (``core.risk``)
    login_history: LoginHistory
    idp: IdpServers
    oidc: OidcProvider
    #: kept-alive pooled connections for every call to an OpenID or OAuth provider (``broker.upstream.http_pool``)
    http: UpstreamHttp
    engine: Engine
    #: the broker as SAML SP toward upstream IdPs, and the IdPs' metadata (files and federation aggregates)
    saml_sp: SamlSp
    idp_directory: IdpDirectory | None
    clock: SystemClock = field(default_factory=SystemClock)
    #: e-mail notices to citizens over SMTP (``[mail]``, ``mailer_of``); None: no mail server configured
    mailer: Mailer | None = None
    #: messages owed to apps (back-channel logout tokens, security events), sent by ``broker worker``
    outbox: Outbox | None = None
    #: the Shared Signals transmitter (issue 18): apps' event streams, and the journeys' ``SecurityEvents``
    #: (``ssf_transmitter``); None without an outbox
    ssf: SsfTransmitter | None = None
    #: the roles of the operator console and admin API (issue 19)
    operators: OperatorGrants | None = None
    app_roles: AppRoleStore | None = None  # roles for apps (``broker.journeys.app_roles``)
    _upstreams: dict[str, tuple[UpstreamRegistration, ProviderAdapter]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    #: the journeys' ports, wired from the above by ``wire_journeys`` (``broker.app``)
    journeys: Journeys = field(init=False)

    def release_cap(self, party_id: str) -> frozenset[str]:
        """The most ``party_id`` may receive: ``release_claims`` narrowed by the operator's release policy."""
        return self.registry.snapshot.policy.allows(party_id, self.settings.release_claims)

    def saml_upstream(self, name: str) -> UpstreamIdp | None:
        """A SAML upstream by registered name, or an IdP of the directory by entity ID; None when its metadata
        is not (or no longer) in the directory."""
        registration = self.registry.snapshot.upstreams.get(name)
        if registration is not None and registration.protocol != "saml":
            return None
        entity_id = registration.issuer if registration is not None else name
        entity = self.idp_directory.get(entity_id) if self.idp_directory is not None and entity_id else None
        return upstream_idp(entity, registration) if entity is not None else None

    def saml_upstream_by_entity(self, entity_id: str) -> UpstreamIdp | None:
        """The SAML upstream with ``entity_id``: its registration when there is one, else the directory's IdP."""
        for registration in self.registry.snapshot.upstreams.values():
            if registration.protocol == "saml" and registration.issuer == entity_id:
                return self.saml_upstream(registration.name)
        return self.saml_upstream(entity_id)

    def upstream_adapter(self, name: str) -> ProviderAdapter | None:
        """The adapter for a registered OIDC upstream; rebuilt when its registration changes."""
        registration = self.registry.snapshot.upstreams.get(name)
        if registration is None or registration.protocol == "saml":
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
        if self.idp_directory is not None:
            self.idp_directory.close()
        self.engine.dispose()
        self.http.close()


def passkey_party(settings: Settings) -> tuple[str, str] | None:
    """The WebAuthn relying party ID (the broker's host name) and origin (``scheme://host[:port]``) of
    ``base_url``; None for an IP address (WebAuthn §5.1.4.1 wants a domain) or plain http other than
    localhost (WebAuthn needs a secure context)."""
    parts = urlsplit(settings.base_url)
    host = parts.hostname or ""
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    if not host or (parts.scheme != "https" and host != "localhost"):
        return None
    return host, f"{parts.scheme}://{parts.netloc}"


def mailer_of(settings: Settings) -> Mailer | None:
    """The SMTP mailer of ``[mail]``; None without ``smtp_host`` (notices are then skipped and logged)."""
    mail = settings.mail
    if not mail.smtp_host:
        return None
    return SmtpMailer(SmtpSettings(host=mail.smtp_host, from_address=mail.from_address, port=mail.smtp_port,
                                   starttls=mail.starttls, username=mail.username, password=mail.password,
                                   timeout_seconds=mail.timeout_seconds))


def ssf_transmitter(svc: Services, streams: SsfStreamStore) -> SsfTransmitter | None:
    """The Shared Signals transmitter over ``svc`` (``broker.downstream.ssf``; None without an outbox): SETs signed
    with the broker's keys, each app's subject exactly its ID tokens' ``sub`` (``OidcProvider.subject``), sent to
    the streams of the apps the account used as the portal lists them (``account_data.apps_used``: a successful
    sign-in on record or a consent in force), read through ``svc.journeys`` when an event is emitted."""
    if svc.outbox is None:
        return None
    settings = svc.settings
    oidc = settings.oidc

    def apps_of(account_id: str) -> frozenset[str]:
        return frozenset(use.party_id for use in apps_used(svc.journeys, account_id))

    return SsfTransmitter(
        TransmitterSettings(issuer=svc.oidc.settings.issuer, jwks_uri=settings.url("/oidc/jwks"),
                            configuration_endpoint=settings.url("/ssf/streams"),
                            status_endpoint=settings.url("/ssf/status"),
                            verification_endpoint=settings.url("/ssf/verify")),
        svc.keys, streams, svc.outbox, svc.registry.oidc_client, svc.oidc.subject, apps_of,
        RegistrationPolicy(oidc.registration_allowed_hosts, dynamic=True,
                           public_subjects=oidc.registration_allow_public_subjects))


def services() -> Services:
    found: Services = current_app.extensions["broker"]
    return found
