"""The login pipeline, written against the ports (DESIGN: the flow of one login, steps 2, 3 and 5).

Adapters do steps 1, 4 and 6 (parse, go upstream, answer); this module decides what happens between.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from broker.core import errors
from broker.core.assurance import DEFAULT_POLICY, AssurancePolicy, Comparison
from broker.core.linking import Lookup, resolve
from broker.core.model import (
    Account,
    DownstreamParty,
    LoginRequest,
    LoginResult,
    Protocol,
    UpstreamIdentity,
    UpstreamParty,
)
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
    """The registered upstreams ``party`` may use: all of them when it names none, else those it names by
    name (or, for a SAML IdP, by entity id)."""
    allowed = set(party.allowed_upstreams)
    return tuple(u for u in registry.upstreams()
                 if not allowed or u.name in allowed or (u.protocol is Protocol.SAML and u.issuer in allowed))


def reachable_upstreams(registry: Registry, party: DownstreamParty) -> tuple[UpstreamParty, ...]:
    """For a party that names its upstreams: the registered ones it names, and the IdPs of the federation
    directory it names by entity id (each once). For a party that names none: the registered upstreams only
    (the directory's IdPs, possibly thousands, are reached through the discovery page)."""
    found = {u.issuer if u.protocol is Protocol.SAML else u.name: u for u in candidate_upstreams(registry, party)}
    for key in party.allowed_upstreams:
        idp = _directory_idp(registry, party, key)
        if idp is not None:
            found.setdefault(idp.issuer, idp)
    return tuple(found.values())


def _directory_idp(registry: Registry, party: DownstreamParty, key: str) -> UpstreamParty | None:
    """An IdP of the federation directory named by entity ID, if ``party`` may use it (every directory IdP
    when the party names no upstreams; otherwise only those it names)."""
    found = registry.upstream(key)
    if found is None or found.issuer != key or found.protocol is not Protocol.SAML:
        return None
    allowed = party.allowed_upstreams
    return found if not allowed or found.name in allowed or found.issuer in allowed else None


def _named(registry: Registry, party: DownstreamParty, reachable: tuple[UpstreamParty, ...],
           key: str) -> UpstreamParty | None:
    """The upstream ``key`` names (a name, an issuer, an IdP's entity id) if ``party`` may use it."""
    by_key = {k: u for u in reachable for k in (u.name, u.issuer)}
    return by_key.get(key) or _directory_idp(registry, party, key)


def choose_upstream(registry: Registry, party: DownstreamParty, request: LoginRequest) -> UpstreamChoice:
    """Step 3: the request's hint, else the party's default upstream, else the only upstream the party can
    reach, else the discovery page.

    Hints name an upstream by its name or its issuer/entity id (a registered one, or an IdP of the federation
    directory); a hint the party may not use is refused, never replaced by another upstream. When a party
    names upstreams and none of them may be used, the login fails (SAML Core §3.4.1.3: NoAvailableIDP). A
    party that names exactly one reachable upstream goes there directly, even beside a federation directory;
    a party that names none has a choice to make whenever the directory holds IdPs beyond the registered
    upstreams (a city's one SAML IdP, registered and in the directory, is one choice, not two), so it sees the
    discovery page. A default upstream that is no longer registered is passed over (the discovery page).
    """
    reachable = reachable_upstreams(registry, party)
    open_directory = not party.allowed_upstreams and _unregistered_directory_idps(registry)
    if not reachable and not open_directory:
        raise errors.UnknownUpstream(detail=f"no upstream is allowed for {party.party_id!r}")
    if request.upstream_hints:
        for hint in request.upstream_hints:
            found = _named(registry, party, reachable, hint)
            if found is not None:
                return UpstreamChoice(found, reachable)
        raise errors.UnknownUpstream(detail=f"hints {request.upstream_hints!r} not allowed for {party.party_id!r}")
    if party.default_upstream is not None:
        found = _named(registry, party, reachable, party.default_upstream)
        if found is not None:
            return UpstreamChoice(found, reachable)
    if len(reachable) == 1 and not open_directory:
        return UpstreamChoice(reachable[0], reachable)
    return UpstreamChoice(None, reachable)


def _unregistered_directory_idps(registry: Registry) -> bool:
    """Whether the federation directory holds an IdP that is not also a registered upstream."""
    size = registry.directory_size()
    if size == 0:
        return False
    registered = {u.issuer for u in registry.upstreams() if u.protocol is Protocol.SAML}
    return size > sum(1 for issuer in registered if registry.in_directory(issuer))


def check_upstream_allowed(registry: Registry, party: DownstreamParty, upstream_name: str) -> UpstreamParty:
    found = _named(registry, party, reachable_upstreams(registry, party), upstream_name)
    if found is not None:
        return found
    raise errors.UnknownUpstream(detail=f"upstream {upstream_name!r} not allowed for {party.party_id!r}")


def with_requirements(party: DownstreamParty, request: LoginRequest, assurance: AssurancePolicy) -> LoginRequest:
    """The request with the party's own minimum assurance (``required_acr``, set by the operator) applied.

    A request that asks for nothing, or for something a level below the minimum would meet, becomes a request
    for at least the minimum (SAML Core §3.3.2.2.1 ``Comparison="minimum"``); a request already at or above
    it is kept as it is. A class outside the ``[assurance]`` order that the request names exactly is kept:
    such a class is only ever equal to itself, so no weaker level can pass for it."""
    required = party.required_acr
    if required is None:
        return request
    floor = assurance.rank(required)
    weaker = assurance.order[:floor] if floor is not None else ()
    if request.acr_values and not any(
            assurance.satisfies(level, request.acr_values, request.acr_comparison) for level in weaker):
        return request
    return replace(request, acr_values=(required,), acr_comparison=Comparison.MINIMUM)


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
    found: Account | Lookup | None = Lookup.NOT_YET,
) -> LoginResult:
    """Step 5 after an upstream sign-in: assurance, account, profile, release (see ``core.release``).

    The upstream's answer must meet the assurance the downstream required (``core.assurance``): an answer
    below it is refused (SAML NoAuthnContext, OIDC ``unmet_authentication_requirements``), never accepted
    quietly. The profile is the account's unified profile under ``rules`` (``core.profile.merge``); the web
    layer passes the configured ones (``[profile]``), the default rules apply otherwise. ``found``: the
    account the caller already found for ``identity`` in this request (``linking.resolve``).

    The identities' claims are read once (issue 21) and kept in the result (``LoginResult.identities``)."""
    if not assurance.satisfies(identity.acr, request.acr_values, request.acr_comparison):
        raise errors.InsufficientAssurance(detail=f"upstream acr {identity.acr!r} does not meet "
                                                  f"{request.acr_comparison.value} {request.acr_values!r}")
    resolved = resolve(store, identity, now, found)
    account = resolved.account
    allowed = releasable_claims(party, request, policy_allows)
    identities = tuple(store.identity_claims(account.account_id))
    profile = merge(identities, rules).claims()
    return LoginResult(request=request, account=account, released=release(profile, allowed, unverified_email),
                       upstream=identity.upstream, acr=reported_acr(assurance, request, identity.acr),
                       auth_time=identity.auth_time, created_account=resolved.created, amr=identity.amr,
                       releasable=allowed, identifier_changed=resolved.identifier_changed, identities=identities)


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
    return answer_for_account(store, party, request, session.account_id, session.upstream, session.acr,
                              session.auth_time, session.amr, policy_allows, unverified_email, rules, assurance)


def answer_for_account(
    store: AccountStore,
    party: DownstreamParty,
    request: LoginRequest,
    account_id: str,
    upstream: str,
    acr: str | None,
    auth_time: datetime,
    amr: tuple[str, ...],
    policy_allows: frozenset[str],
    unverified_email: bool = False,
    rules: MergeRules = NO_CONFIGURED_RULES,
    assurance: AssurancePolicy = DEFAULT_POLICY,
) -> LoginResult:
    """Step 5 for an account already known to have signed in (an SSO session; a passkey, which names its
    account): assurance, the unified profile as it is now, release."""
    if not assurance.satisfies(acr, request.acr_values, request.acr_comparison):
        raise errors.InsufficientAssurance(detail=f"acr {acr!r} does not meet "
                                                  f"{request.acr_comparison.value} {request.acr_values!r}")
    account = store.get(account_id)
    if account is None:
        raise errors.LoginStateInvalid(detail="the account signing in no longer exists")
    allowed = releasable_claims(party, request, policy_allows)
    identities = tuple(store.identity_claims(account.account_id))
    released = release(merge(identities, rules).claims(), allowed, unverified_email)
    return LoginResult(request=request, account=account, released=released, upstream=upstream,
                       acr=reported_acr(assurance, request, acr), auth_time=auth_time, amr=amr, releasable=allowed,
                       identities=identities)


def reported_acr(assurance: AssurancePolicy, request: LoginRequest, acr: str | None) -> str | None:
    """The acr the downstream is told (``AssurancePolicy.reported``): an OIDC client that required acr values
    gets one of them."""
    return assurance.reported(acr, request.acr_values, request.acr_comparison,
                              name_a_requested_value=request.protocol is Protocol.OIDC)
