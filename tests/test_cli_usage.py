"""How the ``broker`` command is used by a person: ``--config`` on either side of the subcommand, the command
``broker init`` prints runs as printed, and every option explains itself in ``--help``."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.cli.main import build_parser, main
from tests.cli_support import clean_environment  # noqa: F401 - an autouse fixture


def test_config_is_accepted_before_and_after_the_subcommand(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", "instance"]) == 0
    capsys.readouterr()

    assert main(["--config", "instance/broker.toml", "check", "--json"]) == 0
    before = json.loads(capsys.readouterr().out)
    assert main(["check", "--json", "--config", "instance/broker.toml"]) == 0
    after = json.loads(capsys.readouterr().out)
    assert main(["sp", "list", "--config", "instance/broker.toml", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)

    assert before == after and before["problems"] == [] and listed == []


def test_a_config_after_the_subcommand_wins_over_one_before(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", "instance"]) == 0

    assert main(["--config", "missing.toml", "check", "--config", "instance/broker.toml"]) == 0
    assert main(["--config", "instance/broker.toml", "check", "--config", "missing.toml"]) == 1
    assert "missing.toml does not exist" in capsys.readouterr().err


def test_init_prints_a_command_that_runs_as_printed(tmp_path: Path) -> None:
    """What ``broker init`` tells a person to type works from where they typed ``broker init``, whether or not
    the virtual environment's ``bin`` is on PATH."""
    script = Path(sys.executable).parent / "broker"
    assert script.exists(), "the broker console script is not installed beside this interpreter"
    path_without_venv = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                                        if Path(p).resolve() != script.parent.resolve())
    env = {**os.environ, "PATH": path_without_venv}
    created = subprocess.run([str(script), "init", "city"], cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=120, check=True)
    printed = created.stdout.strip().splitlines()[-1]
    assert printed.startswith("start it with: ") and printed.endswith(" run")
    command = shlex.split(printed.removeprefix("start it with: "))

    # the printed command, with `check` in place of `run` (which would serve until stopped)
    checked = subprocess.run([*command[:-1], "check", "--json"], cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=120, check=False)

    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout)["problems"] == []


def _options(parser: argparse.ArgumentParser, path: str) -> Iterator[tuple[str, argparse.Action]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _options(child, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction):
            yield path, action


def test_every_option_has_help_text() -> None:
    missing = [f"{path}: {'/'.join(action.option_strings) or action.dest}"
               for path, action in _options(build_parser(), "broker") if not action.help]

    assert missing == []
