"""What the operator console shows of the release policy (issue 19; README "What each app receives: release
policy and consent"): where its file is, what ``broker check`` reports about it, and how many consent answers
were given under each policy version (the consent store, ``ConsentTally``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol


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
