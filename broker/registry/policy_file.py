"""The release-policy file as the console's ``PolicyFile`` port (issue 19; ``broker.core.policy_report``; README
"What each app receives: release policy and consent"): where it is and the registry's problems with it, the ones
``broker check`` reports."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from broker.core.policy_report import PolicyFile
from broker.registry.policy import POLICY_FILE


class RegistryPolicyFile:
    def __init__(self, metadata_dir: Path, problems: Callable[[], Sequence[str]]) -> None:
        self._path, self._problems = metadata_dir / POLICY_FILE, problems

    @property
    def path(self) -> str:
        return str(self._path)

    def exists(self) -> bool:
        return self._path.is_file()

    def problems(self) -> tuple[str, ...]:
        return tuple(p for p in self._problems() if p.startswith(POLICY_FILE))


_check: type[PolicyFile] = RegistryPolicyFile
