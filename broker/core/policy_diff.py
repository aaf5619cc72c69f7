"""What a new release policy changes against the one in force, in the operator's terms (issue 19; README "What each
app receives: release policy and consent"): the version before and after; per rule (the default, each app named
under ``apps``) the claims its allow list adds and removes *as released*, i.e. within ``[broker] release_claims``
(``ReleasePolicy.allows``), and a changed ``consent_exempt``; and what that means for citizens
(``core.consent.needs_asking``): a new version asks every citizen again at their next sign-in to each app, a claim
allowed anew is asked for when an app asks for it, an exemption switched off asks, one switched on releases without
asking, and a rule for an app id no registered app has applies to no one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from broker.core.consent import PartyPolicy, ReleasePolicy

#: the scope of the ``[default]`` rule in ``RuleChange.scope``
DEFAULT = "default"


@dataclass(frozen=True)
class RuleChange:
    """One field of one rule that changes. ``field``: ``rule`` (an app's own rule added or removed), ``allow``
    (what it may receive: ``added`` and ``removed`` claims as released) or ``consent_exempt``."""

    scope: str
    field: str
    before: str
    after: str
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


@dataclass(frozen=True)
class Note:
    """What a change means, for the operator: a stable ``code`` (tests, scripts) and the sentence shown."""

    code: str
    text: str
    subject: str = ""


@dataclass(frozen=True)
class PolicyChanges:
    version_before: str
    version_after: str
    changes: tuple[RuleChange, ...]
    notes: tuple[Note, ...]

    @property
    def same(self) -> bool:
        return self.version_before == self.version_after and not self.changes


def _allow(rule: PartyPolicy) -> str:
    if rule.allow is None:
        return "every claim of release_claims"
    return ", ".join(sorted(rule.allow)) or "none"


def _rule(scope: str, before: frozenset[str], after: frozenset[str], old: PartyPolicy,
          new: PartyPolicy) -> list[RuleChange]:
    rows = []
    if before != after or old.allow != new.allow:
        rows.append(RuleChange(scope, "allow", _allow(old), _allow(new), tuple(sorted(after - before)),
                               tuple(sorted(before - after))))
    if old.consent_exempt != new.consent_exempt:
        rows.append(RuleChange(scope, "consent_exempt", str(old.consent_exempt).lower(),
                               str(new.consent_exempt).lower()))
    return rows


def compare(before: ReleasePolicy, after: ReleasePolicy, release_claims: frozenset[str],
            registered: Callable[[str], bool]) -> PolicyChanges:
    """The changes from ``before`` to ``after``; ``registered(app id)``: whether an app has that id."""
    changes = _rule(DEFAULT, release_claims if before.default.allow is None else release_claims & before.default.allow,
                    release_claims if after.default.allow is None else release_claims & after.default.allow,
                    before.default, after.default)
    for party_id in sorted({*before.parties, *after.parties}):
        had, has = party_id in before.parties, party_id in after.parties
        if had != has:
            changes.append(RuleChange(party_id, "rule", "own rule" if had else "the default",
                                      "own rule" if has else "the default"))
        changes += _rule(party_id, before.allows(party_id, release_claims), after.allows(party_id, release_claims),
                         before.for_party(party_id), after.for_party(party_id))
    return PolicyChanges(before.version, after.version, tuple(changes),
                         _notes(before, after, tuple(changes), registered))


def _notes(before: ReleasePolicy, after: ReleasePolicy, changes: tuple[RuleChange, ...],
           registered: Callable[[str], bool]) -> tuple[Note, ...]:
    notes = []
    if before.version != after.version:
        notes.append(Note("version-changed", f"Changing the version from {before.version} to {after.version} asks "
                          "every citizen again at their next sign-in to each app (a consent-exempt app records a "
                          "new exemption)."))
    for c in changes:
        who = "every app without a rule of its own" if c.scope == DEFAULT else c.scope
        if c.removed:
            notes.append(Note("claims-removed", f"{who} no longer receives {', '.join(c.removed)} from the next "
                              "sign-in (tokens already issued keep what they hold).", c.scope))
        if c.added:
            notes.append(Note("claims-added", f"{who} may now receive {', '.join(c.added)}: citizens are asked for "
                              "them at their next sign-in to an app that asks for them.", c.scope))
        if c.field == "consent_exempt":
            notes.append(Note("exempt-on", f"{who}: released without asking citizens (recorded as exempt).", c.scope)
                         if c.after == "true" else
                         Note("exempt-off", f"{who}: citizens are asked for consent at their next sign-in.", c.scope))
    for party_id in sorted(after.parties):
        if not registered(party_id):
            notes.append(Note("unknown-app", f'apps."{party_id}" names no registered app: its rule applies to no one '
                              "until an app with that id is registered.", party_id))
    if before.version == after.version and not changes:
        notes.append(Note("no-change", "This text gives the same policy as the one in force."))
    return tuple(notes)
