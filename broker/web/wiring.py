"""The journeys' ports wired from one app's ``Services``: which store or adapter plays each part
(``broker.journeys.context.Journeys``). ``broker.app`` calls ``wire_journeys`` once the services are built."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

from broker.config.settings import Settings
from broker.core.identifiers import pairwise_id
from broker.core.model import Protocol
from broker.downstream.oidc.answers import OidcAnswers
from broker.downstream.oidc.session_notices import OidcSessionNotices
from broker.downstream.saml_answers import SamlAnswers
from broker.downstream.saml_app_logout import SamlAppLogout
from broker.journeys.context import Journeys, JourneySettings, Observer, Places
from broker.keys.rotation_admin import FolderKeys
from broker.registry.app_admin import FileAppRegistrations
from broker.registry.metadata_admin import DirectorySources
from broker.registry.policy_file import RegistryPolicyFile
from broker.registry.source_registrations import FileSources
from broker.storage.consent_tally import SqlConsentTally
from broker.storage.unit_of_work import SqlUnitOfWork
from broker.upstream.oauth_upstreams import OAuthUpstreams
from broker.upstream.oidc_backchannel import OidcBackChannel
from broker.upstream.saml_idp_logout import SamlIdpLogout
from broker.upstream.saml_upstreams import SamlUpstreams
from broker.web.services import Services, describe_upstream


def journey_settings(settings: Settings) -> JourneySettings:
    return JourneySettings(
        pending_login_lifetime=settings.pending_login_lifetime,
        sso_session_lifetime=settings.sso_session_lifetime,
        release_claims=settings.release_claims,
        release_unverified_email=settings.release_unverified_email,
        profile=settings.profile,
        assurance=settings.assurance,
        email_authoritative=settings.linking.email_authoritative,
        auto_link_by_email=settings.linking.auto_link_by_email,
        logout_replay_window=settings.saml.request_max_age + 2 * settings.saml.clock_skew,
        brand_name=settings.brand_name,
        risk=settings.risk,
        risk_key=hmac.new(settings.secret_key, b"login history", hashlib.sha256).digest(),
        console=settings.console,
    )


def wire_journeys(svc: Services, observer: Observer, places: Places) -> Journeys:
    """The journeys over this app's stores and adapters: one adapter per protocol on either side."""
    registry = svc.registry
    return Journeys(
        settings=journey_settings(svc.settings),
        registry=registry,
        accounts=svc.accounts,
        pending=svc.pending,
        consents=svc.consents,
        sso_sessions=svc.sso_sessions,
        audit_log=svc.audit,
        clock=svc.clock,
        observer=observer,
        places=places,
        release_policy=lambda: registry.snapshot.policy,
        grants=svc.oidc.store,
        audit_trail=svc.audit,
        upstreams=(OAuthUpstreams(svc.upstream_adapter),
                   SamlUpstreams(svc.saml_sp, svc.saml_upstream, svc.saml_upstream_by_entity, svc.pending)),
        downstreams={Protocol.SAML: SamlAnswers(svc.idp, lambda: registry.snapshot.saml),
                     Protocol.OIDC: OidcAnswers(svc.oidc, registry.oidc_client, svc.settings.base_url)},
        app_logout=SamlAppLogout(svc.idp, lambda: registry.snapshot.saml),
        upstream_logout=SamlIdpLogout(svc.saml_sp, svc.saml_upstream, svc.saml_upstream_by_entity),
        authenticators=svc.authenticators,
        passkeys=svc.passkeys,
        login_history=svc.login_history,
        mailer=svc.mailer,
        outbox=svc.outbox,
        session_notices=OidcSessionNotices(svc.oidc.settings.issuer, svc.keys, registry.oidc_client),
        security_events=svc.ssf,
        operators=svc.operators,
        app_roles=svc.app_roles,
        apps=FileAppRegistrations(svc.settings.metadata_dir, registry.reload, instance_dir=svc.settings.instance_dir,
                                  describe=describe_upstream,
                                  on_scale=lambda acr: svc.settings.assurance.rank(acr) is not None),
        upstream_logout_tokens=OidcBackChannel(svc.upstream_adapter),
        metadata_sources=DirectorySources(svc.idp_directory) if svc.idp_directory is not None else None,
        metadata_files=FileSources(svc.settings.metadata_dir, svc.settings.instance_dir, svc.idp_directory,
                                   clock=lambda: svc.clock.now()) if svc.idp_directory is not None else None,
        signing_keys=FolderKeys(svc.settings.certs_dir, "broker " + svc.settings.base_url),
        policy_file=RegistryPolicyFile(svc.settings.metadata_dir, lambda: registry.snapshot.problems,
                                       reload=registry.reload,
                                       history_dir=svc.settings.instance_dir / "var" / "policy-history"),
        consent_tally=SqlConsentTally(svc.engine),
        app_subject=app_subject(svc),
        unit_of_work=SqlUnitOfWork(svc.engine),
    )


def app_subject(svc: Services) -> Callable[[str, str], str | None]:
    """The subject an app knows an account by: an OpenID client's ``sub`` (pairwise per sector, or public, as its
    ID tokens carry it), a SAML app's persistent NameID (pairwise per entity id, ``saml_responses.subject_id``)."""
    def subject(party_id: str, account_id: str) -> str | None:
        client = svc.registry.oidc_client(party_id)
        if client is not None:
            return svc.oidc.subject(client, account_id)
        if party_id in svc.registry.snapshot.saml.sps:
            return pairwise_id(svc.idp.settings.pairwise_secret, party_id, account_id)
        return None
    return subject
