"""The mutation run's own logic: stale and duplicate entries are refused before anything runs, pytest's exit
codes are classified, a baseline failure is an error, and a patch lands only in the copy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.mutation import run
from tests.mutation.defence import Defence
from tests.mutation.run import Outcome, Result


def _defence(name: str = "d", path: str = "pkg/mod.py", old: str = "return check()\n",
             new: str = "return True\n", tests: tuple[str, ...] = ("tests/test_mod.py",)) -> Defence:
    return Defence(name=name, path=path, old=old, new=new, tests=tests)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text("def guard():\n    return check()\n")
    return tmp_path


# -- classification ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("returncode", "outcome"),
    [
        (1, Outcome.KILLED),  # the named tests failed: the defence is protected
        (0, Outcome.SURVIVED),  # they passed without it
        (2, Outcome.ERROR),  # interrupted or a collection error (a patch that breaks the import)
        (3, Outcome.ERROR),  # internal error
        (4, Outcome.ERROR),  # usage error: a node id that does not exist
        (5, Outcome.ERROR),  # no tests collected
        (None, Outcome.ERROR),  # timed out
        (-9, Outcome.ERROR),  # killed by a signal
    ],
)
def test_exit_codes_are_classified(returncode: int | None, outcome: Outcome) -> None:
    assert run.classify(returncode) is outcome


# -- the list of defences ---------------------------------------------------------------------------------------


def test_a_sound_list_has_no_problem(repo: Path) -> None:
    assert run.check_defences([_defence("a"), _defence("b")], repo) == []


def test_old_text_that_moved_is_stale(repo: Path) -> None:
    problems = run.check_defences([_defence(old="return check_it()\n")], repo)
    assert len(problems) == 1 and "occurs 0 times" in problems[0] and "d:" in problems[0]


def test_old_text_found_twice_is_stale(repo: Path) -> None:
    (repo / "pkg" / "mod.py").write_text("def guard():\n    return check()\n\ndef other():\n    return check()\n")
    problems = run.check_defences([_defence()], repo)
    assert len(problems) == 1 and "occurs 2 times" in problems[0]


def test_duplicate_names_missing_files_no_tests_and_no_change_are_problems(repo: Path) -> None:
    problems = run.check_defences(
        [
            _defence("twice"),
            _defence("twice"),
            _defence("gone", path="pkg/nothing.py"),
            _defence("untested", tests=()),
            _defence("unchanged", new="return check()\n"),
        ],
        repo,
    )
    assert any("twice: the name is used by more than one defence" in p for p in problems)
    assert any("gone: pkg/nothing.py does not exist" in p for p in problems)
    assert any("untested: names no test" in p for p in problems)
    assert any("unchanged: new is the same as old" in p for p in problems)
    assert len(problems) == 4


def test_the_repositorys_defences_are_sound() -> None:
    """Every defences_*.py module loads, and each entry matches the source as it is now."""
    defences = run.load_defences()
    assert defences, "no defences found"
    assert run.check_defences(defences) == []


def test_main_refuses_a_stale_list_before_running_anything(monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    stale = _defence("stale", path="broker/__init__.py", old="this text is in no file\n")
    monkeypatch.setattr(run, "load_defences", lambda: [stale])
    monkeypatch.setattr(run, "Workspace", lambda files: pytest.fail("a stale list must not be run"))
    assert run.main([]) == 2
    assert "stale: the defence's old text occurs 0 times" in capsys.readouterr().err


def test_main_refuses_an_unknown_name(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(run, "load_defences", lambda: [_defence("known")])
    monkeypatch.setattr(run, "check_defences", lambda defences: [])
    assert run.main(["--only", "no-such-defence", "--list"]) == 2
    assert "no-such-defence" in capsys.readouterr().err


# -- copies, patches, environment ------------------------------------------------------------------------------


def test_the_patch_lands_in_the_copy_only(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    copy = tmp_path_factory.mktemp("copy")
    run.copy_repository(copy, ["pkg/mod.py"], repo)
    run.apply(_defence(), copy)
    assert (copy / "pkg" / "mod.py").read_text() == "def guard():\n    return True\n"
    assert (repo / "pkg" / "mod.py").read_text() == "def guard():\n    return check()\n"


def test_a_patch_that_breaks_the_syntax_is_an_error_not_a_kill(tmp_path: Path) -> None:
    class Workspace:
        def fresh(self, label: str) -> Path:
            copy = tmp_path / label
            (copy / "pkg").mkdir(parents=True)
            (copy / "pkg" / "mod.py").write_text("def guard():\n    return check()\n")
            return copy

    result = run.mutate(Workspace(), _defence(new="return (\n"))  # type: ignore[arg-type]
    assert result.outcome is Outcome.ERROR and "the patch is broken" in result.detail


def test_the_repository_itself_is_never_patched() -> None:
    with pytest.raises(RuntimeError, match="itself"):
        run.apply(_defence(path="broker/__init__.py", old="x", new="y"), run.ROOT)


def test_the_copy_holds_tracked_and_untracked_files_but_not_the_venv_or_git() -> None:
    files = run.repository_files()
    assert "broker/__init__.py" in files and "tests/mutation/run.py" in files and "pyproject.toml" in files
    assert not any(f.startswith((".venv/", ".git/")) for f in files)


def test_the_environment_puts_the_copy_first_and_keeps_the_test_settings(monkeypatch: pytest.MonkeyPatch,
                                                                          tmp_path: Path) -> None:
    monkeypatch.setenv("BROKER_TEST_DATABASE_URL", "postgresql+psycopg://db/test")
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    env = run.environment(tmp_path)
    assert env["PYTHONPATH"].split(os.pathsep) == [str(tmp_path), "/elsewhere"]
    assert env["BROKER_TEST_DATABASE_URL"] == "postgresql+psycopg://db/test"


def test_import_broker_in_a_copy_finds_the_copys_package(tmp_path: Path) -> None:
    """The editable install points at the repository; with the run's environment the copy wins."""
    (tmp_path / "broker").mkdir()
    (tmp_path / "broker" / "__init__.py").write_text("")
    found = subprocess.run([sys.executable, "-c", "import broker; print(broker.__file__)"], cwd=tmp_path,
                           env=run.environment(tmp_path), capture_output=True, text=True, check=True).stdout
    assert Path(found.strip()).resolve() == (tmp_path / "broker" / "__init__.py").resolve()


# -- baseline and the run --------------------------------------------------------------------------------------


def test_failed_node_ids_are_read_from_the_summary() -> None:
    output = "\n".join([
        "F.",
        "=========================== short test summary info ============================",
        "FAILED tests/a.py::test_x[sqlite-p] - AssertionError: no",
        "ERROR tests/b.py::test_y - fixture 'z' not found",
        "ERROR    werkzeug:_internal.py:97 127.0.0.1 - - code 414",  # a captured log line, not a test
        "1 failed, 1 passed, 1 error in 0.50s",
    ])
    assert run.failed_node_ids(output) == ["tests/a.py::test_x[sqlite-p]", "tests/b.py::test_y"]


@pytest.mark.parametrize(
    ("selector", "node_id", "selected"),
    [
        ("tests/a.py::test_x", "tests/a.py::test_x[sqlite]", True),
        ("tests/a.py::test_x", "tests/a.py::test_x", True),
        ("tests/a.py", "tests/a.py::test_x", True),
        ("tests/a.py::test_x", "tests/a.py::test_xy", False),
        ("tests/a.py::test_x[sqlite]", "tests/a.py::test_x[postgresql]", False),
    ],
)
def test_a_selector_names_its_tests(selector: str, node_id: str, selected: bool) -> None:
    assert run.names_test(selector, node_id) is selected


class _FakeWorkspace:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp

    def fresh(self, label: str) -> Path:
        return self.tmp / label


def test_a_defence_whose_tests_fail_without_the_patch_is_an_error(monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    broken = _defence("broken", tests=("tests/a.py::test_x",))
    fine = _defence("fine", tests=("tests/b.py::test_y",))
    monkeypatch.setattr(run, "run_pytest", lambda copy, tests, stop_at_first=True, workers=1: (
        1, "FAILED tests/a.py::test_x[sqlite] - boom\n1 failed, 1 passed"))
    mutated: list[str] = []

    def mutate(workspace: object, d: Defence) -> Result:
        mutated.append(d.name)
        return Result(d, Outcome.KILLED, 0.1)

    results = run.run_all([broken, fine], 2, _FakeWorkspace(tmp_path), mutate)  # type: ignore[arg-type]
    assert [(r.defence.name, r.outcome) for r in results] == [("broken", Outcome.ERROR), ("fine", Outcome.KILLED)]
    assert "fails without the patch: tests/a.py::test_x[sqlite]" in results[0].detail
    assert mutated == ["fine"]  # the broken one proves nothing either way and is not mutated


def test_a_baseline_that_cannot_even_run_makes_every_defence_an_error(monkeypatch: pytest.MonkeyPatch,
                                                                       tmp_path: Path) -> None:
    monkeypatch.setattr(run, "run_pytest", lambda copy, tests, stop_at_first=True, workers=1: (4, "ERROR: not found"))
    results = run.run_all([_defence("a"), _defence("b")], 1, _FakeWorkspace(tmp_path),  # type: ignore[arg-type]
                          lambda w, d: pytest.fail("must not mutate"))
    assert [r.outcome for r in results] == [Outcome.ERROR, Outcome.ERROR]


def test_the_exit_status_fails_on_a_survivor(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                             tmp_path: Path) -> None:
    killed, survived = _defence("killed"), _defence("survived")
    monkeypatch.setattr(run, "load_defences", lambda: [killed, survived])
    monkeypatch.setattr(run, "check_defences", lambda defences: [])
    monkeypatch.setattr(run, "repository_files", lambda: [])
    monkeypatch.setattr(run, "check_import_path", lambda workspace: None)
    monkeypatch.setattr(run, "baseline", lambda workspace, defences, jobs=1: {})
    outcomes = {"killed": (1, ""), "survived": (0, "2 passed")}

    def fake_mutate(workspace: object, d: Defence) -> Result:
        code, out = outcomes[d.name]
        return Result(d, run.classify(code), 0.0, out)

    monkeypatch.setattr(run, "mutate", fake_mutate)
    assert run.main(["--jobs", "1"]) == 1
    out = capsys.readouterr().out
    assert "2 defences: 1 killed, 1 survived, 0 errors" in out


# -- one real mutation, end to end (a few seconds) ---------------------------------------------------------------


def test_end_to_end_a_removed_check_is_killed_and_a_wrong_node_id_is_an_error(tmp_path: Path) -> None:
    """A real copy of the repository and a real pytest in it: the canonical e-mail comparison replaced by the
    identity function is caught by its unit test; a node id that does not exist is an error, not a kill."""
    workspace = run.Workspace(run.repository_files())
    try:
        run.check_import_path(workspace)
        kill = Defence(
            name="e2e", path="broker/core/email_address.py", old="def canonical_email(",
            new="def canonical_email(address: str) -> str | None:\n    return address\n\n\ndef _was_canonical_email(",
            tests=("tests/security/test_attack_lookalike_email.py::test_the_canonical_form",),
        )
        assert run.mutate(workspace, kill).outcome is Outcome.KILLED
        missing = Defence(name="e2e-missing", path=kill.path, old=kill.old, new=kill.new,
                          tests=("tests/security/test_attack_lookalike_email.py::test_no_such_test",))
        assert run.mutate(workspace, missing).outcome is Outcome.ERROR
    finally:
        workspace.close()
