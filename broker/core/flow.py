"""The login pipeline, written against the ports (DESIGN: the flow of one login, steps 2, 3 and 5).

Adapters do steps 1, 4 and 6 (parse, go upstream, answer); this module decides what happens between.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from broker.core import errors
from broker.core.assurance import DEFAULT_POLICY, AssurancePolicy
from broker.core.linking import resolve_account
from broker.core.model import DownstreamParty, LoginRequest, LoginResult, Protocol, UpstreamIdentity, UpstreamParty
from broker.core.ports import AccountStore, Registry
from broker.core.profile import NO_CONFIGURED_RULES, MergeRules, merge
from broker.core.release import releasable_claims, release
from broker.core.sessions import SsoSession


@dataclass(frozen=True)
class UpstreamChoice:
    """Either one upstream to go to directly, or the candidates for the discovery page."""

    direct: UpstreamParty | None
    candidates: tuple[UpstreamParty, ...]


def party_for(registry: Registry, request: LoginRequest) -> DownstreamParty:
    party = registry.downstream(request.downstream)
    if party is None:
        raise errors.UnknownParty(detail=f"downstream {request.downstream!r} is no longer registered")
    return party


def candidate_upstreams(registry: Registry, party: DownstreamParty) -> tuple[UpstreamParty, ...]:
    allowed = set(party.allowed_upstreams)
    return tuple(u for u in registry.upstreams() if not allowed or u.name in allowed)


def _directory_idp(registry: Registry, party: DownstreamParty, key: str) -> UpstreamParty | None:
    """An IdP of the federation directory named by entity ID, if ``party`` may use it (every directory IdP
    when the party names no upstreams; otherwise only those it names)."""
    found = registry.upstream(key)
    if found is None or found.issuer != key or found.protocol is not Protocol.SAML:
        return None
    allowed = party.allowed_upstreams
    return found if not allowed or found.name in allowed or found.issuer in allowed else None


def choose_upstream(registry: Registry, party: DownstreamParty, request: LoginRequest) -> UpstreamChoice:
    """Step 3: the request's hint, else the only allowed upstream, else the discovery page.

    Hints name an upstream by its name or its issuer/entity id (a registered one, or an IdP of the federation
    directory). When a party names upstreams and none of them may be used, the login fails (SAML Core
    §3.4.1.3: NoAvailableIDP) rather than silently using another one. With a federation directory there is
    always a choice to make, so the discovery page is shown.
    """
    candidates = candidate_upstreams(registry, party)
    directory = registry.directory_size() > 0
    if not candidates and not directory:
        raise errors.UnknownUpstream(detail=f"no upstream is allowed for {party.party_id!r}")
    if request.upstream_hints:
        by_key = {key: u for u in candidates for key in (u.name, u.issuer)}
        for hint in request.upstream_hints:
            found = by_key.get(hint) or _directory_idp(registry, party, hint)
            if found is not None:
                return UpstreamChoice(found, candidates)
        raise errors.UnknownUpstream(detail=f"hints {request.upstream_hints!r} not allowed for {party.party_id!r}")
    if len(candidates) == 1 and not directory:
        return UpstreamChoice(candidates[0], candidates)
    return UpstreamChoice(None, candidates)


def check_upstream_allowed(registry: Registry, party: DownstreamParty, upstream_name: str) -> UpstreamParty:
    for candidate in candidate_upstreams(registry, party):
        if candidate.name == upstream_name:
            return candidate
    found = _directory_idp(registry, party, upstream_name)
    if found is not None:
        return found
    raise errors.UnknownUpstream(detail=f"upstream {upstream_name!r} not allowed for {party.party_id!r}")


def complete_login(
    store: AccountStore,
    party: DownstreamParty,
    request: LoginRequest,
    identity: UpstreamIdentity,
    now: datetime,
    policy_allows: frozenset[str],
    unverified_email: bool = False,
    rules: MergeRules = NO_CONFIGURED_RULES,
    assurance: AssurancePolicy = DEFAULT_POLICY,
) -> LoginResult:
    """Step 5 after an upstream sign-in: assurance, account, profile, release (see ``core.release``).

    The upstream's answer must meet the assurance the downstream required (``core.assurance``): an answer
    below it is refused (SAML NoAuthnContext, OIDC ``unmet_authentication_requirements``), never accepted
    quietly. The profile is the account's unified profile under ``rules`` (``core.profile.merge``); the web
    layer passes the configured ones (``[profile]``), the default rules apply otherwise."""
    if not assurance.satisfies(identity.acr, request.acr_values, request.acr_comparison):
        raise errors.InsufficientAssurance(detail=f"upstream acr {identity.acr!r} does not meet "
                                                  f"{request.acr_comparison.value} {request.acr_values!r}")
    account, created = resolve_account(store, identity, now)
    allowed = releasable_claims(party, request, policy_allows)
    profile = merge(store.identity_claims(account.account_id), rules).claims()
    return LoginResult(request=request, account=account, released=release(profile, allowed, unverified_email),
                       upstream=identity.upstream, acr=reported_acr(assurance, request, identity.acr),
                       auth_time=identity.auth_time,
                       created_account=created, amr=identity.amr)


def answer_from_session(
    store: AccountStore,
    party: DownstreamParty,
    request: LoginRequest,
    session: SsoSession,
    policy_allows: frozenset[str],
    unverified_email: bool = False,
    rules: MergeRules = NO_CONFIGURED_RULES,
    assurance: AssurancePolicy = DEFAULT_POLICY,
) -> LoginResult:
    """Step 2 -> 5: the SSO session already satisfies the request (see ``core.sessions.satisfies``); the
    unified profile as it is now, under ``rules``."""
    account = store.get(session.account_id)
    if account is None:
        raise errors.LoginStateInvalid(detail="the SSO session's account no longer exists")
    allowed = releasable_claims(party, request, policy_allows)
    profile = merge(store.identity_claims(account.account_id), rules).claims()
    released = release(profile, allowed, unverified_email)
    return LoginResult(request=request, account=account, released=released,
                       upstream=session.upstream, acr=reported_acr(assurance, request, session.acr),
                       auth_time=session.auth_time)


def reported_acr(assurance: AssurancePolicy, request: LoginRequest, acr: str | None) -> str | None:
    """The acr the downstream is told (``AssurancePolicy.reported``): an OIDC client that required acr values
    gets one of them."""
    return assurance.reported(acr, request.acr_values, request.acr_comparison,
                              name_a_requested_value=request.protocol is Protocol.OIDC)
