"""The release policy as the operator console and the admin API see and change it (issue 19; README "What each
app receives: release policy and consent"): where its file is, what ``broker check`` reports about it, its text,
a new text checked exactly as the registry will load it, the text written (the one it replaces kept as a past
version), the past versions, and how many consent answers were given under each policy version (the consent
store, ``ConsentTally``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from broker.core.consent import ReleasePolicy

#: the largest policy text the console and the admin API take
MAX_POLICY = 256 * 1024


class PolicyRefused(ValueError):
    """A policy text that would not load; nothing was written. ``problems`` lists why, one by one."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = tuple(problems)


@dataclass(frozen=True)
class PolicyCheck:
    """A text checked as the registry loads it: the policy it gives, or None and the problems."""

    policy: ReleasePolicy | None
    problems: tuple[str, ...]


@dataclass(frozen=True)
class PastPolicy:
    """A policy text that was in force until an operator replaced it."""

    #: its name in the history (``<UTC time>-<version>.toml``), what the console and the API show it by
    name: str
    #: the ``version`` its text names ("" when the text does not give one the registry would read)
    version: str
    replaced_at: datetime
    #: the history's key in the audit trail: the record of the change that replaced it carries it as its reference
    reference: str


@dataclass(frozen=True)
class PolicyWritten:
    """A policy text written: the past version it replaced (None: there was no file, or the same text)."""

    replaced: PastPolicy | None
    changed: bool
    #: the change's key in the audit trail (``PastPolicy.reference`` of the version it replaced)
    reference: str


class ConsentTally(Protocol):
    def by_policy_version(self) -> Mapping[str, int]:
        """How many consent answers were recorded under each policy version (every answer, not only those in
        force)."""
        ...


class PolicyFile(Protocol):
    @property
    def path(self) -> str:
        """The policy file's path (it may not exist: then the defaults apply)."""
        ...

    def exists(self) -> bool: ...

    def problems(self) -> tuple[str, ...]:
        """The registry's problems with the policy file, as ``broker check`` reports them."""
        ...

    def text(self) -> str | None:
        """The file's text as written (None: no file)."""
        ...

    def check(self, document: bytes) -> PolicyCheck:
        """``document`` checked exactly as the registry will load it; nothing is written."""
        ...

    def write(self, document: bytes, now: datetime) -> PolicyWritten:
        """Check ``document`` again and write it in one step (``PolicyRefused``: nothing written), keeping the text
        it replaces as a past version; the registry reloads. The same text as the file's writes nothing."""
        ...

    def history(self) -> tuple[PastPolicy, ...]:
        """The past versions, newest first (a bounded number)."""
        ...

    def past(self, name: str) -> str | None:
        """The text of the past version ``name`` (None: no such version)."""
        ...
