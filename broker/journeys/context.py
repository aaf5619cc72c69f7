"""What every journey works with: the wired ports, the settings it needs, and this request's browser."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol as Interface

from broker.core import errors
from broker.core.app_roles import AppRoleStore
from broker.core.assurance import DEFAULT_POLICY, AssurancePolicy
from broker.core.audit import AuditEvent, AuditKind
from broker.core.consent import ReleasePolicy
from broker.core.factors import Authenticators, Passkeys
from broker.core.federations import MetadataSources
from broker.core.logout_ports import AppLogout, SessionNotices, UpstreamLogout
from broker.core.model import LoginRequest, Protocol
from broker.core.notify import Mailer
from broker.core.operators import ConsolePolicy, OperatorGrants
from broker.core.outbox import Outbox
from broker.core.party_admin import PartyRegistrations
from broker.core.policy_report import ConsentTally, PolicyFile
from broker.core.ports import (
    AccountErasure,
    AccountStore,
    AuditLog,
    AuditTrail,
    Clock,
    ConsentStore,
    GrantStore,
    IdentityLinks,
    PendingStore,
    Registry,
    SsoSessionRegistry,
)
from broker.core.profile import NO_CONFIGURED_RULES, MergeRules
from broker.core.protocol_ports import DownstreamAdapter, UpstreamAdapter
from broker.core.risk import DEFAULT_RULES, LoginHistory, RiskRules
from broker.core.security_events import SecurityEvents
from broker.core.sessions import SsoSession
from broker.core.signing_keys import SigningKeys
from broker.core.source_admin import MetadataSourceFiles
from broker.core.unit_of_work import UnitOfWork, separate_writes
from broker.core.upstream_logout_tokens import UpstreamLogoutTokens


class Accounts(AccountStore, IdentityLinks, AccountErasure, Interface):
    """The account store as the journeys use it: finding and creating accounts, linking identities, and
    erasing an account (the portal)."""


class Browser(Interface):
    """This request's browser, as far as a journey may know it: the handles it holds (each pending record is
    bound to the browser that started it, RFC 6749 §10.12 login CSRF) and its SSO session."""

    @property
    def user_agent(self) -> str: ...

    @property
    def address(self) -> str:
        """The client address the request came from (after the deployment's trusted proxies)."""
        ...

    def device_id(self) -> str:
        """The id of this browser's signed, long-lived device cookie; "" when it has none (a new device)."""
        ...

    def remember_device(self) -> None:
        """Give the browser a device cookie if it has none (after a completed sign-in)."""
        ...

    def bind(self, handle: str) -> None: ...

    def unbind(self, handle: str) -> bool:
        """Forget ``handle``; ``False`` when this browser never held it."""
        ...

    def holds(self, handle: str) -> bool: ...

    def sso(self) -> SsoSession | None:
        """The browser's SSO session, when the server still knows it as live."""
        ...

    def keep_sso(self, sso: SsoSession) -> None: ...

    def renew(self) -> None:
        """A new browser identity at sign-in, keeping only the pending handles: a session id planted before
        is worthless after (session fixation)."""
        ...

    def sign_out(self) -> None:
        """Empty the browser's session and give it a new id: nothing of the old session survives, and an id
        observed before is worthless after."""
        ...

    def forget_sso(self) -> None:
        """Drop the browser's SSO session, keeping the rest."""
        ...

    def logout_handle(self) -> str | None:
        """The handle of this browser's single logout in progress, for an answer that comes back without one."""
        ...

    def keep_logout_handle(self, handle: str | None) -> None: ...


class Observer(Interface):
    """Metrics and the request's login id, which the web layer keeps."""

    def login_started(self) -> None: ...

    def login_succeeded(self, upstream: str | None, downstream: str, how: str) -> None: ...

    def step(self, name: str) -> AbstractContextManager[object]:
        """Time one step of a login (``with observer.step("answer"):``)."""
        ...

    def reference(self) -> str:
        """The support reference of this request (on its log lines and error pages)."""
        ...


class Places(Interface):
    """The broker's own addresses a journey sends the browser to."""

    def discovery(self, handle: str) -> str: ...

    def consent(self, handle: str) -> str:
        """The consent page of the login waiting under ``handle`` (shown by GET, post/redirect/get)."""
        ...

    def portal_home(self) -> str: ...

    def logout_resume(self, handle: str) -> str:
        """The absolute address that resumes a single logout after the upstream IdP answered."""
        ...

    def upstream_logout_reply(self, handle: str) -> str:
        """The absolute address that sends an upstream IdP its LogoutResponse after the chain."""
        ...


@dataclass(frozen=True)
class JourneySettings:
    """The operator's settings the journeys read (``broker.config`` builds them once at start-up)."""

    pending_login_lifetime: timedelta
    sso_session_lifetime: timedelta
    release_claims: frozenset[str]
    release_unverified_email: bool = False
    profile: MergeRules = NO_CONFIGURED_RULES
    assurance: AssurancePolicy = DEFAULT_POLICY
    #: ``[linking]``: upstreams trusted for e-mail, and (new, existing) upstream pairs linked automatically
    email_authoritative: frozenset[str] = frozenset()
    auto_link_by_email: frozenset[tuple[str, str]] = frozenset()
    #: how long an SP's LogoutRequest ID is remembered against replay (its validity plus clock skew)
    logout_replay_window: timedelta = timedelta(minutes=9)
    #: ``[risk]``: the rules that allow, step up or refuse a sign-in (``core.risk``), and the key of the hashes
    #: the login history keeps of devices, networks and addresses (empty: no history, no risk step)
    risk: RiskRules = DEFAULT_RULES
    risk_key: bytes = field(default=b"", repr=False)
    #: the service's name as the pages show it (``[broker] brand_name``): the issuer in authenticator apps
    brand_name: str = "City sign-in"
    #: the operator console's sign-in and sessions (``broker.journeys.console``)
    console: ConsolePolicy = field(default_factory=ConsolePolicy)


@dataclass(frozen=True)
class Journeys:
    """The wired ports; built once per app by the composition layer (``broker.web.services``)."""

    settings: JourneySettings
    registry: Registry
    accounts: Accounts
    pending: PendingStore
    consents: ConsentStore
    sso_sessions: SsoSessionRegistry
    audit_log: AuditLog
    clock: Clock
    observer: Observer
    places: Places
    #: the operator's release policy as it is now (``metadata/release-policy.toml``; a reload swaps it)
    release_policy: Callable[[], ReleasePolicy]
    #: the OpenID grants and their tokens (a withdrawn consent or an erased account revokes them)
    grants: GrantStore
    #: the audit log read back (the portal's apps page and data download)
    audit_trail: AuditTrail
    upstreams: tuple[UpstreamAdapter, ...] = ()
    downstreams: Mapping[Protocol, DownstreamAdapter] = field(default_factory=dict)
    #: single logout toward the apps (the SAML IdP's SPs) and toward the upstream IdPs; None: not wired
    app_logout: AppLogout | None = None
    upstream_logout: UpstreamLogout | None = None
    #: the second factors citizens enrol at the broker (step-up); None: the broker never steps a sign-in up
    authenticators: Authenticators | None = None
    #: passkeys (WebAuthn) among them; None: passkeys are not offered
    passkeys: Passkeys | None = None
    #: the logins seen per account (devices, networks, velocity) for the risk step; None: no risk step
    login_history: LoginHistory | None = None
    #: e-mail notices to citizens (a second factor changed, ``journeys.notices``); None: no mail is sent
    mailer: Mailer | None = None
    #: messages owed to other parties, sent by the delivery worker (``core.outbox``); None: none are sent
    outbox: Outbox | None = None
    #: how an ended session's OpenID apps are told (back- and front-channel logout); None: they are not
    session_notices: SessionNotices | None = None
    #: security events pushed to the apps' event streams (Shared Signals, ``core.security_events``); None: none
    security_events: SecurityEvents | None = None
    #: logout tokens from the upstream OpenID providers (Back-Channel Logout 1.0, the broker as RP); None: refused
    upstream_logout_tokens: UpstreamLogoutTokens | None = None
    #: the roles operators hold (issue 19; ``broker.journeys.console``); None: no console
    operators: OperatorGrants | None = None
    #: registering apps from the console and the admin API (issue 19; ``broker.journeys.app_admin``)
    apps: PartyRegistrations | None = None
    #: the operator's roles for apps, released as the ``roles`` claim (``broker.journeys.app_roles``); None: none
    app_roles: AppRoleStore | None = None
    #: the IdP metadata sources, their entities and "refresh now" (issue 19; ``journeys.federation_admin``)
    metadata_sources: MetadataSources | None = None
    #: adding and removing those sources' files (issue 19; ``journeys.source_admin``)
    metadata_files: MetadataSourceFiles | None = None
    #: the signing keys and their rotation steps (issue 19; ``journeys.key_admin``)
    signing_keys: SigningKeys | None = None
    #: the release policy's file and the consent answers per policy version (issue 19; ``journeys.policy_admin``)
    policy_file: PolicyFile | None = None
    consent_tally: ConsentTally | None = None
    #: the subject an app knows an account by, (app, account id) -> its pairwise OIDC ``sub`` or SAML persistent
    #: NameID, None for no such app (the help desk's look-up, ``journeys.citizen_lookup``); None: not wired
    app_subject: Callable[[str, str], str | None] | None = None
    #: one transaction for a login's last step (``core.unit_of_work``); by default each store commits its own
    unit_of_work: UnitOfWork = separate_writes

    def now(self) -> datetime:
        return self.clock.now()

    def release_cap(self, party_id: str) -> frozenset[str]:
        """The most ``party_id`` may receive: ``release_claims`` narrowed by the release policy."""
        return self.release_policy().allows(party_id, self.settings.release_claims)

    def upstream_adapter(self, name: str) -> UpstreamAdapter | None:
        """The adapter that knows upstream ``name``, if any can use it now."""
        return next((a for a in self.upstreams if a.knows(name)), None)

    def adapter_for(self, protocol: Protocol) -> UpstreamAdapter:
        found = next((a for a in self.upstreams if a.protocol is protocol), None)
        if found is None:
            raise errors.UnknownUpstream(detail=f"no upstream adapter for {protocol.value}")
        return found

    def audit(self, kind: AuditKind, *, account_id: str | None = None, upstream: str | None = None,
              downstream: str | None = None, reason: str | None = None, reference: str | None = None) -> None:
        self.audit_log.record(AuditEvent(kind, self.now(), account_id=account_id, upstream=upstream,
                                         downstream=downstream, reason=reason, reference=reference))


class DownstreamFailure(Exception):
    """A failure the app that started ``login`` hears in its protocol (its return address was checked)."""

    def __init__(self, error: errors.BrokerError, login: LoginRequest) -> None:
        super().__init__(error.message)
        self.error, self.login = error, login
