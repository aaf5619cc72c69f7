"""Upstream registrations: JSON files in ``metadata/upstreams/`` that name a provider and where its secret
lives, never the secret itself."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from broker.keys.keyring import write_private
from broker.registry import RegistrationError, UpstreamRegistration, parse_registration
from broker.registry.upstreams import UPSTREAM_FOLDER, load_upstreams
from broker.upstream.presets import settings_for

SECRET = "client-secret-7f3a9c"
ENV = {"CITY_IDP_SECRET": SECRET}


def _raw(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {"name": "city-idp", "protocol": "oidc", "issuer": "https://idp.example.org",
                           "client_id": "broker", "client_secret_env": "CITY_IDP_SECRET"}
    raw.update(changes)
    return {k: v for k, v in raw.items() if v is not None}


def _refused(raw: dict[str, Any], tmp_path: Path, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(RegistrationError) as caught:
        parse_registration(raw, tmp_path, ENV if environ is None else environ)
    return str(caught.value)


def test_a_full_registration(tmp_path: Path) -> None:
    registration = parse_registration(
        _raw(display_name="City IdP", scopes=["openid", "email"], authorization_params={"prompt": "login"}),
        tmp_path, ENV, source=tmp_path / "city-idp.json")

    assert registration == UpstreamRegistration(
        name="city-idp", protocol="oidc", preset=None, display_name="City IdP", issuer="https://idp.example.org",
        client_id="broker", client_secret=SECRET, scopes=("openid", "email"),
        authorization_params=(("prompt", "login"),), source=tmp_path / "city-idp.json")
    assert SECRET not in repr(registration)


def test_secret_from_a_file_relative_to_the_instance_folder(tmp_path: Path) -> None:
    write_private(tmp_path / "certs" / "city.secret", f"{SECRET}\n".encode())
    raw = _raw(client_secret_env=None, client_secret_file="certs/city.secret")

    assert parse_registration(raw, tmp_path, {}).client_secret == SECRET
    # an absolute path is taken as it is
    absolute = _raw(client_secret_env=None, client_secret_file=str(tmp_path / "certs" / "city.secret"))
    assert parse_registration(absolute, tmp_path / "elsewhere", {}).client_secret == SECRET


def test_secret_from_the_environment_wins_over_a_file(tmp_path: Path) -> None:
    raw = _raw(client_secret_file="certs/missing.secret")

    assert parse_registration(raw, tmp_path, ENV).client_secret == SECRET


def test_a_secret_written_in_the_file_is_refused(tmp_path: Path) -> None:
    message = _refused(_raw(client_secret=SECRET), tmp_path)

    assert "must not be written in the file" in message
    assert SECRET not in message


def test_missing_environment_variable(tmp_path: Path) -> None:
    assert _refused(_raw(), tmp_path, {}) == (
        "the environment variable CITY_IDP_SECRET (client_secret_env) is not set")


def test_unreadable_secret_file_and_no_secret_at_all(tmp_path: Path) -> None:
    message = _refused(_raw(client_secret_env=None, client_secret_file="certs/none.secret"), tmp_path)
    assert message.startswith(f"cannot read client_secret_file {tmp_path / 'certs' / 'none.secret'}")

    # no secret at all: the registry leaves the judgement to the preset (Apple makes its own) ...
    registration = parse_registration(_raw(client_secret_env=None), tmp_path, {})
    assert registration.client_secret == ""
    # ... and every provider that needs one refuses it when the broker builds its settings
    with pytest.raises(ValueError, match="client_secret_env or client_secret_file is required"):
        settings_for(registration, redirect_uri="")


def test_an_empty_secret_is_refused(tmp_path: Path) -> None:
    assert "is empty" in _refused(_raw(), tmp_path, {"CITY_IDP_SECRET": ""})
    (tmp_path / "blank.secret").write_text("\n")
    assert "is empty" in _refused(_raw(client_secret_env=None, client_secret_file="blank.secret"), tmp_path)


@pytest.mark.parametrize("name", ["", "City", "-city", "_city", "a" * 64, "a/b", "../etc", "city idp", "città"])
def test_bad_names_are_refused(tmp_path: Path, name: str) -> None:
    assert _refused(_raw(name=name), tmp_path) == "name must be 1-63 lowercase letters, digits, '-' or '_'"


@pytest.mark.parametrize("name", ["a", "7", "city-idp_2", "a" * 63])
def test_good_names(tmp_path: Path, name: str) -> None:
    assert parse_registration(_raw(name=name), tmp_path, ENV).name == name


def test_a_registration_without_a_name(tmp_path: Path) -> None:
    raw = _raw()
    del raw["name"]
    assert "name must be" in _refused(raw, tmp_path)


def test_unknown_keys_are_refused(tmp_path: Path) -> None:
    assert _refused(_raw(issuer_url="https://x", clientId="y"), tmp_path) == "unknown settings: clientId, issuer_url"


def test_a_preset_without_issuer_is_accepted(tmp_path: Path) -> None:
    registration = parse_registration(_raw(name="google", preset="google", issuer=None), tmp_path, ENV)

    assert (registration.preset, registration.issuer) == ("google", None)


def test_no_issuer_and_no_preset_is_refused(tmp_path: Path) -> None:
    assert _refused(_raw(issuer=None), tmp_path) == "issuer is required unless a preset provides it"


@pytest.mark.parametrize(("changes", "message"), [
    ({"protocol": "ws-fed"}, "protocol must be one of oidc, oauth2, saml"),
    ({"protocol": "saml"}, "entity_id (the IdP's SAML entity ID) is required for protocol 'saml'"),
    ({"entity_id": "https://idp.example.org"}, "entity_id is for SAML upstreams (protocol 'saml')"),
    ({"client_id": ""}, "client_id is required"),
    ({"client_id": None}, "client_id is required"),
    ({"issuer": "idp.example.org"}, "issuer must be an https URL"),
    ({"scopes": "openid email"}, "scopes must be a list of strings"),
    ({"scopes": ["openid", 5]}, "scopes must be a list of strings"),
    ({"authorization_params": ["prompt"]}, "authorization_params must map names to strings"),
    ({"authorization_params": {"max_age": 60}}, "authorization_params must map names to strings"),
    # wrong JSON types are refused with a message, never a TypeError that would stop the whole registry
    ({"client_secret_env": ["CITY_IDP_SECRET"]}, "client_secret_env must be text"),
    ({"client_secret_env": None, "client_secret_file": 5}, "client_secret_file must be text"),
    ({"preset": ["google"]}, "preset must be text"),
    ({"display_name": 5, "client_id": 7}, "client_id, display_name must be text"),
])
def test_invalid_values(tmp_path: Path, changes: dict[str, Any], message: str) -> None:
    raw = _raw()
    raw.update(changes)
    raw = {k: v for k, v in raw.items() if v is not None}
    assert _refused(raw, tmp_path) == message


def _write(folder: Path, name: str, content: str | bytes) -> None:
    path = folder / UPSTREAM_FOLDER / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)


def test_load_upstreams_keeps_the_good_files_and_reports_the_others(tmp_path: Path) -> None:
    _write(tmp_path, "city-idp.json", json.dumps(_raw()))
    _write(tmp_path, "google.json", json.dumps(_raw(name="google", preset="google", issuer=None)))
    _write(tmp_path, "broken.json", '{"name": "broken",')
    _write(tmp_path, "list.json", json.dumps([_raw(name="listed")]))
    _write(tmp_path, "leaky.json", json.dumps(_raw(name="leaky", client_secret=SECRET)))
    _write(tmp_path, "twice.json", json.dumps(_raw()))  # the name city-idp again
    _write(tmp_path, "latin1.json", json.dumps(_raw(name="latin")).replace("broker", "br\u00f6ker").encode("latin-1"))
    _write(tmp_path, "typed.json", json.dumps(_raw(name="typed", preset=["google"])))
    _write(tmp_path, "notes.txt", "not a registration")

    found, problems = load_upstreams(tmp_path, tmp_path, ENV)

    assert sorted(found) == ["city-idp", "google"]
    assert found["city-idp"].source == tmp_path / UPSTREAM_FOLDER / "city-idp.json"
    by_file = {p.split(":", 1)[0]: p for p in problems}
    assert sorted(by_file) == ["broken.json", "latin1.json", "leaky.json", "list.json", "twice.json", "typed.json"]
    assert by_file["list.json"] == "list.json: the file must hold one JSON object"
    assert "must not be written in the file" in by_file["leaky.json"]
    assert SECRET not in "\n".join(problems)
    assert by_file["twice.json"] == "twice.json: the name 'city-idp' is registered twice"
    assert by_file["typed.json"] == "typed.json: preset must be text"


def test_load_upstreams_without_a_folder(tmp_path: Path) -> None:
    assert load_upstreams(tmp_path, tmp_path, ENV) == ({}, [])


def test_file_options_resolve_against_the_instance_folder(tmp_path: Path) -> None:
    raw = _raw(options={"private_key_file": "certs/AuthKey.p8", "team_id": "T", "other_file": "/abs/k.p8"})
    registration = parse_registration(raw, tmp_path, {"CITY_IDP_SECRET": "s"})
    assert registration.option("private_key_file") == str(tmp_path / "certs" / "AuthKey.p8")
    assert registration.option("other_file") == "/abs/k.p8"
    assert registration.option("team_id") == "T"


def test_a_saml_upstream_is_registered_by_entity_id(tmp_path: Path) -> None:
    registration = parse_registration({"name": "city", "protocol": "saml", "entity_id": "https://idp.city.example",
                                       "display_name": "City ID",
                                       "options": {"email_verified": "true", "request_binding": "post"}}, tmp_path)

    assert (registration.protocol, registration.issuer, registration.client_id) == (
        "saml", "https://idp.city.example", "")
    assert registration.option("email_verified") == "true"


@pytest.mark.parametrize(("changes", "message"), [
    ({"client_id": "x"}, "client_id: not used by SAML upstreams"),
    ({"options": {"allow_unsolicited": "yes"}}, 'options.allow_unsolicited must be "true" or "false"'),
    ({"options": {"request_binding": "artifact"}}, 'options.request_binding must be "redirect" or "post"'),
    ({"options": {"tenant": "x"}}, "options.tenant is not a SAML option"),
])
def test_saml_registration_problems(tmp_path: Path, changes: dict[str, Any], message: str) -> None:
    raw: dict[str, Any] = {"name": "city", "protocol": "saml", "entity_id": "https://idp.city.example", **changes}
    with pytest.raises(RegistrationError) as refused:
        parse_registration(raw, tmp_path)
    assert str(refused.value).startswith(message)
