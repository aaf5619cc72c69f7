"""The release-policy file as the console's ``PolicyFile`` port (issue 19; ``broker.core.policy_report``; README
"What each app receives: release policy and consent"): where it is and the registry's problems with it, the ones
``broker check`` reports; its text; a new text checked by the registry's own ``parse_policy`` (what
``load_policy`` runs on the file, so the console and the admin API never accept what the registry would refuse);
and writing one (``write_atomically``, the text it replaces kept in the ``policy_history``, then the registry
reloaded, as ``FileAppRegistrations`` does)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from broker.core.policy_report import MAX_POLICY, PastPolicy, PolicyCheck, PolicyFile, PolicyRefused, PolicyWritten
from broker.registry.policy import POLICY_FILE, parse_policy
from broker.registry.policy_history import PolicyHistory, reference_of, stamp_of
from broker.registry.registrations import write_atomically


class RegistryPolicyFile:
    def __init__(self, metadata_dir: Path, problems: Callable[[], Sequence[str]], *,
                 reload: Callable[[], object] | None = None, history_dir: Path | None = None) -> None:
        """``reload``: the registry's, after a write; ``history_dir``: where replaced texts are kept (without it,
        the instance's ``var/policy-history``)."""
        self._path, self._problems = metadata_dir / POLICY_FILE, problems
        self._reload = reload
        self._history = PolicyHistory(history_dir or metadata_dir.parent / "var" / "policy-history")

    @property
    def path(self) -> str:
        return str(self._path)

    def exists(self) -> bool:
        return self._path.is_file()

    def problems(self) -> tuple[str, ...]:
        return tuple(p for p in self._problems() if p.startswith(POLICY_FILE))

    def text(self) -> str | None:
        try:
            return self._path.read_bytes().decode("utf-8", "replace")
        except OSError:
            return None

    def check(self, document: bytes) -> PolicyCheck:
        if len(document) > MAX_POLICY:
            return PolicyCheck(None, (f"{POLICY_FILE}: larger than {MAX_POLICY} bytes",))
        policy, problems = parse_policy(document)
        return PolicyCheck(None if problems else policy, tuple(problems))

    def write(self, document: bytes, now: datetime) -> PolicyWritten:
        checked = self.check(document)
        if checked.policy is None:
            raise PolicyRefused(checked.problems)
        try:
            current: bytes | None = self._path.read_bytes()
        except FileNotFoundError:
            current = None
        reference = reference_of(stamp_of(now))
        if current == document:
            return PolicyWritten(None, False, reference)
        replaced = self._history.keep(current, now) if current is not None else None
        write_atomically(self._path, document)
        if self._reload is not None:
            self._reload()
        return PolicyWritten(replaced, True, reference)

    def history(self) -> tuple[PastPolicy, ...]:
        return self._history.listing()

    def past(self, name: str) -> str | None:
        data = self._history.read(name)
        return data.decode("utf-8", "replace") if data is not None else None


_check: type[PolicyFile] = RegistryPolicyFile
