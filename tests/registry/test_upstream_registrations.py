"""``preview_upstream``, ``diff_upstream``, ``apply_upstream`` and ``remove_upstream``: an upstream's registration
document, validated as the registry and the adapter will, compared with its file today, and written in one step."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from broker.registry.registrations import Change, NotRegistered, RegistrationRefused
from broker.registry.upstream_registrations import (
    apply_upstream,
    diff_upstream,
    preview_upstream,
    remove_upstream,
)
from broker.registry.upstreams import UPSTREAM_FOLDER, UpstreamRegistration
from broker.upstream.factory import describe
from tests.registry.registration_support import files_in, make_metadata_dir, registry_over

ENV = {"CITY_IDP_SECRET": "client-secret-7f3a9c"}


@pytest.fixture
def metadata_dir(tmp_path: Path) -> Path:
    return make_metadata_dir(tmp_path)


def _oidc(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {"name": "city-idp", "protocol": "oidc", "issuer": "https://idp.example.org",
                           "client_id": "broker", "client_secret_env": "CITY_IDP_SECRET"}
    raw.update(changes)
    return {k: v for k, v in raw.items() if v is not None}


def _saml(**changes: Any) -> dict[str, Any]:
    return {"name": "city", "protocol": "saml", "entity_id": "https://idp.city.example/idp", **changes}


def _check(registration: UpstreamRegistration) -> object:
    return describe(registration) if registration.protocol != "saml" else None


def test_a_preview_is_the_registration_the_registry_will_load(metadata_dir: Path) -> None:
    preview = preview_upstream(metadata_dir, metadata_dir.parent, _oidc(), check=_check, environ=ENV)

    assert (preview.problems, preview.file, preview.exists, preview.current) == ((), "city-idp.json", False, None)
    assert preview.registration is not None and preview.registration.client_secret == ENV["CITY_IDP_SECRET"]
    assert "client-secret-7f3a9c" not in preview.document + repr(preview) + repr(preview.changes)


@pytest.mark.parametrize(("document", "check", "message"), [
    ("{not json", False, "not a JSON object"),
    ("[]", False, "must hold one JSON object"),
    (_oidc(name="../../etc/passwd"), False, "name must be 1-63 lowercase letters"),
    (_oidc(client_secret_env="UNSET_SECRET"), False, "UNSET_SECRET (client_secret_env) is not set"),
    (_oidc(client_secret="in the clear"), False, "the document carries client_secret: a secret is never written"),
    (_saml(options={"allow_unsolicited": "maybe"}), False, 'must be "true" or "false"'),
    (_oidc(preset="apple", issuer=None), True, "missing options: team_id"),
])
def test_every_kind_of_invalid_document_gives_problems_never_an_exception(
        metadata_dir: Path, document: Any, check: bool, message: str) -> None:
    preview = preview_upstream(metadata_dir, metadata_dir.parent, document, check=_check if check else None,
                               environ=ENV)

    assert preview.registration is None
    assert message in "; ".join(preview.problems), preview.problems


def test_each_member_that_changes_shows(metadata_dir: Path) -> None:
    apply_upstream(metadata_dir, metadata_dir.parent, preview_upstream(metadata_dir, metadata_dir.parent, _saml()))

    preview = preview_upstream(metadata_dir, metadata_dir.parent,
                               _saml(display_name="City", options={"email_verified": "true"}))

    assert preview.changes == (Change("city", "display_name", None, "City"),
                               Change("city", "options", None, "email_verified=true"))
    assert diff_upstream("city", None, None) == ()


def test_apply_writes_what_the_registry_serves_after_its_reload(metadata_dir: Path) -> None:
    registry = registry_over(metadata_dir)
    assert registry.upstream("city") is None

    written = apply_upstream(metadata_dir, metadata_dir.parent,
                             preview_upstream(metadata_dir, metadata_dir.parent, _saml(display_name="City")))

    assert written == metadata_dir / UPSTREAM_FOLDER / "city.json"
    found = registry.upstream("city")
    assert found is not None and found.display_name == "City"
    assert json.loads(written.read_text()) == _saml(display_name="City")
    assert list(files_in(metadata_dir)) == [f"{UPSTREAM_FOLDER}/city.json"]


def test_a_refused_apply_writes_nothing(metadata_dir: Path) -> None:
    apply_upstream(metadata_dir, metadata_dir.parent, preview_upstream(metadata_dir, metadata_dir.parent, _saml()))
    (metadata_dir / UPSTREAM_FOLDER / "by-hand.json").write_text(json.dumps(_saml(name="other")))
    bad = preview_upstream(metadata_dir, metadata_dir.parent, _saml(options={"colour": "red"}))
    again = preview_upstream(metadata_dir, metadata_dir.parent, _saml(display_name="City"))
    (metadata_dir / UPSTREAM_FOLDER / "copy.json").write_text(json.dumps(_saml(name="second")))
    twice = preview_upstream(metadata_dir, metadata_dir.parent, _saml(name="second"))
    before = files_in(metadata_dir)

    for preview, message in ((bad, "options.colour is not a SAML option"), (again, "city.json exists"),
                             (twice, "copy.json registers the name second already")):
        with pytest.raises(RegistrationRefused, match=message):
            apply_upstream(metadata_dir, metadata_dir.parent, preview)
        assert files_in(metadata_dir) == before


def test_remove_finds_a_file_named_differently_and_never_leaves_the_folder(metadata_dir: Path) -> None:
    (metadata_dir / UPSTREAM_FOLDER / "by-hand.json").write_text(json.dumps(_saml()))
    (metadata_dir / "outside.json").write_text("{}")

    with pytest.raises(NotRegistered, match=re.escape("no upstream named ../outside")):
        remove_upstream(metadata_dir, "../outside")
    assert remove_upstream(metadata_dir, "city") == metadata_dir / UPSTREAM_FOLDER / "by-hand.json"

    assert files_in(metadata_dir) == {"outside.json": b"{}"}
    with pytest.raises(NotRegistered, match=re.escape("no upstream named city")):
        remove_upstream(metadata_dir, "city")
