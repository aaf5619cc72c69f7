"""Dependency rules between the broker's packages, checked on the source with ``ast`` (nothing is imported).

Every top-level module or package of ``broker`` is in exactly one category:

- **core** (``broker.core``): the standard library and ``broker.core`` only: no web framework, protocol
  library, database or HTTP client, and no other ``broker`` package.
- **journeys** (``broker.journeys``, planned by issue 16, checked as soon as it exists): the login, link,
  consent and logout sequences as steps over the ports. The standard library, ``broker.core`` (the ports
  included, also under ``if TYPE_CHECKING:``) and itself only; never flask, werkzeug, sqlalchemy, saml2,
  authlib, requests, redis or lxml, and no adapter, shared helper or composition module.
- **adapters** (``upstream``, ``downstream``, ``registry``, ``storage``, ``notify``: e-mail over SMTP): may use
  the core and the shared helpers, never each other, the journeys or the composition layer.
- **shared helpers** (``saml``, ``oidc``, ``keys``): code used by more than one adapter of a protocol
  (pysaml2 and xmlsec set-up, attribute catalog, client metadata and secrets) or by adapters and the CLI
  alike (``keys``: the key ring, JWT signing, signing-key rotation). A helper is a package, and every module
  below it (``broker.keys.jwt``, ``broker.keys.rotation``, ...) belongs to it: layers match by prefix.
  Classified by what they import and who imports them: they import only the standard library, third-party
  libraries, the core and each other, and are imported by adapters, ``web`` and the CLI. So they never
  import an adapter, the journeys, ``web`` or any other composition module. A module an adapter needs goes
  here (and must obey that), never into composition.
- **composition**: everything else, by definition, so the set is derived from the files and never
  goes stale: ``web``, ``app``, the ``config`` package (settings and their sections), the ``cli`` package
  (the ``broker`` command and its subcommands), ``instance``, ``logging_setup``, ``demo``, and whatever
  top-level module is added next. Composition may import anything; adapters are plugged into it, never the
  other way round.

Planned but not enforced yet (it would fail today; docs/architecture.md measures it): ``web`` reaches
adapters only through the journeys and the wiring.

Each rule is a function over ``imports_of``; the ``test_checker_*`` tests feed it made-up source that breaks
the rule, so a broken rule cannot pass silently.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BROKER = ROOT / "broker"

#: named explicitly so the rule reads as intended even if the standard-library check below changed
FORBIDDEN_IN_CORE = frozenset(
    {"flask", "werkzeug", "saml2", "authlib", "sqlalchemy", "lxml", "xmlsec", "requests", "urllib3", "certifi",
     "joserfc"}
)
#: issue 16's list, plus what the core may not use either; anything outside the standard library is refused
FORBIDDEN_IN_JOURNEYS = FORBIDDEN_IN_CORE | {"redis"}
CORE = "broker.core"
JOURNEYS = "broker.journeys"
ADAPTERS = ("broker.upstream", "broker.downstream", "broker.registry", "broker.storage", "broker.notify")
SHARED_HELPERS = ("broker.saml", "broker.oidc", "broker.keys")


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, dotted
    target: str  # the imported module, dotted and absolute
    line: int

    def __str__(self) -> str:
        return f"{self.module}:{self.line} imports {self.target}"


def top_level_modules(folder: Path) -> list[str]:
    """The dotted names of ``folder``'s top-level modules (``x.py``) and packages (folders holding Python)."""
    names = []
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix == ".py" and path.name != "__init__.py":
            names.append(f"{folder.name}.{path.stem}")
        elif path.is_dir() and path.name.isidentifier() and any(path.rglob("*.py")):
            names.append(f"{folder.name}.{path.name}")
    return names


def composition_of(top_level: Iterable[str]) -> tuple[str, ...]:
    """Every top-level module that is not the core, the journeys, an adapter or a shared helper."""
    layered = {CORE, JOURNEYS, *ADAPTERS, *SHARED_HELPERS}
    return tuple(name for name in top_level if name not in layered)


#: wiring, entry points and demos: derived from the files, see the module docstring
COMPOSITION = composition_of(top_level_modules(BROKER))


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


def _stdlib_and(own: Iterable[str], forbidden: frozenset[str], found: Iterator[Import]) -> list[Import]:
    """Imports of anything but the standard library and the ``own`` broker packages."""
    own = tuple(own)
    bad = []
    for imp in found:
        top = imp.target.split(".")[0]
        if any(_within(imp.target, p) for p in own) or imp.target == "broker":
            continue  # ``from broker.core import x`` also yields the bare parent; ``broker`` alone is harmless
        if top in forbidden or top == "broker" or top not in sys.stdlib_module_names:
            bad.append(imp)
    return bad


def core_violations(found: Iterator[Import]) -> list[Import]:
    """Imports a core module may not make: anything but the standard library and ``broker.core``."""
    return _stdlib_and([CORE], FORBIDDEN_IN_CORE, found)


def journeys_violations(found: Iterator[Import]) -> list[Import]:
    """Imports a journeys module may not make: anything but the standard library, the core (ports included)
    and the journeys themselves."""
    return _stdlib_and([CORE, JOURNEYS], FORBIDDEN_IN_JOURNEYS, found)


def adapter_violations(adapter: str, found: Iterator[Import], composition: Iterable[str] = COMPOSITION) -> list[Import]:
    """Imports of the other adapters, the journeys or the composition layer by a module of ``adapter``."""
    forbidden = [a for a in ADAPTERS if a != adapter] + [JOURNEYS, *composition]
    return [imp for imp in found if any(_within(imp.target, f) for f in forbidden)]


def helper_violations(found: Iterator[Import], composition: Iterable[str] = COMPOSITION) -> list[Import]:
    """Imports of an adapter, the journeys, ``web`` or any other composition module by a shared helper."""
    forbidden = [*ADAPTERS, JOURNEYS, *composition]
    return [imp for imp in found if any(_within(imp.target, f) for f in forbidden)]


def _source_files(package: str) -> list[Path]:
    path = ROOT.joinpath(*package.split("."))
    if path.with_suffix(".py").is_file():
        return [path.with_suffix(".py")]
    return sorted(path.rglob("*.py"))


def _exists(package: str) -> bool:
    return bool(_source_files(package))


def package_imports(package: str) -> list[Import]:
    files = _source_files(package)
    assert files, f"no Python files for {package}: the check would pass vacuously"
    found: list[Import] = []
    for path in files:
        found.extend(imports_of(_module_name(path), path.read_text(), is_package=path.name == "__init__.py"))
    return found


# --- the rules, on the real code ------------------------------------------------------------------------


def test_core_imports_only_the_standard_library_and_itself() -> None:
    found = package_imports(CORE)
    assert any(_within(i.target, CORE) for i in found), "the checker saw none of core's own imports"
    assert [str(v) for v in core_violations(iter(found))] == []


def test_journeys_import_only_the_standard_library_the_core_and_themselves() -> None:
    found = package_imports(JOURNEYS)
    assert any(_within(i.target, CORE) for i in found), "the checker saw none of the journeys' imports"
    assert [str(v) for v in journeys_violations(iter(found))] == []


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_adapter_imports_neither_other_adapters_nor_journeys_nor_composition(adapter: str) -> None:
    found = package_imports(adapter)
    assert any(_within(i.target, CORE) for i in found), f"{adapter} does not use the core at all?"
    assert [str(v) for v in adapter_violations(adapter, iter(found))] == [], (
        "adapters never depend on composition; if the imported module is shared code, make it a shared helper "
        "(SHARED_HELPERS, and it must then obey the helper rule)"
    )


@pytest.mark.parametrize("helper", SHARED_HELPERS)
def test_shared_helper_imports_no_adapter_journeys_web_or_composition(helper: str) -> None:
    found = package_imports(helper)
    assert found, f"{helper} imports nothing at all?"
    assert [str(v) for v in helper_violations(iter(found))] == []


@pytest.mark.parametrize("package", [CORE, *ADAPTERS, *SHARED_HELPERS])
def test_nothing_below_the_web_layer_imports_web_or_app(package: str) -> None:
    bad = [i for i in package_imports(package) if _within(i.target, "broker.web") or _within(i.target, "broker.app")]
    assert [str(v) for v in bad] == []


#: the wiring: the web modules that build adapters and hand them to the journeys (``web/services.py`` builds
#: them, ``web/wiring.py`` plugs them into the journeys' ports)
WIRING = {"broker.web.services", "broker.web.wiring"}
#: protocol adapters web modules still reach directly, outside the journeys and the wiring: the OIDC back
#: channel (token, UserInfo, registration, discovery: JSON APIs with no journey), protocol helpers
#: (``with_query``, ``OAuthError``), and operational reads (health and metrics of the IdP directory and
#: upstream HTTP calls).
#: This list may only shrink: a new entry fails ``test_web_reaches_adapters_only_through_journeys_and_the_wiring``
#: and an entry no longer imported fails it too, so it cannot go stale.
WEB_ADAPTER_IMPORTS_LEFT = {
    "broker.web.oidc_api": {"broker.downstream.oidc.client_auth", "broker.downstream.oidc.discovery",
                            "broker.downstream.oidc.errors"},
    "broker.web.oidc_provider": {"broker.downstream.oidc.responses"},
    "broker.web.oidc_registration": {"broker.downstream.oidc.errors", "broker.downstream.oidc.provider"},
    "broker.web.ops.health": {"broker.registry.metadata_refresh"},
    "broker.web.ops.metrics": {"broker.registry.metadata_refresh", "broker.upstream.oidc_http"},
    "broker.web.pages": {"broker.downstream.oidc.errors"},
}
#: web modules that define no route: the renderer and the wiring only
WEB_MODULES_WITHOUT_ROUTES = {"broker.web.renderer", *WIRING}


def web_adapter_imports(found: Iterable[Import]) -> dict[str, set[str]]:
    """The adapter modules each web module imports, the wiring apart."""
    by_line: dict[tuple[str, int], list[str]] = {}
    for i in found:
        if i.module not in WIRING and any(_within(i.target, adapter) for adapter in ADAPTERS):
            by_line.setdefault((i.module, i.line), []).append(i.target)
    reached: dict[str, set[str]] = {}
    for (module, _line), targets in by_line.items():
        # ``from a.b import c`` names a.b and a.b.c: the module is a.b, unless a.b is an adapter package itself
        base = min(targets, key=len)
        modules = {base} if base not in ADAPTERS or len(targets) == 1 else set(targets) - {base}
        reached.setdefault(module, set()).update(modules)
    return reached


def test_web_reaches_adapters_only_through_journeys_and_the_wiring() -> None:
    reached = web_adapter_imports(package_imports("broker.web"))
    assert not WIRING & set(reached)
    new = {m: sorted(t - WEB_ADAPTER_IMPORTS_LEFT.get(m, set())) for m, t in reached.items()}
    assert {m: t for m, t in new.items() if t} == {}, "web reaches adapters through the journeys and the wiring"
    stale = {m: sorted(t - reached.get(m, set())) for m, t in WEB_ADAPTER_IMPORTS_LEFT.items()}
    assert {m: t for m, t in stale.items() if t} == {}, "no longer imported: remove from WEB_ADAPTER_IMPORTS_LEFT"


def test_each_top_level_web_module_defines_routes_or_is_the_renderer_or_the_wiring() -> None:
    """Orchestration lives in ``broker.journeys``; plumbing in ``web/http`` and ``web/ops``."""
    folder = BROKER / "web"
    without = {f"broker.web.{path.stem}" for path in folder.glob("*.py")
               if path.name != "__init__.py" and not _defines_routes(path.read_text())}
    assert without - WEB_MODULES_WITHOUT_ROUTES == set()
    assert WEB_MODULES_WITHOUT_ROUTES - without == set(), "these define routes now: remove them from the list"


def _defines_routes(source: str) -> bool:
    """Whether ``source`` decorates a function with a Flask route (``@bp.get``, ``@bp.route``, ...)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef):
            for decorator in node.decorator_list:
                call = decorator.func if isinstance(decorator, ast.Call) else decorator
                if isinstance(call, ast.Attribute) and call.attr in {"route", "get", "post", "put", "delete"}:
                    return True
    return False


def test_checker_flags_a_web_module_reaching_an_adapter_and_spares_the_wiring() -> None:
    found = [*imports_of("broker.web.login", "from broker.upstream.oidc import PendingAuthorization"),
             *imports_of("broker.web.services", "from broker.upstream.saml_sp import SamlSp"),
             *imports_of("broker.web.wiring", "from broker.upstream.saml_upstreams import SamlUpstreams"),
             *imports_of("broker.web.consent", "from broker.journeys import consent")]
    found += imports_of("broker.web.portal", "from broker.upstream import saml_slo")
    assert web_adapter_imports(found) == {"broker.web.login": {"broker.upstream.oidc"},
                                          "broker.web.portal": {"broker.upstream.saml_slo"}}


def test_checker_tells_routes_from_helpers() -> None:
    assert _defines_routes("@bp.post('/x')\ndef view():\n    pass\n")
    assert _defines_routes("@bp.route('/x', methods=['GET'])\ndef view():\n    pass\n")
    assert not _defines_routes("@metrics.step('answer')\ndef helper():\n    pass\n")
    assert not _defines_routes("def helper():\n    return bp\n")


def test_downstream_does_not_import_registry() -> None:
    bad = [i for i in package_imports("broker.downstream") if _within(i.target, "broker.registry")]
    assert [str(v) for v in bad] == []


def test_every_named_layer_exists_and_composition_is_derived_from_the_files() -> None:
    """A renamed core, adapter or helper must be renamed here too, or its rules would quietly stop applying."""
    top_level = top_level_modules(BROKER)
    missing = [p for p in (CORE, *ADAPTERS, *SHARED_HELPERS) if p not in top_level]
    assert missing == []
    # the modules issue 16 found missing from the old hand-kept list are now in it without being named
    assert {"broker.web", "broker.app", "broker.cli", "broker.config", "broker.instance",
            "broker.logging_setup", "broker.demo"} <= set(COMPOSITION)
    # layers are packages: their submodules belong to them and never count as top-level modules of their own
    assert not {"broker.keys.rotation", "broker.cli.metadata", "broker.config.settings"} & set(top_level)


# --- the checker itself catches violations (so the rules above cannot pass vacuously) -------------------


def test_checker_derives_composition_as_everything_not_layered(tmp_path: Path) -> None:
    broker = tmp_path / "broker"
    for name in ("core", "journeys", "upstream", "saml", "keys", "web", "templates_only"):
        (broker / name).mkdir(parents=True)
    for name in ("core", "journeys", "upstream", "saml", "keys", "web"):
        (broker / name / "__init__.py").write_text("")
    (broker / "keys" / "rotation.py").write_text("")
    (broker / "templates_only" / "page.html").write_text("")
    for name in ("__init__.py", "app.py", "cli_brand_new.py", "py.typed"):
        (broker / name).write_text("")
    top_level = top_level_modules(broker)
    assert set(top_level) == {"broker.core", "broker.journeys", "broker.upstream", "broker.saml", "broker.web",
                              "broker.keys", "broker.app", "broker.cli_brand_new"}
    assert set(composition_of(top_level)) == {"broker.web", "broker.app", "broker.cli_brand_new"}
    # a brand-new top-level module is composition at once, so an adapter importing it is refused
    found = imports_of("broker.upstream.synthetic", "from broker.cli_brand_new import x\n")
    assert adapter_violations("broker.upstream", found, composition_of(top_level))


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
        ("from broker.journeys import login", "broker.journeys"),
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


@pytest.mark.parametrize("library", sorted(FORBIDDEN_IN_JOURNEYS))
@pytest.mark.parametrize("form", ["import {lib}", "from {lib}.sub import thing",
                                  "if TYPE_CHECKING:\n    from {lib} import thing"])
def test_checker_flags_each_forbidden_library_in_journeys(library: str, form: str) -> None:
    source = "from __future__ import annotations\nimport json\n" + form.format(lib=library) + "\n"
    bad = journeys_violations(imports_of("broker.journeys.synthetic", source))
    assert {v.target.split(".")[0] for v in bad} == {library}


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("from broker.upstream.oidc import OidcUpstream", "broker.upstream.oidc"),
        ("from broker.downstream import saml_responses", "broker.downstream.saml_responses"),
        ("from broker.storage.accounts import SqlAccounts", "broker.storage.accounts"),
        ("from broker.registry import Registry", "broker.registry"),
        ("from broker.web.services import services", "broker.web.services"),
        ("from broker.saml.attributes import x", "broker.saml.attributes"),
        ("from broker.keys.keyring import KeyRing", "broker.keys.keyring"),
        ("from ..config import Settings", "broker.config"),
        ("import jinja2", "jinja2"),
    ],
)
def test_checker_flags_non_core_broker_imports_in_journeys(source: str, target: str) -> None:
    bad = journeys_violations(imports_of("broker.journeys.synthetic", source))
    assert target in {v.target for v in bad}


def test_checker_accepts_standard_library_core_ports_and_journeys_in_journeys() -> None:
    source = (
        "from __future__ import annotations\nfrom typing import TYPE_CHECKING\nfrom enum import Enum\n"
        "from broker.core.flow import LoginRequest\nfrom broker.journeys.outcome import Outcome\n"
        "from . import steps\nif TYPE_CHECKING:\n    from broker.core.ports import AccountStore\n"
    )
    found = list(imports_of("broker.journeys.login", source))
    assert "broker.journeys.steps" in {i.target for i in found}  # the relative import was resolved
    assert journeys_violations(iter(found)) == []


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
        # missing from the old hand-kept list (issue 16)
        ("broker.registry", "from broker.cli.metadata import x", "broker.cli.metadata"),
        ("broker.storage", "from broker.cli.rotation import x", "broker.cli.rotation"),
        ("broker.downstream", "from broker.config.sections import LimitSettings", "broker.config.sections"),
        ("broker.upstream", "from broker.logging_setup import log", "broker.logging_setup"),
        ("broker.upstream", "from broker.journeys.login import start", "broker.journeys.login"),
    ],
)
def test_checker_flags_adapter_importing_another_adapter_or_composition(adapter: str, source: str, target: str) -> None:
    bad = adapter_violations(adapter, imports_of(f"{adapter}.synthetic", source))
    assert target in {v.target for v in bad}


def test_checker_allows_adapter_to_import_core_shared_helpers_and_itself() -> None:
    source = (
        "from broker.core import errors\nfrom broker.upstream import oidc_http\nfrom .oidc_settings import S\n"
        "from broker.saml.attributes import x\nfrom broker.oidc.client import OidcClient\n"
        "from broker.keys.keyring import KeyRing\nfrom broker.keys.jwt import sign_jwt\n"
        "from broker.keys.rotation import stage\n"
    )
    assert adapter_violations("broker.upstream", imports_of("broker.upstream.synthetic", source)) == []


@pytest.mark.parametrize(
    ("helper", "source", "target"),
    [
        ("broker.saml", "from broker.web.services import services", "broker.web.services"),
        ("broker.oidc", "from broker import web", "broker.web"),
        ("broker.oidc", "from ..config import Settings", "broker.config"),
        ("broker.saml", "from broker.cli.metadata import x", "broker.cli.metadata"),
        ("broker.keys", "from broker.cli.rotation import x", "broker.cli.rotation"),
        ("broker.keys.rotation", "from broker.config.settings import Settings", "broker.config.settings"),
        ("broker.saml", "from broker.app import create_app", "broker.app"),
        ("broker.saml", "from broker.downstream.saml_server import x", "broker.downstream.saml_server"),
        ("broker.oidc", "if TYPE_CHECKING:\n    from broker.storage.clients import C", "broker.storage.clients"),
        ("broker.keys.jwt", "from broker.journeys import login", "broker.journeys.login"),
    ],
)
def test_checker_flags_shared_helper_importing_composition_web_or_adapter(helper: str, source: str,
                                                                          target: str) -> None:
    bad = helper_violations(imports_of(f"{helper}.synthetic", source))
    assert target in {v.target for v in bad}


def test_checker_allows_shared_helper_to_import_libraries_core_and_helpers() -> None:
    source = (
        "from saml2 import SamlBase\nfrom lxml import etree\nfrom joserfc import jwt\n"
        "from broker.core.claims import CLAIMS\nfrom broker.oidc.client_secret import hash_problem\n"
        "from broker.keys.jwt import JwtKey\nfrom broker.keys.keyring import KeyRing\nfrom .catalog import x\n"
    )
    assert helper_violations(imports_of("broker.saml.synthetic", source)) == []
