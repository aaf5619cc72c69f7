"""The ``broker`` command, driven in-process through ``broker.cli.main.main`` (plus one run of the installed
console script): exit 0 on success, 1 when the work failed or found problems, 2 for a usage error."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import xmlsec
from lxml import etree  # type: ignore[import-untyped]

from broker.cli.main import main
from broker.config.settings import load_settings
from broker.keys.keyring import load_keyring
from broker.registry.saml_sps import SP_FOLDER, load_sp_catalog
from broker.registry.upstreams import UPSTREAM_FOLDER
from broker.storage.migrate import current_revision, head_revision
from tests.cli_support import Result, clean_environment  # noqa: F401 - an autouse fixture
from tests.flows.saml_peers import SpKeys
from tests.sp_metadata import make_sp_keys, sp_metadata, write_sp_metadata

PERMITS = "https://permits.city.example.org"
LIBRARY = "https://library.city.example.org"
MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"
DEMO_APP = "http://127.0.0.1:5002/metadata"


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Any:
    def run(*argv: str) -> Result:
        capsys.readouterr()  # drop whatever came before
        code = main(list(argv))
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return run


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Instances made once by ``broker init`` (keys take a while); each test works on a copy."""
    folder = tmp_path_factory.mktemp("templates")
    assert main(["init", str(folder / "plain")]) == 0
    assert main(["init", str(folder / "demo"), "--demo"]) == 0
    return {"plain": folder / "plain", "demo": folder / "demo"}


def _copy(template: Path, tmp_path: Path) -> Path:
    target = tmp_path / "instance"
    shutil.copytree(template, target)  # copy2 keeps the 0600 modes
    return target / "broker.toml"


@pytest.fixture
def config(templates: dict[str, Path], tmp_path: Path) -> Path:
    return _copy(templates["plain"], tmp_path)


@pytest.fixture
def demo_config(templates: dict[str, Path], tmp_path: Path) -> Path:
    return _copy(templates["demo"], tmp_path)


@pytest.fixture(scope="module")
def sp_keys(tmp_path_factory: pytest.TempPathFactory) -> SpKeys:
    return make_sp_keys(tmp_path_factory.mktemp("sp-keys"))


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _sp_files(config: Path) -> list[str]:
    return sorted(p.name for p in (config.parent / "metadata" / SP_FOLDER).iterdir())


def _upstream_files(config: Path) -> list[str]:
    return sorted(p.name for p in (config.parent / "metadata" / UPSTREAM_FOLDER).iterdir())


# -- init ---------------------------------------------------------------------------------------------------------


def test_init_creates_a_complete_instance(run: Any, tmp_path: Path) -> None:
    folder = tmp_path / "city"

    result = run("init", str(folder))

    assert result.code == 0
    config = folder / "broker.toml"
    assert f"created {config}" in result.out
    assert f"broker --config {config} run" in result.out
    certs = folder / "certs"
    for private in ("signing.key", "session.secret", "pairwise.secret", "claims.key"):
        assert _mode(certs / private) == 0o600, private
    load_keyring(certs)  # a PEM key and certificate that belong together in form
    settings = load_settings(config, {})
    assert settings.instance_dir == folder
    assert settings.base_url == "http://127.0.0.1:5000"
    assert len(settings.secret_key) >= 32 and len(settings.pairwise_secret) >= 32
    assert settings.secret_key != settings.pairwise_secret
    # the secrets are in certs/, not in the config file
    text = config.read_text()
    assert settings.secret_key.decode() not in text and settings.pairwise_secret.decode() not in text
    [claims_key] = settings.claims_keys  # certs/claims.key: 32 random bytes, written as hex
    assert len(claims_key) == 32 and claims_key.hex() not in text
    assert settings.database_url == f"sqlite:///{folder / 'broker.db'}"
    assert current_revision(settings.database_url) == head_revision() is not None
    assert _sp_files(config) == [] and _upstream_files(config) == []
    assert settings.demo.enabled is False


def test_init_again_refuses_without_force(run: Any, tmp_path: Path) -> None:
    folder = tmp_path / "city"
    assert run("init", str(folder)).code == 0
    config = folder / "broker.toml"
    config.write_text(config.read_text().replace("sso_session_hours = 8", "sso_session_hours = 9"))
    key = (folder / "certs" / "signing.key").read_bytes()

    again = run("init", str(folder))

    assert again.code == 1
    assert again.err == (f"broker: {config} already exists; use --force to overwrite it (keys are kept)\n")
    assert "sso_session_hours = 9" in config.read_text()

    forced = run("init", str(folder), "--force", "--base-url", "https://login.city.example.org")
    assert forced.code == 0
    assert "sso_session_hours = 8" in config.read_text()
    assert load_settings(config, {}).base_url == "https://login.city.example.org"
    assert (folder / "certs" / "signing.key").read_bytes() == key


def test_init_migrates_the_database_the_broker_will_use(run: Any, tmp_path: Path) -> None:
    folder = tmp_path / "city"

    result = run("init", str(folder), "--database-url", "sqlite:///state/city.db")

    assert result.code == 0, result.err
    settings = load_settings(folder / "broker.toml", {})
    assert settings.database_url == f"sqlite:///{folder / 'state' / 'city.db'}"
    assert current_revision(settings.database_url) == head_revision()
    # relative to the instance, not to the working directory
    assert list(Path.cwd().iterdir()) == []


def test_init_refuses_settings_the_broker_would_refuse(run: Any, tmp_path: Path) -> None:
    result = run("init", str(tmp_path / "city"), "--base-url", "http://login.city.example.org")

    assert result.code == 1
    assert "base_url must use https (plain http is allowed only on localhost)" in result.err


def test_init_reports_a_database_it_cannot_open(run: Any, tmp_path: Path) -> None:
    outside = tmp_path / "absent" / "city.db"  # outside the instance: its folder is not created

    result = run("init", str(tmp_path / "city"), "--database-url", f"sqlite:///{outside}")

    assert result.code == 1
    assert result.err.startswith("broker: database error: ")
    assert "unable to open database file" in result.err


def test_init_demo_registers_the_demo_app_and_provider(run: Any, demo_config: Path) -> None:
    folder = demo_config.parent
    settings = load_settings(demo_config, {})
    assert settings.demo.enabled is True

    catalog = load_sp_catalog(settings.metadata_dir)
    assert catalog.problems == ()
    assert list(catalog.sps) == [DEMO_APP]
    assert catalog.sps[DEMO_APP].source == folder / "metadata" / SP_FOLDER / "demo-app.xml"
    assert catalog.sps[DEMO_APP].acs_post_urls
    registration = json.loads((folder / "metadata" / UPSTREAM_FOLDER / "demo.json").read_text())
    assert registration["issuer"] == "http://127.0.0.1:5001"
    assert registration["client_secret_file"] == "certs/demo-client.secret"
    assert "client_secret" not in registration
    assert _mode(folder / "certs" / "demo-client.secret") == 0o600

    check = run("--config", str(demo_config), "check", "--json")
    assert check.code == 0
    assert check.json() == {"saml_sps": [DEMO_APP], "upstreams": ["demo"], "oidc_clients": [], "problems": []}


# -- check --------------------------------------------------------------------------------------------------------


def test_check_a_clean_instance_then_a_broken_file(run: Any, config: Path) -> None:
    clean = run("--config", str(config), "check", "--json")
    assert clean.code == 0
    assert clean.json() == {"saml_sps": [], "upstreams": [], "oidc_clients": [], "problems": []}

    (config.parent / "metadata" / SP_FOLDER / "broken.xml").write_text("<md:EntityDescriptor entityID=")

    broken = run("--config", str(config), "check", "--json")
    assert broken.code == 1
    report = broken.json()
    assert report["saml_sps"] == []
    [problem] = report["problems"]
    assert problem.startswith("broken.xml: not usable SAML metadata")

    text = run("--config", str(config), "check")
    assert text.code == 1
    assert text.out.splitlines() == ["0 SAML SPs, 0 upstreams, 0 OIDC clients", f"problem: {problem}"]


def test_check_reports_a_private_key_readable_by_others(run: Any, config: Path) -> None:
    key = config.parent / "certs" / "signing.key"
    key.chmod(0o644)

    result = run("--config", str(config), "check")

    assert result.code == 1
    assert result.err == f"broker: {key} is readable by other users; run: chmod 600 {key}\n"


def test_check_without_a_config(run: Any) -> None:
    result = run("check")  # ./broker.toml in an empty working directory

    assert result.code == 1
    assert "broker.toml does not exist; create an instance with 'broker init'" in result.err
    assert result.out == ""


# -- sp -----------------------------------------------------------------------------------------------------------


def test_sp_add_list_remove(run: Any, config: Path, sp_keys: SpKeys, tmp_path: Path) -> None:
    source = write_sp_metadata(tmp_path / "downloads" / "permits-metadata.xml", PERMITS, sp_keys,
                               display_name="Parking permits")

    added = run("--config", str(config), "sp", "add", str(source), "--json")

    assert added.code == 0
    target = config.parent / "metadata" / SP_FOLDER / "permits-metadata.xml"
    assert added.json() == [{"entity_id": PERMITS, "name": "Parking permits", "file": str(target)}]
    assert target.read_bytes() == source.read_bytes()

    listed = run("--config", str(config), "sp", "list", "--json")
    assert listed.code == 0
    assert listed.json() == [{"entity_id": PERMITS, "name": "Parking permits", "file": "permits-metadata.xml",
                              "claims": ["email", "family_name", "given_name"], "allowed_upstreams": [],
                              "default_upstream": None, "required_acr": None}]
    assert run("--config", str(config), "check", "--json").json()["saml_sps"] == [PERMITS]

    removed = run("--config", str(config), "sp", "remove", PERMITS)
    assert removed.code == 0
    assert removed.out == f"removed {target}\n"
    assert _sp_files(config) == []
    assert run("--config", str(config), "sp", "list", "--json").json() == []

    again = run("--config", str(config), "sp", "remove", PERMITS)
    assert again.code == 1
    assert again.err == f"broker: no registered SP has entity id {PERMITS}\n"


def test_sp_add_takes_a_file_without_xml_suffix_and_a_name(run: Any, config: Path, sp_keys: SpKeys,
                                                           tmp_path: Path) -> None:
    source = tmp_path / "metadata"  # as downloaded from https://.../metadata
    source.write_text(sp_metadata(PERMITS, sp_keys))

    assert run("--config", str(config), "sp", "add", str(source)).code == 0
    assert _sp_files(config) == ["metadata.xml"]

    named = run("--config", str(config), "sp", "add", str(source), "--name", "permits.xml", "--json")
    # the same entity under a second file name would be registered twice
    assert named.code == 1
    assert named.err == (f"broker: {PERMITS} is already registered by metadata.xml; replace that file "
                         "(--name metadata) or remove it first\n")
    assert _sp_files(config) == ["metadata.xml"]


@pytest.mark.parametrize(("content", "message"), [
    ("<md:EntityDescriptor xmlns:md='urn:oasis:names:tc:SAML:2.0:metadata'", "not well-formed XML"),
    ("<html><body>Not found</body></html>", "describes no SAML service provider"),
    ('<!DOCTYPE x [<!ENTITY e "x">]><x>&e;</x>', "carries a DOCTYPE"),
])
def test_sp_add_refuses_what_is_not_sp_metadata(run: Any, config: Path, tmp_path: Path, content: str,
                                                 message: str) -> None:
    source = tmp_path / "candidate.xml"
    source.write_text(content)

    result = run("--config", str(config), "sp", "add", str(source), "--json")

    assert result.code == 1
    assert result.err.startswith("broker: ")
    assert message in result.err
    assert result.out == ""
    assert _sp_files(config) == []


def test_sp_add_refuses_a_missing_file_and_a_bad_name(run: Any, config: Path, sp_keys: SpKeys,
                                                       tmp_path: Path) -> None:
    missing = run("--config", str(config), "sp", "add", str(tmp_path / "none.xml"))
    assert (missing.code, missing.err) == (1, f"broker: {tmp_path / 'none.xml'} does not exist\n")

    source = write_sp_metadata(tmp_path / "permits.xml", PERMITS, sp_keys)
    for name in ("../outside", "sub/permits", ".hidden"):
        result = run("--config", str(config), "sp", "add", str(source), "--name", name)
        assert result.code == 1, name
        assert "is not a plain file name" in result.err
    assert _sp_files(config) == []
    assert not (config.parent / "metadata" / "outside.xml").exists()


def test_sp_add_replaces_the_same_sp_but_not_another_one(run: Any, config: Path, sp_keys: SpKeys,
                                                         tmp_path: Path) -> None:
    first = write_sp_metadata(tmp_path / "a" / "metadata.xml", PERMITS, sp_keys, display_name="Permits")
    updated = write_sp_metadata(tmp_path / "b" / "metadata.xml", PERMITS, sp_keys, display_name="Permits v2")
    other = write_sp_metadata(tmp_path / "c" / "metadata.xml", LIBRARY, sp_keys)
    assert run("--config", str(config), "sp", "add", str(first)).code == 0

    assert run("--config", str(config), "sp", "add", str(updated)).code == 0  # an update of the same SP
    assert run("--config", str(config), "sp", "list", "--json").json()[0]["name"] == "Permits v2"

    clash = run("--config", str(config), "sp", "add", str(other))  # another SP's file of the same name
    assert clash.code == 1
    assert f"exists and registers {PERMITS}" in clash.err
    assert [sp["entity_id"] for sp in run("--config", str(config), "sp", "list", "--json").json()] == [PERMITS]

    assert run("--config", str(config), "sp", "add", str(other), "--name", "library").code == 0
    listed = run("--config", str(config), "sp", "list", "--json").json()
    assert sorted(sp["entity_id"] for sp in listed) == [LIBRARY, PERMITS]


def test_sp_list_reports_problems_on_stderr(run: Any, config: Path, sp_keys: SpKeys) -> None:
    write_sp_metadata(config.parent / "metadata" / SP_FOLDER / "permits.xml", PERMITS, sp_keys)
    (config.parent / "metadata" / SP_FOLDER / "broken.xml").write_text("<broken")

    result = run("--config", str(config), "sp", "list", "--json")

    assert result.code == 1
    assert [sp["entity_id"] for sp in result.json()] == [PERMITS]  # stdout stays JSON
    assert result.err.startswith("problem: broken.xml: not usable SAML metadata")


# -- upstream -----------------------------------------------------------------------------------------------------


def test_upstream_add_with_a_secret_from_the_environment(run: Any, config: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOME_ENV", "the-client-secret-value")

    result = run("--config", str(config), "upstream", "add", "city-idp", "--issuer", "https://idp.example.org",
                 "--client-id", "x", "--client-secret-env", "SOME_ENV", "--json")

    assert result.code == 0
    target = config.parent / "metadata" / UPSTREAM_FOLDER / "city-idp.json"
    assert result.json() == [{"name": "city-idp", "file": str(target)}]
    text = target.read_text()
    assert "the-client-secret-value" not in text
    assert json.loads(text) == {"name": "city-idp", "protocol": "oidc", "client_id": "x",
                                "issuer": "https://idp.example.org", "client_secret_env": "SOME_ENV"}
    check = run("--config", str(config), "check", "--json")
    assert (check.code, check.json()["upstreams"]) == (0, ["city-idp"])

    again = run("--config", str(config), "upstream", "add", "city-idp", "--issuer", "https://idp2.example.org",
                "--client-id", "y", "--client-secret-env", "SOME_ENV")
    assert again.code == 1
    assert again.err == f"broker: {target} exists; use --force to replace it\n"
    assert json.loads(target.read_text())["client_id"] == "x"


def test_upstream_add_refuses_an_unset_environment_variable(run: Any, config: Path) -> None:
    result = run("--config", str(config), "upstream", "add", "city-idp", "--issuer", "https://idp.example.org",
                 "--client-id", "x", "--client-secret-env", "UNSET_SECRET_VARIABLE")

    assert result.code == 1
    assert result.err == "broker: the environment variable UNSET_SECRET_VARIABLE (client_secret_env) is not set\n"
    assert _upstream_files(config) == []


def test_upstream_add_with_a_preset_needs_no_issuer(run: Any, config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_CLIENT_SECRET", "g-secret")

    result = run("--config", str(config), "upstream", "add", "google", "--preset", "google",
                 "--client-id", "1234.apps.googleusercontent.com", "--client-secret-env", "GOOGLE_CLIENT_SECRET")

    assert result.code == 0
    listed = run("--config", str(config), "upstream", "list", "--json")
    assert listed.code == 0
    assert listed.json() == [{"name": "google", "protocol": "oidc", "preset": "google", "issuer": None,
                              "client_id": "1234.apps.googleusercontent.com"}]
    check = run("--config", str(config), "check", "--json")
    assert (check.code, check.json()["upstreams"]) == (0, ["google"])


@pytest.mark.parametrize(("extra", "message"), [
    (["--preset", "nope"], "broker: unknown preset 'nope'; known: apple, github, google, microsoft\n"),
    (["--issuer", "http://idp.example.org"], "must be an https URL"),  # the adapter would refuse it
    (["--issuer", "https://idp.example.org", "--scope", "email"], "scopes must include 'openid'"),
    (["--issuer", "https://idp.example.org", "--client-secret-file", "certs/none.secret"],
     "cannot read client_secret_file"),
])
def test_upstream_add_refusals(run: Any, config: Path, extra: list[str], message: str) -> None:
    secret = [] if "--client-secret-file" in extra else ["--client-secret-file", "certs/session.secret"]

    result = run("--config", str(config), "upstream", "add", "city-idp", "--client-id", "x", *secret, *extra)

    assert result.code == 1
    assert message in result.err
    assert _upstream_files(config) == []


def test_upstream_list_remove_and_presets(run: Any, demo_config: Path) -> None:
    listed = run("--config", str(demo_config), "upstream", "list", "--json")
    assert listed.code == 0
    assert listed.json() == [{"name": "demo", "protocol": "oidc", "preset": None, "issuer": "http://127.0.0.1:5001",
                              "client_id": "broker-demo"}]

    presets = run("upstream", "presets", "--json")  # needs no instance
    assert presets.code == 0
    google = next(p for p in presets.json() if p["preset"] == "google")
    assert google == {"preset": "google", "protocol": "oidc", "issuer": "https://accounts.google.com",
                      "display_name": "Google", "options": google["options"]}

    removed = run("--config", str(demo_config), "upstream", "remove", "demo")
    assert removed.code == 0
    assert _upstream_files(demo_config) == []
    gone = run("--config", str(demo_config), "upstream", "remove", "demo")
    assert (gone.code, gone.err) == (1, "broker: no upstream named demo\n")


def test_upstream_remove_finds_a_file_named_differently(run: Any, demo_config: Path) -> None:
    folder = demo_config.parent / "metadata" / UPSTREAM_FOLDER
    (folder / "demo.json").rename(folder / "demo-provider-2024.json")

    result = run("--config", str(demo_config), "upstream", "remove", "demo")

    assert result.code == 0
    assert result.out == f"removed {folder / 'demo-provider-2024.json'}\n"
    assert _upstream_files(demo_config) == []


def test_upstream_list_keeps_stdout_json_when_a_file_is_broken(run: Any, demo_config: Path) -> None:
    (demo_config.parent / "metadata" / UPSTREAM_FOLDER / "broken.json").write_text('{"name": "broken"')

    result = run("--config", str(demo_config), "upstream", "list", "--json")

    assert result.code == 1
    assert [row["name"] for row in result.json()] == ["demo"]
    assert result.err.startswith("problem: broken.json: ")


# -- metadata -----------------------------------------------------------------------------------------------------


def _verify_signature(xml: str, cert_file: Path) -> Any:
    root = etree.fromstring(xml.encode())
    xmlsec.tree.add_ids(root, ["ID"])
    signature = xmlsec.tree.find_node(root, xmlsec.constants.NodeSignature)
    context = xmlsec.SignatureContext()
    context.key = xmlsec.Key.from_file(str(cert_file), xmlsec.constants.KeyDataFormatCertPem)
    context.verify(signature)
    return root


def test_metadata_idp_is_signed_by_the_broker(run: Any, demo_config: Path, tmp_path: Path) -> None:
    settings = load_settings(demo_config, {})
    keys = load_keyring(settings.certs_dir)

    result = run("--config", str(demo_config), "metadata", "idp")

    assert result.code == 0
    root = _verify_signature(result.out, keys.cert_file)
    assert root.tag == f"{{{MD}}}EntityDescriptor"
    assert root.get("entityID") == settings.saml.idp_entity_id
    assert root.find(f"{{{DS}}}Signature") is not None
    certificates = {c.text.replace("\n", "") for c in root.iter(f"{{{DS}}}X509Certificate")}
    assert keys.cert_base64() in certificates
    sso = root.find(f"{{{MD}}}IDPSSODescriptor/{{{MD}}}SingleSignOnService")
    assert sso is not None and sso.get("Location", "").startswith(settings.base_url + "/saml2/idp/sso")
    # the signature covers the document: a changed entityID no longer verifies
    forged = result.out.replace(f'entityID="{settings.saml.idp_entity_id}"', 'entityID="https://evil.example.org"')
    with pytest.raises(xmlsec.Error):
        _verify_signature(forged, keys.cert_file)

    output = tmp_path / "idp-metadata.xml"
    written = run("--config", str(demo_config), "metadata", "idp", "--output", str(output))
    assert (written.code, written.out) == (0, "")
    assert _verify_signature(output.read_text(), keys.cert_file).get("entityID") == settings.saml.idp_entity_id

    unwritable = run("--config", str(demo_config), "metadata", "idp", "--output", str(tmp_path / "no" / "x.xml"))
    assert unwritable.code == 1
    assert unwritable.err.startswith(f"broker: cannot write {tmp_path / 'no' / 'x.xml'}")


# -- usage errors and the installed command -----------------------------------------------------------------------


@pytest.mark.parametrize("argv", [
    [],
    ["bogus"],
    ["sp"],
    ["upstream", "add", "--issuer", "https://idp.example.org"],  # no name
    ["upstream", "add", "x", "--client-id", "x", "--client-secret-env", "A", "--client-secret-file", "b"],
    ["metadata", "nope"],
    ["run", "--port", "eighty"],
])
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)

    assert caught.value.code == 2
    assert "usage: broker" in capsys.readouterr().err


def test_the_installed_console_script(demo_config: Path) -> None:
    # the script installed beside this interpreter (the venv's), else the one on PATH
    script = shutil.which("broker", path=str(Path(sys.executable).parent)) or shutil.which("broker")
    assert script is not None, "the broker console script is not installed"

    completed = subprocess.run([script, "--config", str(demo_config), "check", "--json"],
                               capture_output=True, text=True, timeout=120, check=False)

    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout) == {"saml_sps": [DEMO_APP], "upstreams": ["demo"], "oidc_clients": [],
                                            "problems": []}


def test_purge_deletes_only_expired_state(run: Any, config: Path) -> None:
    from datetime import timedelta

    from broker.config.settings import load_settings
    from broker.core.model import utcnow
    from broker.core.pending_kinds import Kind
    from broker.storage import SqlPendingStore, create_engine_for
    from broker.storage.sealing import Sealer

    settings = load_settings(config, environ={})
    engine = create_engine_for(settings.database_url)
    try:
        pending = SqlPendingStore(engine, Sealer(settings.claims_keys))
        now = utcnow()
        old = pending.put(Kind.LOGIN, "{}", now - timedelta(seconds=1))
        live = pending.put(Kind.LOGIN, "{}", now + timedelta(minutes=5))

        result = run("--config", str(config), "purge", "--json")

        assert result.code == 0
        assert result.json() == {"pending_states": 1, "grants_and_tokens": 0, "login_history": 0}
        assert pending.peek(Kind.LOGIN, live, now) == "{}"
        assert pending.take(Kind.LOGIN, old, now - timedelta(minutes=1)) is None
    finally:
        engine.dispose()


def test_upstream_add_a_saml_idp_by_entity_id(run: Any, config: Path) -> None:
    result = run("--config", str(config), "upstream", "add", "city", "--entity-id", "https://idp.city.example/idp",
                 "--display-name", "City ID", "--option", "email_verified=true")

    assert result.code == 0, result.err
    listed = run("--config", str(config), "upstream", "list", "--json")
    assert listed.json() == [{"name": "city", "protocol": "saml", "preset": None,
                              "issuer": "https://idp.city.example/idp", "client_id": ""}]


@pytest.mark.parametrize(("extra", "message"), [
    (["--entity-id", "https://idp.city.example", "--client-id", "x"], "--client-id: not used with --entity-id"),
    (["--entity-id", "https://idp.city.example", "--option", "email_verified=maybe"],
     'options.email_verified must be "true" or "false"'),
    ([], "--client-id is required (or --entity-id for a SAML IdP)"),
])
def test_upstream_add_saml_refusals(run: Any, config: Path, extra: list[str], message: str) -> None:
    result = run("--config", str(config), "upstream", "add", "city", *extra)

    assert result.code == 1 and message in result.err
    assert _upstream_files(config) == []


def test_metadata_sp_prints_the_signed_sp_metadata(run: Any, config: Path) -> None:
    result = run("--config", str(config), "metadata", "sp")

    assert result.code == 0
    assert "SPSSODescriptor" in result.out and 'AuthnRequestsSigned="true"' in result.out
    assert "/saml2/sp/acs" in result.out and "SignatureValue" in result.out


def test_metadata_sources_reports_each_source_and_its_problems(run: Any, config: Path) -> None:
    from tests.registry.aggregate import make_aggregate, session_material

    folder = config.parent / "metadata" / "saml-idp"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "city.xml").write_bytes(make_aggregate(3, None, session_material().certs))
    (folder / "broken.xml").write_bytes(b"<not-metadata/>")

    result = run("--config", str(config), "metadata", "sources", "--refresh", "--json")

    assert result.code == 1  # the broken file is a problem; the good one still loads
    report = result.json()
    assert report["identity_providers"] == 3
    assert {s["name"]: s["entities"] for s in report["sources"]} == {"saml-idp/broken": 0, "saml-idp/city": 3}
    assert any("saml-idp/broken" in p for p in report["problems"])


def test_keys_rotate_steps_and_refusals(run: Any, config: Path) -> None:
    assert run("--config", str(config), "keys", "rotate", "status", "--json").json()["phase"] == "steady"
    refused = run("--config", str(config), "keys", "rotate", "switch")
    assert refused.code == 1 and "no keys are staged" in refused.err

    assert run("--config", str(config), "keys", "rotate", "stage").code == 0
    early = run("--config", str(config), "keys", "rotate", "switch")
    assert early.code == 1 and "switch after" in early.err
    switched = run("--config", str(config), "keys", "rotate", "switch", "--force", "--json")
    assert switched.code == 0 and switched.json()["phase"] == "grace"
    assert run("--config", str(config), "keys", "rotate", "retire", "--force", "--json").json()["phase"] == "steady"
    listed = run("--config", str(config), "audit", "list", "--json")
    reasons = [record["reason"] for record in listed.json() if record["kind"] == "key-rotated"]
    assert len(reasons) == 3
