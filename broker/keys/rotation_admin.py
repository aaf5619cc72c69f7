"""The key folder as the console's ``SigningKeys`` port (issue 19; ``broker.core.signing_keys``): what
``broker keys rotate status`` knows, per key (its ``kid``, algorithm, state, when it was made and how long it stays
published), and the steps ``broker keys rotate`` runs, through the very functions the CLI calls
(``broker.keys.rotation``), never a second rotation.

The key ids are read from the files on disk, so after a step this reports the new state even before the
instances restart (they read ``certs/`` at start-up; the console says so).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from broker.core.signing_keys import KeyReport, KeysReport, KeyState, Rotated, RotationRefused, SigningKeys, Step
from broker.keys.jwt import jwt_key
from broker.keys.keyring import ES256_KEY, NEXT_DIR, PREVIOUS_DIR, SIGNING_KEY
from broker.keys.rotation import (
    DEFAULT_GRACE,
    DEFAULT_MIN_PUBLISHED,
    RotationError,
    RotationStatus,
    retire,
    stage,
    status,
    switch,
)

_FILES = ((SIGNING_KEY, "RS256"), (ES256_KEY, "ES256"))


def _created(path: Path) -> datetime | None:
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except OSError:
        return None


class FolderKeys:
    """The keys of ``certs_dir``; new ones made with ``common_name`` (the CLI's: ``broker <base_url>``)."""

    def __init__(self, certs_dir: Path, common_name: str, *, bits: int = 3072,
                 min_published: timedelta = DEFAULT_MIN_PUBLISHED, grace: timedelta = DEFAULT_GRACE) -> None:
        self._certs, self._name, self._bits = certs_dir, common_name, bits
        self._min_published, self._grace = min_published, grace

    def _keys(self, current: RotationStatus) -> tuple[KeyReport, ...]:
        folders = ((self._certs, KeyState.ACTIVE, None, None),
                   (self._certs / NEXT_DIR, KeyState.NEXT, current.next_since, None),
                   (self._certs / PREVIOUS_DIR, KeyState.PREVIOUS, current.previous_since,
                    current.previous_since + self._grace if current.previous_since is not None else None))
        found = []
        for folder, state, since, until in folders:
            for name, alg in _FILES:
                path = folder / name
                try:
                    kid = jwt_key(path.read_bytes(), alg, active=state is KeyState.ACTIVE).kid
                except (OSError, ValueError):
                    continue  # no such key (no staged keys, nothing to retire)
                found.append(KeyReport(kid, alg, state, _created(path), since, until))
        return tuple(found)

    def report(self, now: datetime) -> KeysReport:
        current = status(self._certs)
        step, ready = Step.STAGE, None
        if current.previous_since is not None:
            step, ready = Step.RETIRE, current.previous_since + self._grace
        elif current.next_since is not None:
            step, ready = Step.SWITCH, current.next_since + self._min_published
        waiting = ready if ready is not None and ready > now else None
        return KeysReport(current.phase, self._keys(current), step, waiting)

    def _active(self) -> tuple[str, ...]:
        return tuple(k.kid for k in self._keys(status(self._certs)) if k.state is KeyState.ACTIVE)

    def rotate(self, step: Step, now: datetime, *, force: bool = False) -> Rotated:
        before = self._active()
        try:
            if step is Step.STAGE:
                folder = stage(self._certs, self._name, now, bits=self._bits)
                said = (f"staged new keys in {folder.name}/: published after the restart, signing nothing yet; switch "
                        f"after {(now + self._min_published).isoformat(timespec='minutes')}")
            elif step is Step.SWITCH:
                switch(self._certs, now, min_published=self._min_published, force=force)
                said = "switched: the staged keys sign, the previous ones stay published until retired"
            else:
                said = ("retired the previous keys (no longer published)" if retire(self._certs, now, grace=self._grace,
                                                                                     force=force)
                        else "nothing to retire")
        except RotationError as exc:
            raise RotationRefused(str(exc)) from exc
        return Rotated(step, said, before, self._active())


_check: type[SigningKeys] = FolderKeys
