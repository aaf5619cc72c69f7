"""``broker sp add|set|list|remove`` with the operator's settings of a SAML app (``<stem>.toml`` beside the
metadata): written, validated exactly as the registry loads them, edited and cleared; and ``broker upstream
list`` printing "-" for what is not set. Metadata is real pysaml2 SP metadata."""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from broker.cli.main import build_parser, main
from broker.registry.saml_sps import SP_FOLDER, load_sp_catalog
from tests.cli_support import Result, clean_environment  # noqa: F401 - an autouse fixture
from tests.flows.saml_peers import SpKeys
from tests.sp_metadata import make_sp_keys, write_sp_metadata

APP = "https://permits.city.example.org/sp"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("template") / "demo"
    assert main(["init", str(folder), "--demo"]) == 0
    return folder


@pytest.fixture
def config(template: Path, tmp_path: Path) -> Iterator[Path]:
    shutil.copytree(template, tmp_path / "instance")
    yield tmp_path / "instance" / "broker.toml"


@pytest.fixture(scope="module")
def sp_keys(tmp_path_factory: pytest.TempPathFactory) -> SpKeys:
    return make_sp_keys(tmp_path_factory.mktemp("sp-keys"))


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], config: Path) -> Any:
    def run(*argv: str) -> Result:
        capsys.readouterr()
        code = main(["--config", str(config), *argv])
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return run


def _folder(config: Path) -> Path:
    return config.parent / "metadata" / SP_FOLDER


def _files(config: Path) -> list[str]:
    """The files of the app under test (the demo instance also registers its DEMO app)."""
    return sorted(p.name for p in _folder(config).iterdir() if p.stem == "permits")


def test_add_writes_metadata_and_settings_that_the_registry_loads(run: Any, config: Path, sp_keys: SpKeys,
                                                                  tmp_path: Path) -> None:
    source = write_sp_metadata(tmp_path / "permits.xml", APP, sp_keys, requested=())

    added = run("sp", "add", str(source), "--display-name", "Parking permits", "--allowed-upstream", "demo",
                "--default-upstream", "demo", "--receive", "email", "--receive", "given_name",
                "--required", "email", "--required-acr", "http://eidas.europa.eu/LoA/substantial",
                "--logo-uri", "https://permits.city.example.org/logo.png", "--json")

    assert added.code == 0, added.err
    assert added.json()[0]["name"] == "Parking permits"
    assert _files(config) == ["permits.toml", "permits.xml"]
    sp = load_sp_catalog(config.parent / "metadata").sps[APP]
    assert (sp.display_name, sp.allowed_upstreams, sp.default_upstream) == ("Parking permits", ("demo",), "demo")
    assert sp.requested_claims == {"email", "given_name"} and sp.required_claims == {"email"}
    assert sp.required_acr == "http://eidas.europa.eu/LoA/substantial"
    assert sp.logo_uri == "https://permits.city.example.org/logo.png"
    listed = run("sp", "list")
    assert f"Parking permits  {APP}  permits.xml  demo\n" in listed.out
    assert "DEMO city app  http://127.0.0.1:5002/metadata  demo-app.xml  -\n" in listed.out


@pytest.mark.parametrize(("options", "message"), [
    (["--default-upstream", "google", "--allowed-upstream", "demo"], "is not one of allowed_upstreams"),
    (["--logo-uri", "http://permits.example.org/logo.png"], "logo_uri must be an https URL"),
    (["--receive", "shoe_size"], "unknown claims ['shoe_size']"),
    (["--display-name", APP], "not a URL or entity id"),
])
def test_add_refuses_settings_the_broker_would_refuse_and_writes_nothing(
        run: Any, config: Path, sp_keys: SpKeys, tmp_path: Path, options: list[str], message: str) -> None:
    source = write_sp_metadata(tmp_path / "permits.xml", APP, sp_keys)

    result = run("sp", "add", str(source), *options)

    assert result.code == 1 and message in result.err
    assert _files(config) == []


def test_set_edits_and_clears_the_settings_and_an_update_keeps_them(run: Any, config: Path, sp_keys: SpKeys,
                                                                    tmp_path: Path) -> None:
    source = write_sp_metadata(tmp_path / "permits.xml", APP, sp_keys, display_name="Permits (metadata)")
    assert run("sp", "add", str(source)).code == 0
    assert not (_folder(config) / "permits.toml").exists()  # no settings given: none written

    named = run("sp", "set", APP, "--display-name", "Parking permits", "--allowed-upstream", "city-idp")
    assert named.code == 0
    assert "no upstream named 'city-idp' is registered" in named.err  # a note: it may be registered later
    assert load_sp_catalog(config.parent / "metadata").sps[APP].display_name == "Parking permits"

    refused = run("sp", "set", APP, "--default-upstream", "demo")  # not among the allowed upstreams
    assert refused.code == 1 and "is not one of allowed_upstreams" in refused.err

    assert run("sp", "add", str(source)).code == 0  # new metadata of the same app: the settings stay
    assert load_sp_catalog(config.parent / "metadata").sps[APP].allowed_upstreams == ("city-idp",)

    cleared = run("sp", "set", APP, "--clear", "allowed_upstreams", "--clear", "display_name", "--json")
    assert cleared.code == 0
    assert cleared.json()[0]["name"] == "Permits (metadata)"  # the metadata's mdui:DisplayName again
    assert not (_folder(config) / "permits.toml").exists()  # nothing left to say


def test_set_repairs_settings_the_registry_skips(run: Any, config: Path, sp_keys: SpKeys, tmp_path: Path) -> None:
    source = write_sp_metadata(tmp_path / "permits.xml", APP, sp_keys)
    assert run("sp", "add", str(source)).code == 0
    (_folder(config) / "permits.toml").write_text('logo_uri = "http://insecure.example.org/logo.png"\n')
    assert APP not in load_sp_catalog(config.parent / "metadata").sps
    assert "logo_uri must be an https URL" in run("sp", "list").err

    repaired = run("sp", "set", APP, "--clear", "logo_uri")

    assert repaired.code == 0
    assert APP in load_sp_catalog(config.parent / "metadata").sps


def test_remove_takes_the_settings_too(run: Any, config: Path, sp_keys: SpKeys, tmp_path: Path) -> None:
    source = write_sp_metadata(tmp_path / "permits.xml", APP, sp_keys)
    assert run("sp", "add", str(source), "--display-name", "Parking permits").code == 0

    assert run("sp", "remove", APP).code == 0

    assert _files(config) == []


def test_upstream_list_prints_a_dash_for_what_is_not_set(run: Any) -> None:
    listed = run("upstream", "list")

    assert listed.code == 0
    assert listed.out == "demo  oidc  -  http://127.0.0.1:5001\n"
    assert "None" not in listed.out


@pytest.mark.parametrize(("group", "command"), [("sp", c) for c in ("add", "set", "list", "remove")]
                         + [("upstream", c) for c in ("add", "list", "remove", "presets")])
def test_every_option_has_a_help_text(group: str, command: str) -> None:
    parser = _subparser(_subparser(build_parser(), group), command)

    undescribed = [action.dest for action in parser._actions if not action.help]

    assert parser.description or parser.format_usage()
    assert undescribed == []


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    found: argparse.ArgumentParser = sub.choices[name]
    return found


def test_a_required_acr_off_the_assurance_scale_gets_a_note(run: Any, sp_keys: SpKeys, tmp_path: Path) -> None:
    source = write_sp_metadata(tmp_path / "permits.xml", APP, sp_keys)
    assert run("sp", "add", str(source)).code == 0

    typo = run("sp", "set", APP, "--required-acr", "substantial")
    on_scale = run("sp", "set", APP, "--required-acr", "http://eidas.europa.eu/LoA/substantial")

    assert typo.code == 0 and "is not on the [assurance] scale" in typo.err
    assert on_scale.code == 0 and on_scale.err == ""
