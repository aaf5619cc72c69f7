"""``broker client add --client-secret-file|--client-secret-env`` and ``broker client import``: clients that
keep the secret they already have, driven in-process like the other commands (``tests/test_cli.py``)."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from broker.cli.main import build_parser, main
from broker.oidc.client_secret import verify_secret
from broker.registry.oidc_clients import CLIENT_FOLDER, load_oidc_clients
from tests.cli_support import Result, clean_environment  # noqa: F401 - an autouse fixture

CALLBACK = "https://permits.city.example.org/oidc/callback"
#: secrets as apps bring them from other identity providers
PERMITS_SECRET = "q7Vd9XkP2mWb4ZtR8sLc1NhJ6yFg3EaU"
LIBRARY_SECRET = "GOCSPX-1a2B3c4D5e6F7g8H9i0JkLmNoPq"



@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("template") / "plain"
    assert main(["init", str(folder)]) == 0
    return folder


@pytest.fixture
def config(template: Path, tmp_path: Path) -> Path:
    target = tmp_path / "instance"
    shutil.copytree(template, target)
    return target / "broker.toml"


def _folder(config: Path) -> Path:
    return config.parent / "metadata" / CLIENT_FOLDER


def _stored_hash(config: Path, client_id: str) -> str:
    clients, problems = load_oidc_clients(config.parent / "metadata")
    assert problems == []
    stored = clients[client_id].client_secret_hash
    assert stored is not None
    return stored


def _no_secret_in(result: Result, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in result.out and secret not in result.err


# -- client add with the app's own secret ------------------------------------------------------------------


def test_add_keeps_a_secret_from_a_file_and_stores_only_its_scrypt_hash(cli: Any, config: Path,
                                                                        tmp_path: Path) -> None:
    secret_file = tmp_path / "permits.secret"
    secret_file.write_text(PERMITS_SECRET + "\n")  # as `echo secret > file` leaves it

    result = cli("--config", str(config), "client", "add", "--client-id", "permits", "--redirect-uri", CALLBACK,
                 "--client-secret-file", str(secret_file))

    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        f"registered client permits in {_folder(config) / 'permits.json'}",
        "the client keeps the secret it was given; the file holds only its scrypt hash"]
    _no_secret_in(result, PERMITS_SECRET)
    stored = _stored_hash(config, "permits")
    assert stored.startswith("scrypt$16384$8$1$")
    assert PERMITS_SECRET not in (_folder(config) / "permits.json").read_text()
    assert verify_secret(PERMITS_SECRET, stored)
    assert not verify_secret(PERMITS_SECRET + "\n", stored)
    assert cli("--config", str(config), "check", "--json").json()["problems"] == []


def test_add_keeps_a_secret_from_the_environment(cli: Any, config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERMITS_SECRET", PERMITS_SECRET)

    result = cli("--config", str(config), "client", "add", "--client-id", "permits", "--redirect-uri", CALLBACK,
                 "--auth-method", "client_secret_post", "--client-secret-env", "PERMITS_SECRET", "--json")

    assert result.code == 0, result.err
    assert result.json() == [{"client_id": "permits", "file": str(_folder(config) / "permits.json")}]
    _no_secret_in(result, PERMITS_SECRET)
    assert verify_secret(PERMITS_SECRET, _stored_hash(config, "permits"))


@pytest.mark.parametrize(("secret", "message"), [
    ("", "--client-secret-env APP_SECRET: the client secret is empty"),
    ("hunter2", "--client-secret-env APP_SECRET: the client secret has 7 characters; at least 16"),
    ("passwordpassword", "the client secret is one short piece repeated"),
    ("citypermitsadmin", "the client secret is too guessable"),
])
def test_add_refuses_an_empty_or_weak_secret_without_echoing_it(cli: Any, config: Path,
                                                                monkeypatch: pytest.MonkeyPatch, secret: str,
                                                                message: str) -> None:
    monkeypatch.setenv("APP_SECRET", secret)

    result = cli("--config", str(config), "client", "add", "--client-id", "permits", "--redirect-uri", CALLBACK,
                 "--client-secret-env", "APP_SECRET")

    assert result.code == 1
    assert result.err.startswith("broker: ") and message in result.err, result.err
    if secret:
        _no_secret_in(result, secret)
    assert not _folder(config).exists() or list(_folder(config).iterdir()) == []


def test_add_secret_option_refusals(cli: Any, config: Path, tmp_path: Path) -> None:
    base = ("--config", str(config), "client", "add", "--client-id", "permits", "--redirect-uri", CALLBACK)

    unset = cli(*base, "--client-secret-env", "NO_SUCH_VARIABLE_HERE")
    missing = cli(*base, "--client-secret-file", str(tmp_path / "missing"))
    public = cli("--config", str(config), "client", "add", "--client-id", "app", "--auth-method", "none",
                 "--redirect-uri", "org.example.app:/cb", "--client-secret-env", "HOME")

    assert (unset.code, unset.err) == (1, "broker: --client-secret-env NO_SUCH_VARIABLE_HERE: the environment "
                                          "variable is not set\n")
    assert missing.code == 1 and missing.err.startswith(f"broker: cannot read --client-secret-file {tmp_path}")
    assert public.code == 1 and "--auth-method none uses no client secret" in public.err
    with pytest.raises(SystemExit) as both:  # argparse: a usage error
        main([*base, "--client-secret-env", "A", "--client-secret-file", "B"])
    assert both.value.code == 2


# -- client import -------------------------------------------------------------------------------------------


def _documents() -> list[dict[str, Any]]:
    """What an export from another identity provider looks like (RFC 7591 §3.2.1 responses), extra members
    and all."""
    return [
        {"client_id": "permits", "client_secret": PERMITS_SECRET, "client_secret_expires_at": 0,
         "client_id_issued_at": 1700000000, "registration_access_token": "rat-should-not-be-copied",
         "client_name": "Parking permits", "redirect_uris": [CALLBACK], "tos_uri": "https://x.example/tos"},
        {"client_id": "library", "client_secret": LIBRARY_SECRET, "token_endpoint_auth_method": "client_secret_post",
         "redirect_uris": ["https://library.city.example.org/cb"], "grant_types": ["authorization_code",
                                                                                 "refresh_token"],
         "scope": "openid email offline_access"},
        {"client_id": "kiosk-app", "token_endpoint_auth_method": "none",
         "redirect_uris": ["org.example.kiosk:/callback"]},
    ]


def _import(cli: Any, config: Path, tmp_path: Path, documents: object, *extra: str) -> Result:
    source = tmp_path / "clients.json"
    source.write_text(json.dumps(documents))
    result: Result = cli("--config", str(config), "client", "import", str(source), *extra)
    return result


def test_import_registers_every_client_with_its_own_secret(cli: Any, config: Path, tmp_path: Path) -> None:
    result = _import(cli, config, tmp_path, _documents())

    assert result.code == 0, result.err
    assert result.out.splitlines() == [f"imported client {c} in {_folder(config) / f'{c}.json'}"
                                       for c in ("permits", "library", "kiosk-app")]
    assert "holds the secrets in plain text: delete it" in result.err
    _no_secret_in(result, PERMITS_SECRET, LIBRARY_SECRET)
    assert verify_secret(PERMITS_SECRET, _stored_hash(config, "permits"))
    assert verify_secret(LIBRARY_SECRET, _stored_hash(config, "library"))
    assert not verify_secret(PERMITS_SECRET, _stored_hash(config, "library"))
    permits = (_folder(config) / "permits.json").read_text()
    assert PERMITS_SECRET not in permits and "rat-should-not-be-copied" not in permits and "tos_uri" not in permits
    library = json.loads((_folder(config) / "library.json").read_text())
    assert library["grant_types"] == ["authorization_code", "refresh_token"]
    assert library["token_endpoint_auth_method"] == "client_secret_post"
    assert "client_secret_hash" not in json.loads((_folder(config) / "kiosk-app.json").read_text())
    listed = cli("--config", str(config), "client", "list", "--json")
    assert listed.code == 0 and {r["client_id"] for r in listed.json()} == {"permits", "library", "kiosk-app"}


def test_one_bad_document_and_nothing_is_written(cli: Any, config: Path, tmp_path: Path) -> None:
    documents: list[Any] = _documents()
    documents[0]["redirect_uris"] = ["http://permits.city.example.org/cb"]
    documents[1]["client_secret"] = "library"
    documents[2]["client_secret"] = "a public client has none"
    documents += [{"client_id": "permits", "client_secret": PERMITS_SECRET, "redirect_uris": [CALLBACK]},
                  "not an object", {"redirect_uris": [CALLBACK], "client_secret": LIBRARY_SECRET}]

    result = _import(cli, config, tmp_path, documents, "--json")

    assert result.code == 1 and result.out == ""
    lines = result.err.splitlines()
    assert lines[0] == f"broker: nothing imported: 6 problem(s) in {tmp_path / 'clients.json'}:"
    assert [line.strip().split(":")[0] for line in lines[1:]] == [
        "[0] permits", "[1] library", "[2] kiosk-app", "[4] ?", "[5] ?", "[3] permits"]
    assert "redirect_uris: 'http://permits.city.example.org/cb' must use https" in lines[1]
    assert "the client secret has 7 characters" in lines[2]
    assert "client_secret is only for client_secret_basic and client_secret_post, not none" in lines[3]
    assert "not a JSON object" in lines[4] and "client_id is required" in result.err
    assert "client_id is also that of document [0]" in lines[6]
    _no_secret_in(result, PERMITS_SECRET, LIBRARY_SECRET, "a public client has none")
    assert not _folder(config).exists() or list(_folder(config).glob("*.json")) == []


def test_import_over_registered_clients_needs_replace(cli: Any, config: Path, tmp_path: Path) -> None:
    assert cli("--config", str(config), "client", "add", "--client-id", "permits", "--redirect-uri", CALLBACK,
               "--name", "Old permits").code == 0
    _folder(config).joinpath("hand-written.json").write_text(json.dumps(
        {"client_id": "library", "redirect_uris": [CALLBACK], "token_endpoint_auth_method": "none"}))

    refused = _import(cli, config, tmp_path, _documents()[:1])
    clash = _import(cli, config, tmp_path, _documents()[1:2], "--replace")
    replaced = _import(cli, config, tmp_path, _documents()[:1], "--replace")

    assert refused.code == 1 and "[0] permits: already registered" not in refused.err
    assert f"[0] permits: {_folder(config) / 'permits.json'} exists; use --replace to overwrite it" in refused.err
    assert clash.code == 1
    assert "[0] library: already registered by metadata/oidc-clients/hand-written.json; remove that" in clash.err
    assert replaced.code == 0, replaced.err
    assert json.loads((_folder(config) / "permits.json").read_text())["client_name"] == "Parking permits"
    assert verify_secret(PERMITS_SECRET, _stored_hash(config, "permits"))


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "cannot read"),
    ('{"client_id": "permits"}', "must hold a JSON list of RFC 7591 client metadata documents"),
    ("[]", "must hold a JSON list"),
])
def test_import_file_refusals(cli: Any, config: Path, tmp_path: Path, content: str, message: str) -> None:
    source = tmp_path / "clients.json"
    source.write_text(content)

    result = cli("--config", str(config), "client", "import", str(source))

    assert result.code == 1 and message in result.err


# -- every option is explained ---------------------------------------------------------------------------------


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    [action] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_every_option_of_the_client_commands_has_a_help_text() -> None:
    commands = _subparsers(_subparsers(build_parser())["client"])

    assert set(commands) == {"add", "import", "list", "remove"}
    for name, command in commands.items():
        for action in command._actions:
            assert action.help, f"broker client {name} {'/'.join(action.option_strings) or action.dest} has no help"
