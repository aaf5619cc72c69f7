"""The unified profile: an account's claims merged from its linked identities, each value with provenance.

DESIGN (vocabulary: unified profile): every value says which upstream asserted it, when, whether that upstream
verified it, and at what assurance (the identity's last ``acr``, OIDC Core §2 / SAML AuthnContextClassRef).
Downstreams receive the merged values (``UnifiedProfile.claims``) through ``core.release``.

Merge rules, configurable per claim (``[profile] rules`` in the configuration):

- ``most_recent`` (default): the value of the identity used most recently.
- ``most_recent_verified`` (default for ``email`` and ``phone_number``): a value its upstream verified
  (``email_verified`` / ``phone_number_verified`` true, OIDC Core §5.1) beats any unverified one; among
  equals, the most recent.
- ``highest_assurance``: the value asserted at the highest assurance in ``acr_order`` (lowest first; an acr
  not listed, or none, ranks below every listed one); among equals, the most recent.
- ``preferred_upstream:<name>``: the value of an identity of upstream ``<name>`` when one asserted it (the
  most recent such identity if several), else ``most_recent``.

Tie-breaks, so the result never depends on the order the store returns identities in: when the rule's key is
equal, the identity linked first (earliest ``first_used``) wins, then the smallest (issuer, subject).

A verification flag (``core.claims.VERIFICATION_OF``) has no rule of its own: it always comes from the same
identity as the value it vouches for, so one upstream's ``email_verified: true`` can never vouch for another
upstream's address. A flag whose identity asserted no value vouches for nothing and is left out.
``email_relay`` (``core.email_relay``) likewise describes the chosen ``email`` of the same identity: true when
that identity's upstream said the address is a private relay one or the address is at a relay domain, else
false; it is there whenever an ``email`` is, and never describes another identity's address.

``asserted_at`` is the identity's last use: the store replaces an identity's claims on every login, so its
claims are as of then (claims an upstream sends only once, such as Apple's name, keep their earlier value).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from broker.core.claims import BROKER_ASSIGNED, BY_NAME, CLAIMS, DESCRIBES, VERIFICATION_OF, ClaimValue
from broker.core.email_relay import relay_flag
from broker.core.model import LinkedIdentity

MOST_RECENT = "most_recent"
MOST_RECENT_VERIFIED = "most_recent_verified"
HIGHEST_ASSURANCE = "highest_assurance"
PREFERRED_UPSTREAM = "preferred_upstream:"  # followed by the upstream's name
RULES = (MOST_RECENT, MOST_RECENT_VERIFIED, HIGHEST_ASSURANCE)

#: the flag of each value that has one (``email`` -> ``email_verified``)
FLAG_OF: Mapping[str, str] = {value: flag for flag, value in VERIFICATION_OF.items()}
#: rules used when the configuration names none for a claim
DEFAULT_RULES: Mapping[str, str] = {"email": MOST_RECENT_VERIFIED, "phone_number": MOST_RECENT_VERIFIED}


@dataclass(frozen=True)
class IdentityClaims:
    """What one linked identity last asserted (``claims``, vocabulary names) and at what assurance."""

    identity: LinkedIdentity
    claims: Mapping[str, ClaimValue]
    acr: str | None


@dataclass(frozen=True)
class ProfileValue:
    """One claim value and where it came from.

    ``verified`` is the value's verification flag as its upstream asserted it; None when the claim has no flag
    (names, birthdate) or the upstream did not say.
    """

    value: ClaimValue
    upstream: str
    issuer: str
    asserted_at: datetime
    verified: bool | None
    acr: str | None


@dataclass(frozen=True)
class UnifiedProfile:
    values: Mapping[str, ProfileValue]

    def claims(self) -> Mapping[str, ClaimValue]:
        """The merged claim values (vocabulary names only), as ``core.release`` takes them."""
        return {name: chosen.value for name, chosen in self.values.items() if name in BY_NAME}


@dataclass(frozen=True)
class MergeRules:
    """The rule of each claim (see the module docstring) and the assurance order, lowest first.

    Built from trusted configuration; ``rule_problems`` says what is wrong with one before it is used.
    """

    rules: Mapping[str, str] = field(default_factory=dict, hash=False)  # compared, not hashed (a dict)
    acr_order: tuple[str, ...] = ()

    def rule_for(self, name: str) -> str:
        return self.rules.get(name) or DEFAULT_RULES.get(name, MOST_RECENT)


#: the default rule of every claim and no assurance order
NO_CONFIGURED_RULES = MergeRules()


def rule_problems(rules: Mapping[str, object], acr_order: Sequence[str]) -> list[str]:
    """What makes ``rules`` unusable: unknown claims or rules, a rule for a verification flag, an empty
    upstream name, ``highest_assurance`` without an ``acr_order``. Empty when they are fine."""
    problems: list[str] = []
    for name, rule in rules.items():
        if name not in BY_NAME:
            problems.append(f"rule for unknown claim {name!r}")
        elif name in DESCRIBES:
            problems.append(f"{name!r} has no rule of its own: it follows {DESCRIBES[name]!r}")
        elif not isinstance(rule, str) or not (
                rule in RULES or (rule.startswith(PREFERRED_UPSTREAM) and rule.removeprefix(PREFERRED_UPSTREAM))):
            problems.append(f"unknown rule {rule!r} for {name!r} (use one of {', '.join(RULES)}, "
                            f"or {PREFERRED_UPSTREAM}<upstream name>)")
        elif rule == HIGHEST_ASSURANCE and not acr_order:
            problems.append(f"{name!r} uses {HIGHEST_ASSURANCE}, which needs acr_order")
    if len(set(acr_order)) != len(acr_order):
        problems.append("acr_order names an acr value twice")
    return problems


def merge(identities: Sequence[IdentityClaims], rules: MergeRules) -> UnifiedProfile:
    """Each vocabulary claim from the identity its rule picks, with the value's flag from that same identity."""
    ordered = sorted(identities, key=lambda i: (i.identity.first_used, i.identity.issuer, i.identity.subject))
    values: dict[str, ProfileValue] = {}
    for claim in CLAIMS:
        if claim.name in DESCRIBES or claim.name in BROKER_ASSIGNED:  # roles are the app's (core.app_roles)
            continue
        sources = [source for source in ordered if claim.name in source.claims]
        if not sources:
            continue
        candidates = [_value(claim.name, source) for source in sources]
        chosen = _choose(candidates, rules.rule_for(claim.name), rules.acr_order)
        values[claim.name] = chosen
        flag = FLAG_OF.get(claim.name)
        if flag is not None and chosen.verified is not None:
            values[flag] = ProfileValue(chosen.verified, chosen.upstream, chosen.issuer, chosen.asserted_at,
                                        chosen.verified, chosen.acr)
        if claim.name == "email":
            source = next(s for s, c in zip(sources, candidates, strict=True) if c is chosen)
            relay = relay_flag(source.claims)
            if relay is not None:
                values["email_relay"] = ProfileValue(relay, chosen.upstream, chosen.issuer, chosen.asserted_at,
                                                     chosen.verified, chosen.acr)
    return UnifiedProfile(values)


def _value(name: str, source: IdentityClaims) -> ProfileValue:
    flag = source.claims.get(FLAG_OF.get(name, ""))
    return ProfileValue(
        value=source.claims[name],
        upstream=source.identity.upstream,
        issuer=source.identity.issuer,
        asserted_at=source.identity.last_used,
        verified=flag if isinstance(flag, bool) else None,
        acr=source.acr,
    )


def _choose(candidates: Sequence[ProfileValue], rule: str, acr_order: Sequence[str]) -> ProfileValue:
    """The candidate with the largest (rank under ``rule``, time asserted). ``max`` keeps the first of equal
    ones, and they come in the tie-break order (see ``merge``)."""
    if rule.startswith(PREFERRED_UPSTREAM):
        preferred = rule.removeprefix(PREFERRED_UPSTREAM)
        candidates = [c for c in candidates if c.upstream == preferred] or candidates
    order = {acr: position for position, acr in enumerate(acr_order)}
    return max(candidates, key=lambda c: (_rank(c, rule, order), c.asserted_at))


def _rank(candidate: ProfileValue, rule: str, acr_order: Mapping[str, int]) -> int:
    if rule == MOST_RECENT_VERIFIED:
        return 1 if candidate.verified is True else 0
    if rule == HIGHEST_ASSURANCE:  # an acr outside the order, or none, ranks below every listed one
        return acr_order.get(candidate.acr, -1) if candidate.acr is not None else -1
    return 0
