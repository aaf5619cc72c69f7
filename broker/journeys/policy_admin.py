"""The release policy at the operator console and the admin API (issue 19; README "What each app receives: release
policy and consent"): the version in force, the default rule, each app's rule, the consent-exempt apps, what
``broker check`` reports about the file, and how many consent answers each policy version got.

Read-only: the policy is the file ``metadata/release-policy.toml`` (the page names it), reloaded by the registry
when it changes; a new ``version`` asks every citizen for consent again.
"""

from __future__ import annotations

from dataclasses import dataclass

from broker.journeys.context import Journeys


@dataclass(frozen=True)
class AppRule:
    party_id: str
    #: the claims the app may receive at most; None: every claim of ``[broker] release_claims``
    allow: tuple[str, ...] | None
    consent_exempt: bool


@dataclass(frozen=True)
class VersionCount:
    version: str
    consents: int
    in_force: bool


@dataclass(frozen=True)
class PolicyView:
    version: str
    file: str
    file_exists: bool
    #: ``[broker] release_claims``: what any app may receive at most
    release_claims: tuple[str, ...]
    default_allow: tuple[str, ...] | None
    default_exempt: bool
    rules: tuple[AppRule, ...]
    problems: tuple[str, ...]
    #: every version consent answers were given under, the one in force first, then by name
    versions: tuple[VersionCount, ...]

    @property
    def exempt_apps(self) -> tuple[str, ...]:
        return tuple(r.party_id for r in self.rules if r.consent_exempt)


def _claims(allow: frozenset[str] | None) -> tuple[str, ...] | None:
    return None if allow is None else tuple(sorted(allow))


def view(j: Journeys) -> PolicyView:
    policy = j.release_policy()
    counts = dict(j.consent_tally.by_policy_version()) if j.consent_tally is not None else {}
    counts.setdefault(policy.version, 0)
    versions = tuple(VersionCount(v, counts[v], v == policy.version)
                     for v in sorted(counts, key=lambda v: (v != policy.version, v)))
    rules = tuple(AppRule(party_id, _claims(rule.allow), rule.consent_exempt)
                  for party_id, rule in sorted(policy.parties.items()))
    file = j.policy_file
    return PolicyView(version=policy.version, file=file.path if file is not None else "",
                      file_exists=file is not None and file.exists(),
                      release_claims=tuple(sorted(j.settings.release_claims)),
                      default_allow=_claims(policy.default.allow), default_exempt=policy.default.consent_exempt,
                      rules=rules, problems=file.problems() if file is not None else (), versions=versions)
