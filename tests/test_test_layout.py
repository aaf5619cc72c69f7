"""Layout rules of the test suite itself (issue 16).

Test modules share nothing with each other directly: helpers, constants and fixtures that more than one module
needs live in a support module named for what it holds (``tests/security/attack_support.py``,
``tests/flows/linking_support.py``, ...), or in a ``conftest.py``. Importing a ``test_*.py`` module runs its
module-level code again under another name and makes pytest collect its fixtures twice, so it is not allowed.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _is_test_module(dotted: str) -> bool:
    return dotted.rsplit(".", 1)[-1].startswith("test_")


def imported_test_modules(source: str) -> list[tuple[int, str]]:
    """(line, module) of every import of a ``test_*`` module in ``source``, at any depth (inside functions too)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if _is_test_module(alias.name)]
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            if node.module is not None and _is_test_module(node.module):
                found.append((node.lineno, module))
            else:  # ``from tests.flows import test_linking``, ``from . import test_consent``
                found += [(node.lineno, f"{module}.{alias.name}" if node.module else module + alias.name)
                          for alias in node.names if _is_test_module(alias.name)]
    return found


def test_no_test_module_imports_another() -> None:
    offences = [f"{path.relative_to(TESTS.parent)}:{line} imports {module}"
                for path in sorted(TESTS.rglob("*.py"))
                for line, module in imported_test_modules(path.read_text(encoding="utf-8"))]
    assert not offences, "move what is shared into a support module or a conftest.py:\n" + "\n".join(offences)


def test_the_check_sees_every_form_of_import() -> None:
    source = ("import tests.flows.test_linking\n"
              "from tests.flows.test_linking import link\n"
              "from tests.flows import test_linking\n"
              "from . import test_consent\n"
              "def f() -> None:\n    from tests.security.test_attack_accounts import world\n"
              "from tests.flows.linking_support import link\nimport tests.cli_support\n")
    assert imported_test_modules(source) == [
        (1, "tests.flows.test_linking"), (2, "tests.flows.test_linking"), (3, "tests.flows.test_linking"),
        (4, ".test_consent"), (6, "tests.security.test_attack_accounts")]
