"""The broker's signing keys as the operator console shows and rotates them (issue 19; README "The ``broker``
command", ``broker keys rotate``): which key signs, which are staged or still published after a switch, and the
next rotation step. The adapter is ``broker.keys.rotation_admin``, over the very steps the CLI runs.

Instances read ``certs/`` at start-up: after every step each instance (every worker process) must be restarted
before it publishes or signs with what the step changed (``RESTART_NEEDED``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

RESTART_NEEDED = ("Restart every instance (all worker processes) now: they read the keys at start-up, so they "
                  "publish and sign with the change only after a restart.")


class Step(StrEnum):
    STAGE = "stage"
    SWITCH = "switch"
    RETIRE = "retire"


class KeyState(StrEnum):
    ACTIVE = "active"  # signs, and is published
    NEXT = "next"  # staged: published, signs nothing yet
    PREVIOUS = "previous"  # switched away from: published until retired, signs nothing


@dataclass(frozen=True)
class KeyReport:
    kid: str
    alg: str
    state: KeyState
    created: datetime | None
    #: when it entered its state (the ``SINCE`` of ``next/`` or ``previous/``); None for the active keys
    since: datetime | None
    #: a previous key: published at least until then (retire after); otherwise None (published while it exists)
    published_until: datetime | None


@dataclass(frozen=True)
class KeysReport:
    phase: str  # "steady", "staged" or "grace", as ``broker keys rotate status``
    keys: tuple[KeyReport, ...]
    next_step: Step
    #: when the next step may run without skipping its waiting period (None: now)
    ready_at: datetime | None

    def of(self, state: KeyState) -> tuple[KeyReport, ...]:
        return tuple(k for k in self.keys if k.state is state)


@dataclass(frozen=True)
class Rotated:
    step: Step
    said: str
    before: tuple[str, ...]  # the active key ids before the step
    after: tuple[str, ...]  # and after it (on disk; instances take them up when restarted)


class RotationRefused(Exception):
    """A step that cannot run now (out of order, or before its waiting period); the message says why."""


class SigningKeys(Protocol):
    def report(self, now: datetime) -> KeysReport: ...

    def rotate(self, step: Step, now: datetime, *, force: bool = False) -> Rotated:
        """Run ``step`` as ``broker keys rotate`` does; ``RotationRefused``."""
        ...
