"""Release policy and consent: what each app may receive, and what the citizen agreed to (GDPR Art. 5(1)(c)
data minimisation, Art. 7 conditions for consent).

A downstream receives the intersection of three sets: what it asked for (its registration and this request),
what the operator's policy allows it, and what the citizen agreed to. Consent is asked on the first login to
an app, and again when the app asks for claims the citizen has not yet answered for, when the policy version
changes, after a withdrawal, or when the app asks (OIDC ``prompt=consent``). Required claims cannot be
declined (the app cannot work without them); optional ones can. Operators may exempt first-party apps; that
is recorded as such, never as a citizen's agreement.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from broker.core.claims import DESCRIBES


class ConsentHow(Enum):
    PAGE = "page"  # the citizen answered the consent page
    EXEMPT = "exempt"  # the operator's policy exempts this app
    WITHDRAWN = "withdrawn"  # the citizen withdrew it in the portal


@dataclass(frozen=True)
class PartyPolicy:
    """The operator's rule for one downstream (or the default for all)."""

    #: the most this app may receive; None: no narrowing beyond ``release_claims``
    allow: frozenset[str] | None = None
    consent_exempt: bool = False


@dataclass(frozen=True)
class ReleasePolicy:
    version: str = "1"
    default: PartyPolicy = PartyPolicy()
    parties: Mapping[str, PartyPolicy] = field(default_factory=dict)

    def for_party(self, party_id: str) -> PartyPolicy:
        return self.parties.get(party_id, self.default)

    def allows(self, party_id: str, global_cap: frozenset[str]) -> frozenset[str]:
        """Claims the policy allows this party: the global cap, narrowed by the party's rule."""
        allow = self.for_party(party_id).allow
        return global_cap if allow is None else global_cap & allow


@dataclass(frozen=True)
class Consent:
    """One answer of a citizen (or the policy) for one app; the latest per (account, app) is in force."""

    account_id: str
    party_id: str
    granted: frozenset[str]
    declined: frozenset[str]
    policy_version: str
    at: datetime
    how: ConsentHow

    def to_json(self) -> str:
        return json.dumps({"granted": sorted(self.granted), "declined": sorted(self.declined)})

    @staticmethod
    def claims_from_json(text: str) -> tuple[frozenset[str], frozenset[str]]:
        raw = json.loads(text)
        return frozenset(str(c) for c in raw["granted"]), frozenset(str(c) for c in raw["declined"])


@dataclass(frozen=True)
class ConsentQuestion:
    """What the consent page must ask: the claims it lists, which of them are required."""

    wanted: frozenset[str]
    required: frozenset[str]

    @property
    def optional(self) -> frozenset[str]:
        return self.wanted - self.required


def bundle(claims: frozenset[str]) -> frozenset[str]:
    """What describes a value travels with it (``email_verified`` and ``email_relay`` with ``email``,
    ``core.claims.DESCRIBES``): one item to consent to."""
    return frozenset(c for c in claims if c not in DESCRIBES)


def with_flags(claims: frozenset[str]) -> frozenset[str]:
    """The consented items, with what describes the values among them (``core.claims.DESCRIBES``)."""
    return claims | frozenset(flag for flag, value in DESCRIBES.items() if value in claims)


def needs_asking(party_id: str, current: Consent | None, question: ConsentQuestion, policy: ReleasePolicy,
                 forced: bool = False) -> bool:
    """Whether the consent page must be shown (see the module docstring for the rules). ``forced`` (the app
    asked, OIDC ``prompt=consent``) shows it even for an exempt app."""
    if forced:
        return True
    if policy.for_party(party_id).consent_exempt:
        return False
    if current is None or current.how is not ConsentHow.PAGE:
        return True  # never asked, withdrawn, or an exemption the policy no longer grants
    if current.policy_version != policy.version:
        return True
    answered = current.granted | current.declined
    return not bundle(question.wanted) <= answered or not bundle(question.required) <= current.granted


def exemption_to_record(party_id: str, current: Consent | None, question: ConsentQuestion,
                        policy: ReleasePolicy) -> bool:
    """Whether an exempt app's release must be recorded now (first time, new version or more claims)."""
    if not policy.for_party(party_id).consent_exempt:
        return False
    if current is not None and current.how is ConsentHow.PAGE and current.policy_version == policy.version \
            and bundle(question.wanted) <= current.granted | current.declined:
        return False  # the citizen answered the page (the app asked with prompt=consent): that answer stands
    return (current is None or current.how is not ConsentHow.EXEMPT or current.policy_version != policy.version
            or not bundle(question.wanted) <= current.granted)


def granted_claims(current: Consent | None, question: ConsentQuestion) -> frozenset[str]:
    """The claims this login may release under ``current`` (flags follow their values)."""
    if current is None or current.how is ConsentHow.WITHDRAWN:
        return frozenset()
    if current.how is ConsentHow.EXEMPT:
        return question.wanted
    return question.wanted & with_flags(current.granted)


def answer(account_id: str, party_id: str, question: ConsentQuestion, accepted_optional: frozenset[str],
           policy: ReleasePolicy, now: datetime) -> Consent:
    """The consent recorded when the citizen allows: every required item, and the optional ones ticked."""
    items, required = bundle(question.wanted), bundle(question.required)
    granted = required | (items & accepted_optional)
    return Consent(account_id, party_id, granted, items - granted, policy.version, now, ConsentHow.PAGE)


def exemption(account_id: str, party_id: str, question: ConsentQuestion, policy: ReleasePolicy,
              now: datetime) -> Consent:
    return Consent(account_id, party_id, bundle(question.wanted), frozenset(), policy.version, now,
                   ConsentHow.EXEMPT)


#: how the audit trail names the claims a citizen declined (``consent-declined``: every item of the page declined;
#: ``consent-given``: the optional items left unticked), read back by the analytics (issue 19)
DECLINED_PREFIX = "declined: "


def declined_reason(claims: frozenset[str]) -> str:
    """``declined: email phone_number``: claim names only, never a value."""
    return DECLINED_PREFIX + " ".join(sorted(claims))


def declined_in(reason: str | None) -> tuple[str, ...]:
    """The claims a ``consent-declined`` or ``consent-given`` reason names as declined (none for older records)."""
    text = reason or ""
    at = text.find(DECLINED_PREFIX)
    return tuple(c for c in text[at + len(DECLINED_PREFIX):].split(" ") if c) if at >= 0 else ()
