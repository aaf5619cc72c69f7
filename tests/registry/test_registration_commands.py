"""The ``broker`` commands over the registration services: ``sp add --dry-run`` and ``client add --dry-run``
print the diff against the current registration and write nothing; ``sp disable|enable`` switch an app off and
on. Driven in-process like the other command tests; the metadata is real pysaml2 SP metadata."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

import pytest

from broker.cli.main import build_parser, main
from broker.registry.saml_sps import SP_FOLDER, load_sp_catalog
from tests.cli_support import Result, clean_environment  # noqa: F401 - an autouse fixture
from tests.flows.saml_peers import SpKeys
from tests.registry.registration_support import files_in
from tests.sp_metadata import write_sp_metadata

APP = "https://permits.city.example.org/sp"
CALLBACK = "https://permits.city.example.org/oidc/callback"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("template") / "plain"
    assert main(["init", str(folder)]) == 0
    return folder


@pytest.fixture
def config(template: Path, tmp_path: Path) -> Path:
    shutil.copytree(template, tmp_path / "instance")
    return tmp_path / "instance" / "broker.toml"


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], config: Path) -> Any:
    def run(*argv: str) -> Result:
        capsys.readouterr()
        code = main(["--config", str(config), *argv])
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return run


def test_sp_add_dry_run_prints_the_diff_and_writes_nothing(run: Any, config: Path, sp_keys: SpKeys,
                                                           tmp_path: Path) -> None:
    metadata = config.parent / "metadata"
    first = write_sp_metadata(tmp_path / "a" / "permits.xml", APP, sp_keys, display_name="Permits")
    before = files_in(metadata)

    new = run("sp", "add", str(first), "--display-name", "Parking", "--dry-run")

    assert new.code == 0, new.err
    assert f"{APP}  display_name: - -> Parking\n" in new.out
    assert f"{APP}  settings.display_name: - -> Parking\n" in new.out
    assert "certificate (SHA-256 " in new.out and new.err == "dry run: nothing was written\n"
    assert files_in(metadata) == before

    assert run("sp", "add", str(first)).code == 0
    update = write_sp_metadata(tmp_path / "b" / "permits.xml", APP, sp_keys, display_name="Permits v2")
    changed = run("sp", "add", str(update), "--dry-run", "--json")
    assert changed.json() == [{"party": APP, "field": "display_name", "before": "Permits", "after": "Permits v2"}]
    assert load_sp_catalog(metadata).sps[APP].display_name == "Permits"
    same = run("sp", "add", str(first), "--dry-run")
    assert same.out == f"no changes to {metadata / SP_FOLDER / 'permits.xml'}\n"


def test_sp_add_dry_run_refuses_what_the_real_run_refuses(run: Any, config: Path, sp_keys: SpKeys,
                                                          tmp_path: Path) -> None:
    source = write_sp_metadata(tmp_path / "permits.xml", APP, sp_keys)

    refused = run("sp", "add", str(source), "--logo-uri", "http://permits.example.org/logo.png", "--dry-run")

    assert refused.code == 1 and "logo_uri must be an https URL" in refused.err
    assert refused.out == ""


def test_client_add_dry_run_prints_the_diff_and_no_secret(run: Any, config: Path) -> None:
    folder = config.parent / "metadata"
    before = files_in(folder)

    new = run("client", "add", "--client-id", "permits", "--redirect-uri", CALLBACK, "--dry-run")

    assert new.code == 0, new.err
    assert "permits  redirect_uris: - -> " + CALLBACK + "\n" in new.out
    assert "client_secret:" not in new.out and "shown only this once" not in new.out + new.err
    assert files_in(folder) == before

    assert run("client", "add", "--client-id", "permits", "--redirect-uri", CALLBACK).code == 0
    unforced = run("client", "add", "--client-id", "permits", "--redirect-uri", CALLBACK, "--dry-run")
    assert unforced.code == 1 and "exists; use --force to replace it" in unforced.err
    forced = run("client", "add", "--client-id", "permits", "--redirect-uri", CALLBACK, "--refresh", "--force",
                 "--dry-run", "--json")
    assert {c["field"] for c in forced.json()} == {"grant_types", "scope", "client_secret_hash"}


def test_sp_disable_and_enable(run: Any, config: Path, sp_keys: SpKeys, tmp_path: Path) -> None:
    source = write_sp_metadata(tmp_path / "permits.xml", APP, sp_keys)
    assert run("sp", "add", str(source), "--display-name", "Parking permits").code == 0

    disabled = run("sp", "disable", APP)
    listed = run("sp", "list")

    assert disabled.code == 0 and "disabled: no longer served" in disabled.out
    assert APP not in load_sp_catalog(config.parent / "metadata").sps
    assert (listed.code, listed.out) == (0, "")
    assert f"note: {APP} (permits.xml) is disabled" in listed.err
    assert run("sp", "set", APP, "--required-acr", "http://eidas.europa.eu/LoA/low").code == 0  # stays disabled
    assert APP not in load_sp_catalog(config.parent / "metadata").sps

    enabled = run("sp", "enable", APP)

    assert enabled.code == 0 and "served again" in enabled.out
    sp = load_sp_catalog(config.parent / "metadata").sps[APP]
    assert (sp.display_name, sp.required_acr) == ("Parking permits", "http://eidas.europa.eu/LoA/low")
    unknown = run("sp", "disable", "https://unknown.example.org")
    assert (unknown.code, unknown.err) == (1, "broker: no registered SP has entity id https://unknown.example.org\n")


@pytest.mark.parametrize(("group", "command"), [("sp", "add"), ("sp", "enable"), ("sp", "disable"),
                                                ("client", "add")])
def test_every_new_option_has_a_help_text(group: str, command: str) -> None:
    parser = _subparser(_subparser(build_parser(), group), command)

    assert [action.dest for action in parser._actions if not action.help] == []


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    found: argparse.ArgumentParser = sub.choices[name]
    return found
