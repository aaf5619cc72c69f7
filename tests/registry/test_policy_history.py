"""``broker.registry.policy_file`` and ``policy_history``: a policy text checked by the registry's own parser,
written in one step with the replaced text kept (the newest ``KEEP``), and past versions read only by name."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from broker.core.policy_report import PolicyRefused
from broker.registry.policy import POLICY_FILE, load_policy
from broker.registry.policy_file import RegistryPolicyFile
from broker.registry.policy_history import PolicyHistory, stamp_of

NOW = datetime.now(UTC).replace(microsecond=0)


def _file(tmp_path: Path, reloads: list[int] | None = None) -> RegistryPolicyFile:
    (tmp_path / "metadata").mkdir(exist_ok=True)
    return RegistryPolicyFile(tmp_path / "metadata", list, history_dir=tmp_path / "history",
                              reload=lambda: (reloads if reloads is not None else []).append(1))


def test_check_agrees_with_load_policy(tmp_path: Path) -> None:
    policy = _file(tmp_path)
    for text in ('version = "2"\n', 'version = "2"\nextra = 1\n', 'version = \n', '[apps.x]\nallow = ["shoe"]\n'):
        (tmp_path / "metadata" / POLICY_FILE).write_text(text)
        loaded, problems = load_policy(tmp_path / "metadata")
        checked = policy.check(text.encode())
        assert checked.problems == tuple(problems) and (checked.policy == loaded or checked.policy is None)


def test_write_keeps_the_replaced_text_and_reloads(tmp_path: Path) -> None:
    reloads: list[int] = []
    policy = _file(tmp_path, reloads)

    first = policy.write(b'version = "1"\n', NOW)
    second = policy.write(b'version = "2/x"\n', NOW + timedelta(seconds=1))
    same = policy.write(b'version = "2/x"\n', NOW + timedelta(seconds=2))

    assert first.replaced is None and first.changed and not same.changed and len(reloads) == 2
    stamp = stamp_of(NOW + timedelta(seconds=1))
    assert second.replaced is not None and second.replaced.name == f"{stamp}-1.toml"
    assert second.reference == second.replaced.reference == f"policy-{stamp}" and stamp.endswith("000000Z")
    assert [(p.version, p.replaced_at) for p in policy.history()] == [("1", NOW + timedelta(seconds=1))]
    assert policy.past(second.replaced.name) == 'version = "1"\n' and policy.text() == 'version = "2/x"\n'
    with pytest.raises(PolicyRefused):
        policy.write(b"version = 3\n", NOW)
    assert policy.text() == 'version = "2/x"\n'


def test_only_the_newest_are_kept_and_only_names_of_that_shape_are_read(tmp_path: Path) -> None:
    history = PolicyHistory(tmp_path / "history", keep=3)
    names = [history.keep(f'version = "{i}"\n'.encode(), NOW + timedelta(minutes=i)).name for i in range(5)]
    (tmp_path / "secret.toml").write_text("no")

    assert [p.name for p in history.listing()] == names[:1:-1]
    assert history.read(names[0]) is None and history.read("../secret.toml") is None
