"""``broker client add | list | remove``: OpenID Connect clients registered from the command line, driven
in-process like the other commands (``tests/test_cli.py``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import ECKey

from broker.cli.main import main
from broker.oidc.client import hash_secret
from broker.registry.oidc_clients import CLIENT_FOLDER, file_name
from broker.registry.saml_sps import SP_FOLDER
from tests.cli_support import Result, clean_environment  # noqa: F401 - an autouse fixture
from tests.flows.saml_peers import SpKeys
from tests.sp_metadata import write_sp_metadata

CALLBACK = "https://permits.city.example.org/oidc/callback"
NOTE = "This secret is shown only this once and is not stored anywhere"



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


def _add(cli: Any, config: Path, *extra: str) -> Result:
    result: Result = cli("--config", str(config), "client", "add", "--client-id", "permits", "--redirect-uri",
                         CALLBACK, *extra)
    return result


def test_add_prints_the_secret_once_and_writes_only_its_hash(cli: Any, config: Path) -> None:
    result = _add(cli, config, "--name", "Parking permits")

    assert result.code == 0, result.err
    target = _folder(config) / "permits.json"
    lines = result.out.splitlines()
    assert lines[0] == f"registered client permits in {target}"
    assert lines[1].startswith("client_secret: ")
    secret = lines[1].removeprefix("client_secret: ")
    assert len(secret) >= 43
    assert lines[2].startswith(NOTE)
    assert result.out.count(secret) == 1
    text = target.read_text()
    assert secret not in text
    assert json.loads(text) == {
        "client_id": "permits", "client_name": "Parking permits", "redirect_uris": [CALLBACK],
        "token_endpoint_auth_method": "client_secret_basic", "grant_types": ["authorization_code"],
        "response_types": ["code"], "scope": "openid profile email", "subject_type": "pairwise",
        "id_token_signed_response_alg": "RS256", "client_secret_hash": hash_secret(secret),
    }
    check = cli("--config", str(config), "check", "--json")
    assert (check.code, check.json()["problems"]) == (0, [])


def test_add_with_every_option_and_json_output(cli: Any, config: Path, tmp_path: Path) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [ECKey.generate_key("P-256").as_dict(private=False)]}))

    result = _add(cli, config, "--auth-method", "private_key_jwt", "--jwks-file", str(jwks), "--scope",
                  "openid email", "--public-sub", "--alg", "ES256", "--refresh", "--allowed-upstream", "city",
                  "google", "--may-introspect", "--post-logout-redirect-uri", "https://permits.city.example.org/bye",
                  "--json")

    assert result.code == 0, result.err
    assert result.json() == [{"client_id": "permits", "file": str(_folder(config) / "permits.json")}]
    assert NOTE not in result.out + result.err  # private_key_jwt: no secret was made
    written = json.loads((_folder(config) / "permits.json").read_text())
    assert written["scope"] == "openid email offline_access"
    assert written["grant_types"] == ["authorization_code", "refresh_token"]
    assert (written["subject_type"], written["id_token_signed_response_alg"]) == ("public", "ES256")
    assert (written["allowed_upstreams"], written["may_introspect"]) == (["city", "google"], True)
    assert "client_secret_hash" not in written


def test_add_json_puts_the_secret_in_the_output_and_the_note_on_stderr(cli: Any, config: Path) -> None:
    result = _add(cli, config, "--json")

    assert result.code == 0
    [row] = result.json()
    assert row["client_secret"] not in (_folder(config) / "permits.json").read_text()
    assert NOTE in result.err


def test_a_public_client_gets_no_secret(cli: Any, config: Path) -> None:
    result = cli("--config", str(config), "client", "add", "--client-id", "city-app", "--auth-method", "none",
                 "--redirect-uri", "org.example.city.app:/callback")

    assert result.code == 0, result.err
    assert "client_secret" not in result.out and NOTE not in result.out
    assert "client_secret_hash" not in (_folder(config) / "city-app.json").read_text()


def test_list_and_remove(cli: Any, config: Path) -> None:
    assert _add(cli, config, "--name", "Parking permits").code == 0
    assert cli("--config", str(config), "client", "add", "--client-id", "https://app.example.org",
               "--redirect-uri", "https://app.example.org/cb").code == 0

    listed = cli("--config", str(config), "client", "list")
    assert listed.code == 0
    odd_file = file_name("https://app.example.org")
    assert odd_file.startswith("https___app.example.org-") and odd_file.endswith(".json")
    assert listed.out.splitlines() == [
        f"https://app.example.org  https://app.example.org  client_secret_basic  {odd_file}",
        "permits  Parking permits  client_secret_basic  permits.json",
    ]
    rows = cli("--config", str(config), "client", "list", "--json").json()
    assert [r["client_id"] for r in rows] == ["https://app.example.org", "permits"]
    assert all("client_secret_hash" not in r for r in rows)

    removed = cli("--config", str(config), "client", "remove", "permits")
    assert (removed.code, removed.out) == (0, f"removed {_folder(config) / 'permits.json'}\n")
    assert [r["client_id"] for r in cli("--config", str(config), "client", "list", "--json").json()] == [
        "https://app.example.org"]
    again = cli("--config", str(config), "client", "remove", "permits")
    assert (again.code, again.err) == (1, "broker: no OIDC client has client_id permits\n")


def test_list_reports_problems_and_remove_takes_a_broken_file(cli: Any, config: Path) -> None:
    _folder(config).mkdir(parents=True, exist_ok=True)
    (_folder(config) / "old.json").write_text(json.dumps({"client_id": "old", "redirect_uris": [CALLBACK],
                                                          "client_secret": "in the clear"}))

    listed = cli("--config", str(config), "client", "list", "--json")
    assert (listed.code, listed.json()) == (1, [])
    assert listed.err.startswith("problem: old.json: a plain client_secret must not be written in the file")
    check = cli("--config", str(config), "check", "--json")
    assert check.code == 1 and check.json()["problems"][0].startswith("old.json: a plain client_secret")

    removed = cli("--config", str(config), "client", "remove", "old")
    assert removed.code == 0
    assert not (_folder(config) / "old.json").exists()


@pytest.mark.parametrize(("extra", "message"), [
    (["--redirect-uri", "http://permits.city.example.org/cb"],
     "redirect_uris: 'http://permits.city.example.org/cb' must use https"),
    (["--redirect-uri", "https://permits.city.example.org/cb#x"], "must not have a fragment"),
    (["--redirect-uri", "com.example.permits:/cb"], "for native apps, which are public clients"),
    (["--redirect-uri", CALLBACK, "--scope", "profile"], "scope must include openid"),
    (["--redirect-uri", CALLBACK, "--auth-method", "private_key_jwt"], "needs the client's public keys"),
])
def test_add_refusals(cli: Any, config: Path, extra: list[str], message: str) -> None:
    result = cli("--config", str(config), "client", "add", "--client-id", "permits", *extra)

    assert result.code == 1
    assert result.err.startswith("broker: ") and message in result.err, result.err
    assert "client_secret:" not in result.out
    assert not _folder(config).exists() or list(_folder(config).iterdir()) == []


def test_add_refuses_to_overwrite_without_force_and_a_saml_entity_id(cli: Any, config: Path,
                                                                      sp_keys: SpKeys) -> None:
    first = _add(cli, config)
    again = _add(cli, config)
    assert again.code == 1
    assert again.err == (f"broker: {_folder(config) / 'permits.json'} exists; use --force to replace it "
                         "(and issue a new secret)\n")
    replaced = _add(cli, config, "--force")
    assert replaced.code == 0 and replaced.out.splitlines()[1] != first.out.splitlines()[1]  # a new secret

    entity_id = "https://sp.city.example.org"
    write_sp_metadata(config.parent / "metadata" / SP_FOLDER / "sp.xml", entity_id, sp_keys)
    clash = cli("--config", str(config), "client", "add", "--client-id", entity_id, "--redirect-uri", CALLBACK)
    assert (clash.code, clash.err) == (1, f"broker: {entity_id} is the entity id of a registered SAML SP; "
                                          "choose another client_id\n")


def test_a_jwks_file_that_cannot_be_read(cli: Any, config: Path, tmp_path: Path) -> None:
    result = _add(cli, config, "--auth-method", "private_key_jwt", "--jwks-file", str(tmp_path / "missing.json"))

    assert result.code == 1
    assert result.err.startswith(f"broker: cannot read --jwks-file {tmp_path / 'missing.json'}")


@pytest.fixture(scope="module")
def sp_keys(tmp_path_factory: pytest.TempPathFactory) -> SpKeys:
    from tests.sp_metadata import make_sp_keys

    return make_sp_keys(tmp_path_factory.mktemp("sp-keys"))
