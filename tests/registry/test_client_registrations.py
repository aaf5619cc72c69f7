"""``preview_client``, ``diff_client``, ``apply_client`` and ``remove_client``: RFC 7591 §2 client metadata,
validated as the registry loads a client file, compared with the registration it replaces, and written in one
step; a refusal writes nothing."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import ECKey

from broker.oidc.client import hash_secret
from broker.registry.client_registrations import apply_client, diff_client, preview_client, remove_client
from broker.registry.oidc_clients import CLIENT_FOLDER
from broker.registry.registrations import NotRegistered, RegistrationRefused
from broker.registry.saml_sps import SP_FOLDER
from tests.flows.saml_peers import SpKeys
from tests.registry.registration_support import files_in, make_metadata_dir, registry_over
from tests.sp_metadata import write_sp_metadata

CALLBACK = "https://permits.city.example.org/oidc/callback"
SECRET_HASH = hash_secret("s" * 43)


@pytest.fixture
def metadata_dir(tmp_path: Path) -> Path:
    return make_metadata_dir(tmp_path)


def _metadata(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {"client_id": "permits", "client_name": "Parking permits", "redirect_uris": [CALLBACK],
                           "client_secret_hash": SECRET_HASH}
    raw.update(changes)
    return {k: v for k, v in raw.items() if v is not None}


def _applied(metadata_dir: Path, **changes: Any) -> None:
    apply_client(metadata_dir, preview_client(metadata_dir, _metadata(**changes)), replace_file=True)


def test_a_preview_is_the_client_the_registry_will_load(metadata_dir: Path) -> None:
    for given in (_metadata(), json.dumps(_metadata()), json.dumps(_metadata()).encode()):
        preview = preview_client(metadata_dir, given)

        assert (preview.problems, preview.file, preview.current, preview.exists) == ((), "permits.json", None, False)
        assert preview.client is not None
        assert (preview.client.client_id, preview.client.redirect_uris) == ("permits", (CALLBACK,))
        assert preview.client.source == f"metadata/{CLIENT_FOLDER}/permits.json"


@pytest.mark.parametrize(("metadata", "message"), [
    (b"{not json", "client metadata is not JSON"),
    (b"\xff\xfe\xfa", "client metadata must be UTF-8 JSON text"),
    ("[1, 2]", "client metadata must be a JSON object"),
    ("[" * 100_000, "client metadata is not JSON"),
    (_metadata(redirect_uris=["http://permits.city.example.org/cb"]), "must use https"),
    (_metadata(client_secret_hash=None, client_secret="in the clear"), "a plain client_secret must not be written"),
    (_metadata(client_secret_hash=None), "client_secret_basic needs client_secret_hash"),
    (_metadata(scope="profile"), "scope must include openid"),
    (_metadata(client_id=None), "client_id is required"),
    ({"client_id": "permits", "redirect_uris": [CALLBACK], "extra": {1, 2}}, "client metadata is not JSON-shaped"),
])
def test_every_kind_of_invalid_metadata_gives_problems_never_an_exception(metadata_dir: Path, metadata: Any,
                                                                        message: str) -> None:
    preview = preview_client(metadata_dir, metadata)

    assert preview.client is None
    assert message in "; ".join(preview.problems), preview.problems


def test_clashes_are_found(metadata_dir: Path, sp_keys: SpKeys) -> None:
    (metadata_dir / CLIENT_FOLDER / "by-hand.json").write_text(json.dumps(_metadata()))
    entity_id = "https://sp.city.example.org"
    write_sp_metadata(metadata_dir / SP_FOLDER / "sp.xml", entity_id, sp_keys)

    taken = preview_client(metadata_dir, _metadata())
    saml = preview_client(metadata_dir, _metadata(client_id=entity_id))

    assert (taken.taken_by, taken.saml_entity) == (f"metadata/{CLIENT_FOLDER}/by-hand.json", False)
    assert (saml.taken_by, saml.saml_entity) == (None, True)
    for preview in (taken, saml):
        before = files_in(metadata_dir)
        with pytest.raises(RegistrationRefused):
            apply_client(metadata_dir, preview, replace_file=True)
        assert files_in(metadata_dir) == before


@pytest.mark.parametrize(("changes", "fields"), [
    ({"client_name": "Permits"}, ["client_name"]),
    ({"redirect_uris": [CALLBACK, CALLBACK + "2"]}, ["redirect_uris"]),
    ({"scope": "openid email offline_access", "grant_types": ["authorization_code", "refresh_token"]},
     ["grant_types", "scope"]),
    ({"client_secret_hash": hash_secret("t" * 43)}, ["client_secret_hash"]),
    ({"allowed_upstreams": ["city"], "default_upstream": "city"}, ["allowed_upstreams", "default_upstream"]),
    ({"backchannel_logout_uri": "https://permits.city.example.org/logout"},
     ["backchannel_logout_uri", "backchannel_logout_session_required"]),
    ({"token_endpoint_auth_method": "private_key_jwt", "client_secret_hash": None,
      "jwks": {"keys": [ECKey.generate_key("P-256").as_dict(private=False)]}},
     ["token_endpoint_auth_method", "client_secret_hash", "jwks"]),
])
def test_each_member_that_changes_shows(metadata_dir: Path, changes: dict[str, Any], fields: list[str]) -> None:
    _applied(metadata_dir)

    preview = preview_client(metadata_dir, _metadata(**changes))

    assert preview.current is not None and preview.client is not None
    assert [c.field for c in preview.changes] == fields
    assert all(c.party == "permits" and c.before != c.after for c in preview.changes)
    assert diff_client(preview.current, preview.current) == ()


def test_keys_show_by_thumbprint_and_the_secret_never(metadata_dir: Path) -> None:
    key = ECKey.generate_key("P-256")
    preview = preview_client(metadata_dir, _metadata(token_endpoint_auth_method="private_key_jwt",
                                                     client_secret_hash=None,
                                                     jwks={"keys": [key.as_dict(private=False)]}))
    with_secret = preview_client(metadata_dir, _metadata())

    shown = {c.field: c.after for c in preview.changes}
    assert shown["jwks"] == f"key {key.thumbprint()}"
    hashed = {c.field: c.after for c in with_secret.changes}["client_secret_hash"]
    assert hashed is not None and hashed.startswith("hashed (") and SECRET_HASH not in hashed
    assert all(c.before is None for c in preview.changes)


def test_apply_writes_the_file_the_registry_serves_after_its_reload(metadata_dir: Path) -> None:
    registry = registry_over(metadata_dir)
    assert registry.oidc_client("permits") is None

    client = apply_client(metadata_dir, preview_client(metadata_dir, _metadata()))

    assert registry.oidc_client("permits") == client
    written = json.loads((metadata_dir / CLIENT_FOLDER / "permits.json").read_text())
    assert written["client_secret_hash"] == SECRET_HASH
    assert list(files_in(metadata_dir)) == [f"{CLIENT_FOLDER}/permits.json"]  # no temporary file left


def test_a_refused_apply_writes_nothing(metadata_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _applied(metadata_dir)
    before = files_in(metadata_dir)

    with pytest.raises(RegistrationRefused, match=re.escape("must use https")):
        apply_client(metadata_dir, preview_client(metadata_dir, _metadata(redirect_uris=["http://x.example.org"])))
    with pytest.raises(RegistrationRefused, match=re.escape("permits.json exists")):
        apply_client(metadata_dir, preview_client(metadata_dir, _metadata(client_name="Permits")))

    def full_disk(source: str, target: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError, match=re.escape("No space left")):
        _applied(metadata_dir, client_name="Permits")
    assert files_in(metadata_dir) == before


def test_remove_takes_a_registered_or_a_skipped_file(metadata_dir: Path) -> None:
    _applied(metadata_dir)
    (metadata_dir / CLIENT_FOLDER / "old.json").write_text(json.dumps({**_metadata(client_id="old"),
                                                                       "client_secret": "in the clear"}))
    registry = registry_over(metadata_dir)
    assert registry.oidc_client("permits") is not None

    assert remove_client(metadata_dir, "permits") == metadata_dir / CLIENT_FOLDER / "permits.json"
    assert remove_client(metadata_dir, "old") == metadata_dir / CLIENT_FOLDER / "old.json"

    assert registry.oidc_client("permits") is None
    assert files_in(metadata_dir) == {}
    with pytest.raises(NotRegistered, match=re.escape("no OIDC client has client_id permits")):
        remove_client(metadata_dir, "permits")


def test_remove_refuses_when_several_skipped_files_name_the_client(metadata_dir: Path) -> None:
    for name in ("a.json", "b.json"):
        (metadata_dir / CLIENT_FOLDER / name).write_text(json.dumps({"client_id": "twice"}))

    with pytest.raises(RegistrationRefused, match=re.escape("several files register twice: a.json, b.json")):
        remove_client(metadata_dir, "twice")
