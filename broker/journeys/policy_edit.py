"""Changing the release policy from the operator console and the admin API (issue 19; README "What each app
receives: release policy and consent", "Operator console"): a new text previewed, checked exactly as the registry
will load it (``PolicyFile.check``, the registry's own parser) and compared with the policy in force
(``core.policy_diff``); applied, i.e. written in one step with the text it replaces kept as a past version; and the
past versions listed with who replaced each and how many consent answers were given under it.

A preview changes nothing and is not audited. An applied change is a ``POLICY_CHANGED`` record naming who
(``by``: "operator <id> (<roles>)", "client <id>"), the version before and after and each changed rule; its
reference is the past version's key (``PastPolicy.reference``), so the history reads who replaced a version from
the audit trail. The same text as the file's writes and records nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from broker.core import errors
from broker.core.audit import AuditKind
from broker.core.policy_diff import PolicyChanges, RuleChange, compare
from broker.core.policy_report import PastPolicy, PolicyFile, PolicyRefused, PolicyWritten
from broker.journeys.context import Journeys

MAX_REASON = 1000
#: the console's preview record kind (``ConsoleAppPreview.kind``): the previewed text is its ``document``
PREVIEW_KIND = "release-policy"


@dataclass(frozen=True)
class PolicyPreview:
    problems: tuple[str, ...]
    #: None when the text would not load
    changes: PolicyChanges | None


@dataclass(frozen=True)
class PolicyApplied:
    preview: PolicyPreview
    written: PolicyWritten


@dataclass(frozen=True)
class PastVersion:
    past: PastPolicy
    #: who replaced it, as its audit record names them (None: no record found)
    by: str | None
    #: consent answers recorded under its version
    consents: int
    text: str


def file(j: Journeys) -> PolicyFile:
    if j.policy_file is None:
        raise errors.NotAnOperator(detail="the release policy file is not wired")
    return j.policy_file


def current_text(j: Journeys) -> str:
    return file(j).text() or ""


def preview(j: Journeys, document: bytes) -> PolicyPreview:
    checked = file(j).check(document)
    if checked.policy is None:
        return PolicyPreview(checked.problems, None)
    return PolicyPreview((), compare(j.release_policy(), checked.policy, j.settings.release_claims,
                                     lambda party_id: j.registry.downstream(party_id) is not None))


def apply(j: Journeys, by: str, document: bytes) -> PolicyApplied:
    """Write ``document`` (``PolicyRefused``: nothing written); audited with who and the changes."""
    shown = preview(j, document)
    if shown.changes is None:
        raise PolicyRefused(shown.problems)
    written = file(j).write(document, j.now())
    if written.changed:
        j.audit(AuditKind.POLICY_CHANGED, reason=_reason(by, shown.changes)[:MAX_REASON],
                reference=written.reference)
    return PolicyApplied(shown, written)


def versions(j: Journeys) -> tuple[PastVersion, ...]:
    """The past versions, newest first, with who replaced each (the audit trail) and the consents under it."""
    counts = j.consent_tally.by_policy_version() if j.consent_tally is not None else {}
    policy = file(j)
    return tuple(PastVersion(p, _replaced_by(j, p.reference), counts.get(p.version, 0), policy.past(p.name) or "")
                 for p in policy.history())


def past(j: Journeys, name: str) -> str | None:
    return file(j).past(name[:128])


def _reason(by: str, changes: PolicyChanges) -> str:
    parts = [f"by {by}", f"version {changes.version_before} -> {changes.version_after}"]
    parts += [_change(c) for c in changes.changes]
    return "; ".join(parts)


def _change(c: RuleChange) -> str:
    delta = " ".join([*(f"+{n}" for n in c.added), *(f"-{n}" for n in c.removed)])
    return f"{c.scope} {c.field}: {c.before} -> {c.after}" + (f" ({delta})" if delta else "")


def _replaced_by(j: Journeys, reference: str) -> str | None:
    for record in j.audit_trail.events(reference=reference, limit=5):
        if record.kind == AuditKind.POLICY_CHANGED.value and (record.reason or "").startswith("by "):
            return (record.reason or "")[3:].split(";")[0]
    return None
