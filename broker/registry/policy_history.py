"""The past versions of the release policy (issue 19; README "Operator console"): each text an operator's change
replaced, kept as ``<instance>/var/policy-history/<UTC time>-<version>.toml``, the newest ``KEEP`` of them.

The name is the moment it was replaced (``20261207T101500123456Z``, microseconds: two changes never share one) and
the version its text named, made safe for a file name. The same moment, as ``policy-<time>``, is the reference of
the change's audit record (``broker.journeys.policy_edit``), so who replaced a version is read from the audit trail.
A name is only ever read when it has this exact shape (no path of the caller's reaches the file system).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from broker.core.policy_report import PastPolicy
from broker.registry.policy import parse_policy
from broker.registry.registrations import write_atomically

#: how many past versions are kept
KEEP = 50
FOLDER = Path("var") / "policy-history"
_STAMP = "%Y%m%dT%H%M%S%fZ"
_NAME = re.compile(r"^(\d{8}T\d{12}Z)-([A-Za-z0-9._-]{0,40})\.toml$")


def reference_of(stamp: str) -> str:
    """The audit reference of the change made at ``stamp`` (at most 64 characters, as the audit store keeps)."""
    return f"policy-{stamp}"


def stamp_of(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(_STAMP)


class PolicyHistory:
    def __init__(self, folder: Path, keep: int = KEEP) -> None:
        self.folder, self._keep = folder, keep

    def keep(self, data: bytes, now: datetime) -> PastPolicy:
        """Keep ``data``, the text replaced at ``now``; the oldest beyond ``KEEP`` are deleted."""
        version = _version(data)
        stamp = stamp_of(now)
        name = f"{stamp}-{re.sub(r'[^A-Za-z0-9._-]', '_', version)[:40]}.toml"
        write_atomically(self.folder / name, data)
        for old in self._names()[self._keep:]:
            (self.folder / old).unlink(missing_ok=True)
        return PastPolicy(name, version, now.astimezone(UTC), reference_of(stamp))

    def listing(self) -> tuple[PastPolicy, ...]:
        """The past versions, newest first."""
        found = []
        for name in self._names():
            data = self.read(name)
            if data is not None:
                found.append(_past(name, data))
        return tuple(found)

    def read(self, name: str) -> bytes | None:
        if not _NAME.match(name):
            return None
        try:
            return (self.folder / name).read_bytes()
        except OSError:
            return None

    def _names(self) -> list[str]:
        try:
            names = [p.name for p in self.folder.iterdir() if _NAME.match(p.name) and p.is_file()]
        except OSError:
            return []
        return sorted(names, reverse=True)


def _version(data: bytes) -> str:
    policy, problems = parse_policy(data)
    return "" if problems else policy.version


def _past(name: str, data: bytes) -> PastPolicy:
    match = _NAME.match(name)
    assert match is not None  # only names of that shape are listed
    stamp = match.group(1)
    return PastPolicy(name, _version(data), datetime.strptime(stamp, _STAMP).replace(tzinfo=UTC),
                      reference_of(stamp))
