"""Roles for apps in the flow tests (issue 19): defining, assigning and mapping them through the same journey as
``broker roles``, the console and the admin API, the upstream's groups, and the audit records of the changes."""

from __future__ import annotations

from broker.core.audit import AuditKind
from broker.demo.oidc_provider_config import Mischief
from broker.journeys import app_roles
from tests.flows.federation import CITIZEN, UPSTREAM, Federation
from tests.flows.portal_support import services

BY = "operator test"


def define_and_assign(federation: Federation, app: str, role: str, account_id: str) -> None:
    j = services(federation).journeys
    assert app_roles.define(j, BY, app, role, f"{role} of {app}").changed
    assert app_roles.assign(j, BY, app, role, account_id).changed


def map_group(federation: Federation, app: str, role: str, upstream: str, group: str) -> None:
    j = services(federation).journeys
    app_roles.define(j, BY, app, role)
    assert app_roles.map_group(j, BY, app, role, upstream, group).changed


def upstream_groups(federation: Federation, *groups: str) -> None:
    """The demo provider's next ID tokens carry ``groups`` (as Microsoft Entra's carry group object ids)."""
    federation.provider.mischief = Mischief(claim_overrides={"groups": list(groups)})


def role_changes(federation: Federation) -> list[str]:
    """The reasons of the ``app-roles-changed`` audit records, oldest first."""
    return [r.reason or "" for r in reversed(list(services(federation).audit.events(limit=200)))
            if r.kind == AuditKind.APP_ROLES_CHANGED.value]


def citizen_account(federation: Federation) -> str:
    """The demo citizen's account at the demo provider (made at the first sign-in, before any consent page)."""
    svc = services(federation)
    issuer = svc.registry.upstream(UPSTREAM)
    assert issuer is not None
    found = svc.accounts.find_by_identity(issuer.issuer, str(CITIZEN.claims["sub"]))
    assert found is not None
    return found.account_id
