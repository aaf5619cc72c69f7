"""Remove each listed security defence in turn and require that its named tests fail.

    python -m tests.mutation.run [--only NAME ...] [--jobs N] [--list]

Every module ``tests/mutation/defences_*.py`` defines ``DEFENCES: tuple[Defence, ...]``. For each defence the run
copies the repository (tracked files and untracked ones git does not ignore; never ``.venv`` or ``.git``) into a
temporary directory, replaces the defence's ``old`` text (which must occur exactly once) with ``new`` there, and
runs its tests with ``pytest -x`` in the copy, ``PYTHONPATH`` set to it so that ``import broker`` finds the patched
package and not the editable install. Outcomes:

* KILLED: pytest exited 1, a named test failed: the test protects what it claims;
* SURVIVED: pytest exited 0, every named test passed without its defence: the test is weak;
* ERROR: any other exit (2 usage or collection error, 4 unknown node id, 5 no tests), a timeout, or the named
  tests already fail on the unpatched copy (the baseline, run once over all named tests): proves nothing.

The run exits non-zero on any SURVIVED or ERROR, and before running anything if a defence is stale (its ``old``
text is missing or not unique) or two defences share a name.
"""

from __future__ import annotations

import argparse
import enum
import importlib
import os
import pkgutil
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tests.mutation.defence import Defence

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "tests.mutation"
PER_TEST_TIMEOUT = 120  # seconds, pytest-timeout: a test that hangs without its defence fails instead
RUN_TIMEOUT = 900  # seconds for one pytest process, a last resort
OUTPUT_TAIL = 60  # lines of pytest output shown for a SURVIVED or ERROR
#: a line of pytest's ``-rfE`` short summary: ``FAILED tests/x.py::test_y[p] - why`` (not a captured log line)
SUMMARY_LINE = re.compile(r"(?:FAILED|ERROR) (\S+\.py(?:::\S+)?)")


class Outcome(enum.Enum):
    KILLED = "KILLED"
    SURVIVED = "SURVIVED"
    ERROR = "ERROR"


def classify(returncode: int | None) -> Outcome:
    """pytest's exit code with the defence removed: 1 (tests failed) is the only good one."""
    if returncode == 1:
        return Outcome.KILLED
    if returncode == 0:
        return Outcome.SURVIVED
    return Outcome.ERROR


class StaleDefence(Exception):
    """The list of defences does not match the source any more (or names one twice): fix the list."""


@dataclass(frozen=True)
class Result:
    defence: Defence
    outcome: Outcome
    seconds: float
    detail: str = ""  # the tail of pytest's output, or why the run is an error


def load_defences(modules: Iterable[str] | None = None) -> list[Defence]:
    """Every ``DEFENCES`` of ``tests/mutation/defences_*.py`` (or of the given modules), module by module."""
    if modules is None:
        here = Path(__file__).parent
        modules = sorted(
            f"{PACKAGE}.{info.name}" for info in pkgutil.iter_modules([str(here)]) if info.name.startswith("defences_")
        )
    found: list[Defence] = []
    for name in modules:
        module = importlib.import_module(name)
        defences = getattr(module, "DEFENCES", None)
        if not isinstance(defences, tuple) or not all(isinstance(d, Defence) for d in defences):
            raise StaleDefence(f"{name}: DEFENCES must be a tuple of Defence")
        found.extend(defences)
    return found


def check_defences(defences: Sequence[Defence], root: Path = ROOT) -> list[str]:
    """Every problem with the list: duplicate names, no tests, a missing file, ``old`` not exactly once, no change."""
    problems: list[str] = []
    seen: set[str] = set()
    for d in defences:
        if d.name in seen:
            problems.append(f"{d.name}: the name is used by more than one defence")
        seen.add(d.name)
        if not d.tests:
            problems.append(f"{d.name}: names no test")
        if d.old == d.new:
            problems.append(f"{d.name}: new is the same as old, the patch removes nothing")
        source = root / d.path
        if not source.is_file():
            problems.append(f"{d.name}: {d.path} does not exist")
            continue
        count = source.read_text(encoding="utf-8").count(d.old)
        if count != 1:
            problems.append(
                f"{d.name}: the defence's old text occurs {count} times in {d.path}, not once "
                "(the code moved or changed: update the entry)"
            )
    return problems


def repository_files(root: Path = ROOT) -> list[str]:
    """Tracked files and untracked files git does not ignore, relative to ``root`` (never .git or .venv)."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        check=True,
        capture_output=True,
    ).stdout.decode("utf-8", "surrogateescape")
    files = []
    for rel in sorted(set(filter(None, out.split("\0")))):
        top = rel.split("/", 1)[0]
        if top in (".git", ".venv") or not (root / rel).is_file():  # a tracked file deleted in the work tree
            continue
        files.append(rel)
    return files


def copy_repository(dest: Path, files: Sequence[str], root: Path = ROOT) -> None:
    for rel in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, target)


def apply(defence: Defence, copy: Path) -> None:
    """Remove the defence in the copy (never in the repository itself)."""
    if copy.resolve() == ROOT:
        raise RuntimeError("refusing to patch the repository itself")
    source = copy / defence.path
    text = source.read_text(encoding="utf-8")
    if text.count(defence.old) != 1:
        raise StaleDefence(f"{defence.name}: old text is not exactly once in the copy of {defence.path}")
    patched = text.replace(defence.old, defence.new)
    if source.suffix == ".py":
        compile(patched, str(source), "exec")  # a SyntaxError is a broken patch, not a failing test
    source.write_text(patched, encoding="utf-8")


def environment(copy: Path) -> dict[str, str]:
    """The caller's environment (BROKER_TEST_* included), with the copy first on the import path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(copy), *filter(None, [env.get("PYTHONPATH")])])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["COLUMNS"] = "200"  # pytest's summary lines keep more of the failure's first line
    return env


def pytest_command(tests: Sequence[str], *, stop_at_first: bool = True, workers: int = 1) -> list[str]:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--timeout", str(PER_TEST_TIMEOUT)]
    command += ["-rfE"]
    if stop_at_first:
        command.append("-x")
    if workers > 1:
        command += ["-n", str(workers)]
    return [*command, *tests]


def run_pytest(copy: Path, tests: Sequence[str], *, stop_at_first: bool = True,
               workers: int = 1) -> tuple[int | None, str]:
    try:
        done = subprocess.run(
            pytest_command(tests, stop_at_first=stop_at_first, workers=workers),
            cwd=copy,
            env=environment(copy),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout or ""
        return None, out + f"\n(pytest ran longer than {RUN_TIMEOUT} s)"
    return done.returncode, done.stdout + done.stderr


def tail(text: str, lines: int = OUTPUT_TAIL) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


class Workspace:
    """Throwaway copies of the repository under one temporary directory."""

    def __init__(self, files: Sequence[str]) -> None:
        self.files = files
        self.base = Path(tempfile.mkdtemp(prefix="broker-mutation-"))

    def fresh(self, label: str) -> Path:
        copy = Path(tempfile.mkdtemp(prefix=re.sub(r"[^\w-]", "_", label) + "-", dir=self.base))
        copy_repository(copy, self.files)
        return copy

    def close(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)


def check_import_path(workspace: Workspace) -> None:
    """The sanity check: in a copy, with the run's environment, ``import broker`` is the copy's package."""
    copy = workspace.fresh("import-check")
    found = subprocess.run(
        [sys.executable, "-c", "import broker; print(broker.__file__)"],
        cwd=copy,
        env=environment(copy),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not Path(found).resolve().is_relative_to(copy.resolve()):
        raise RuntimeError(f"import broker in the copy gives {found}, not the copy: a mutation would test nothing")
    shutil.rmtree(copy, ignore_errors=True)


def failed_node_ids(output: str) -> list[str]:
    """The node ids of pytest's ``-rfE`` summary lines (``FAILED id - why``, ``ERROR id - why``)."""
    ids = []
    for line in output.splitlines():
        m = SUMMARY_LINE.match(line)
        if m:
            ids.append(m.group(1))
    return ids


def names_test(selector: str, node_id: str) -> bool:
    """Whether a pytest selector (a file, a test, a parametrized case) selects ``node_id``."""
    return node_id == selector or node_id.startswith((selector + "::", selector + "["))


def baseline(workspace: Workspace, defences: Sequence[Defence], jobs: int = 1) -> dict[str, str]:
    """Run every named test once without any patch (on ``jobs`` xdist workers); the defences whose tests fail
    then, with why."""
    tests = list(dict.fromkeys(t for d in defences for t in d.tests))
    copy = workspace.fresh("baseline")
    returncode, output = run_pytest(copy, tests, stop_at_first=False, workers=jobs)
    shutil.rmtree(copy, ignore_errors=True)
    if returncode == 0:
        return {}
    failed = failed_node_ids(output)
    broken: dict[str, str] = {}
    for d in defences:
        bad = [n for n in failed if any(names_test(t, n) for t in d.tests)]
        if bad:
            broken[d.name] = "fails without the patch: " + ", ".join(bad)
        elif returncode != 1 or not failed:
            broken[d.name] = f"baseline pytest exited {returncode}\n{tail(output)}"
    return broken


def mutate(workspace: Workspace, defence: Defence) -> Result:
    started = time.monotonic()
    copy = workspace.fresh(defence.name)
    try:
        try:
            apply(defence, copy)
        except (SyntaxError, StaleDefence) as exc:
            return Result(defence, Outcome.ERROR, time.monotonic() - started, f"the patch is broken: {exc}")
        returncode, output = run_pytest(copy, defence.tests)
    finally:
        shutil.rmtree(copy, ignore_errors=True)
    outcome = classify(returncode)
    if outcome is Outcome.KILLED:  # why it failed: pytest's summary lines (FAILED id - first line of the error)
        detail = "\n".join(line for line in output.splitlines() if SUMMARY_LINE.match(line))
    else:
        detail = f"pytest exited {returncode}\n{tail(output)}"
    return Result(defence, outcome, time.monotonic() - started, detail)


def run_all(
    defences: Sequence[Defence],
    jobs: int,
    workspace: Workspace,
    mutate_one: Callable[[Workspace, Defence], Result] | None = None,
    report: Callable[[Result], None] = lambda r: None,
) -> list[Result]:
    mutate_one = mutate_one or mutate
    started = time.monotonic()
    broken = baseline(workspace, defences, jobs)
    print(f"baseline: the tests of {len(defences)} defences, unpatched, {time.monotonic() - started:.0f} s", flush=True)
    results: list[Result] = [Result(d, Outcome.ERROR, 0.0, broken[d.name]) for d in defences if d.name in broken]
    for r in results:
        report(r)
    todo = [d for d in defences if d.name not in broken]

    def one(d: Defence) -> Result:
        assert mutate_one is not None
        r = mutate_one(workspace, d)
        report(r)
        return r

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results.extend(pool.map(one, todo))
    order = {d.name: i for i, d in enumerate(defences)}
    return sorted(results, key=lambda r: order[r.defence.name])


def print_table(results: Sequence[Result], seconds: float) -> None:
    width = max([len(r.defence.name) for r in results] + [7])
    print()
    print(f"{'defence':<{width}}  {'outcome':<8}  seconds")
    for r in results:
        print(f"{r.defence.name:<{width}}  {r.outcome.value:<8}  {r.seconds:7.1f}")
    counts = {o: sum(r.outcome is o for r in results) for o in Outcome}
    print(
        f"\n{len(results)} defences: {counts[Outcome.KILLED]} killed, {counts[Outcome.SURVIVED]} survived, "
        f"{counts[Outcome.ERROR]} errors, {seconds:.0f} s"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mutation.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", action="extend", default=[], metavar="NAME", help="run these defences")
    parser.add_argument("--jobs", type=int, default=2, help="defences checked at once (default 2)")
    parser.add_argument("--list", action="store_true", help="list the defences and their tests, run nothing")
    args = parser.parse_args(argv)

    defences = load_defences()
    problems = check_defences(defences)
    if problems:
        print("The list of defences is stale:", *problems, sep="\n  ", file=sys.stderr)
        return 2
    if args.only:
        unknown = sorted(set(args.only) - {d.name for d in defences})
        if unknown:
            print("No such defence: " + ", ".join(unknown), file=sys.stderr)
            return 2
        defences = [d for d in defences if d.name in args.only]
    if args.list:
        for d in defences:
            print(f"{d.name}  ({d.path})" + (f": {d.why}" if d.why else ""))
            for t in d.tests:
                print(f"    {t}")
        return 0

    started = time.monotonic()
    workspace = Workspace(repository_files())

    def report(r: Result) -> None:
        print(f"{r.outcome.value:<8} {r.defence.name} ({r.seconds:.1f} s)", flush=True)
        if r.outcome is not Outcome.KILLED:
            print(f"  {r.defence.path}: tests {' '.join(r.defence.tests)}\n" + r.detail, flush=True)
        elif r.detail:
            print("  " + r.detail.replace("\n", "\n  ")[:1000], flush=True)

    try:
        check_import_path(workspace)
        results = run_all(defences, args.jobs, workspace, report=report)
    finally:
        workspace.close()
    print_table(results, time.monotonic() - started)
    return 0 if all(r.outcome is Outcome.KILLED for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
