"""Dependency rules between the broker's packages, checked on the source with ``ast`` (nothing is imported).

- ``broker.core`` uses the standard library and ``broker.core`` only: no web framework, protocol
  library, database or HTTP client, and no other ``broker`` package.
- The adapter packages (``upstream``, ``downstream``, ``registry``, ``storage``) depend on the core, never
  on each other, and never on the composition layer (``web``, ``app``, ``config``, the CLI, ...).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BROKER = ROOT / "broker"

#: named explicitly so the rule reads as intended even if the standard-library check below changed
FORBIDDEN_IN_CORE = frozenset(
    {"flask", "werkzeug", "saml2", "authlib", "sqlalchemy", "lxml", "xmlsec", "requests", "joserfc"}
)
ADAPTERS = ("broker.upstream", "broker.downstream", "broker.registry", "broker.storage")
#: wiring, entry points and demos: adapters are plugged into these, never the other way round
COMPOSITION = (
    "broker.web", "broker.app", "broker.config", "broker.cli", "broker.cli_parties", "broker.cli_clients",
    "broker.instance",
    "broker.demo",
)



@dataclass(frozen=True)
class Import:
    module: str  # the importing module, dotted
    target: str  # the imported module, dotted and absolute
    line: int

    def __str__(self) -> str:
        return f"{self.module}:{self.line} imports {self.target}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve_relative(module: str, is_package: bool, level: int, name: str | None) -> str:
    package = module.split(".") if is_package else module.split(".")[:-1]
    base = package[: len(package) - (level - 1)] if level > 1 else package
    return ".".join([*base, name] if name else base)


def imports_of(module: str, source: str, *, is_package: bool = False) -> Iterator[Import]:
    """Every module ``source`` imports, including ``from pkg import submodule``, relative imports,
    imports under ``if TYPE_CHECKING:`` or inside functions, and ``importlib.import_module("...")``."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = (
                _resolve_relative(module, is_package, node.level, node.module) if node.level else node.module or ""
            )
            yield Import(module, base, node.lineno)
            # ``from broker import web`` imports the module broker.web
            for alias in node.names:
                if alias.name != "*":
                    yield Import(module, f"{base}.{alias.name}", node.lineno)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if called in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                yield Import(module, node.args[0].value, node.lineno)


def _within(target: str, package: str) -> bool:
    return target == package or target.startswith(package + ".")


def core_violations(found: Iterator[Import]) -> list[Import]:
    """Imports a core module may not make: anything but the standard library and ``broker.core``."""
    bad = []
    for imp in found:
        top = imp.target.split(".")[0]
        if _within(imp.target, "broker.core") or imp.target == "broker":
            continue  # ``from broker.core import x`` also yields the bare parent; ``broker`` alone is harmless
        if top in FORBIDDEN_IN_CORE or top == "broker" or top not in sys.stdlib_module_names:
            bad.append(imp)
    return bad


def adapter_violations(adapter: str, found: Iterator[Import]) -> list[Import]:
    """Imports of the other adapters or of the composition layer by a module of ``adapter``."""
    forbidden = [a for a in ADAPTERS if a != adapter] + list(COMPOSITION)
    return [
        imp
        for imp in found
        if any(_within(imp.target, f) for f in forbidden)
    ]


def package_imports(package: str) -> list[Import]:
    folder = ROOT.joinpath(*package.split("."))
    files = sorted(folder.rglob("*.py"))
    assert files, f"no Python files under {folder}: the check would pass vacuously"
    found: list[Import] = []
    for path in files:
        found.extend(imports_of(_module_name(path), path.read_text(), is_package=path.name == "__init__.py"))
    return found


# --- the rules, on the real code ------------------------------------------------------------------------


def test_core_imports_only_the_standard_library_and_itself() -> None:
    found = package_imports("broker.core")
    assert any(_within(i.target, "broker.core") for i in found), "the checker saw none of core's own imports"
    assert [str(v) for v in core_violations(iter(found))] == []


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_adapter_imports_neither_other_adapters_nor_composition(adapter: str) -> None:
    found = package_imports(adapter)
    assert any(_within(i.target, "broker.core") for i in found), f"{adapter} does not use the core at all?"
    assert [str(v) for v in adapter_violations(adapter, iter(found))] == []


@pytest.mark.parametrize("package", ["broker.core", *ADAPTERS])
def test_nothing_below_the_web_layer_imports_web_or_app(package: str) -> None:
    bad = [i for i in package_imports(package) if _within(i.target, "broker.web") or _within(i.target, "broker.app")]
    assert [str(v) for v in bad] == []


def test_downstream_does_not_import_registry() -> None:
    bad = [i for i in package_imports("broker.downstream") if _within(i.target, "broker.registry")]
    assert [str(v) for v in bad] == []


# --- the checker itself catches violations (so the rules above cannot pass vacuously) -------------------


@pytest.mark.parametrize("library", sorted(FORBIDDEN_IN_CORE))
@pytest.mark.parametrize("form", ["import {lib}", "import {lib}.sub as x", "from {lib} import thing",
                                  "from {lib}.sub import thing"])
def test_checker_flags_each_forbidden_library_in_core(library: str, form: str) -> None:
    source = "from __future__ import annotations\nimport json\n" + form.format(lib=library) + "\n"
    bad = core_violations(imports_of("broker.core.synthetic", source))
    assert bad
    assert {v.target.split(".")[0] for v in bad} == {library}


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("from broker.web import login", "broker.web"),
        ("from broker import web", "broker.web"),
        ("import broker.storage.accounts", "broker.storage.accounts"),
        ("from ..storage import accounts", "broker.storage"),
        ("if TYPE_CHECKING:\n    from broker.upstream.oidc import X", "broker.upstream.oidc"),
        ("def f():\n    import importlib\n    return importlib.import_module('broker.registry')", "broker.registry"),
        ("import yaml", "yaml"),
    ],
)
def test_checker_flags_non_core_imports_in_core(source: str, target: str) -> None:
    bad = core_violations(imports_of("broker.core.synthetic", source))
    assert target in {v.target for v in bad}


def test_checker_accepts_standard_library_and_core_imports() -> None:
    source = (
        "from __future__ import annotations\nimport hmac\nfrom datetime import UTC\n"
        "from broker.core import errors\nfrom broker.core.model import Account\nfrom . import claims\n"
    )
    found = list(imports_of("broker.core.synthetic", source))
    assert "broker.core.claims" in {i.target for i in found}  # the relative import was resolved
    assert core_violations(iter(found)) == []


@pytest.mark.parametrize(
    ("adapter", "source", "target"),
    [
        ("broker.upstream", "from broker.downstream.saml_responses import x", "broker.downstream.saml_responses"),
        ("broker.upstream", "from broker import config", "broker.config"),
        ("broker.upstream", "import broker.cli", "broker.cli"),
        ("broker.storage", "from broker.registry import FileRegistry", "broker.registry"),
        ("broker.storage", "from broker.web.services import services", "broker.web.services"),
        ("broker.registry", "from ..upstream import oidc", "broker.upstream"),
        ("broker.downstream", "from broker.app import create_app", "broker.app"),
    ],
)
def test_checker_flags_adapter_importing_another_adapter_or_composition(adapter: str, source: str, target: str) -> None:
    bad = adapter_violations(adapter, imports_of(f"{adapter}.synthetic", source))
    assert target in {v.target for v in bad}


def test_checker_allows_adapter_to_import_core_and_itself() -> None:
    source = "from broker.core import errors\nfrom broker.upstream import oidc_http\nfrom .oidc_settings import S\n"
    assert adapter_violations("broker.upstream", imports_of("broker.upstream.synthetic", source)) == []


