"""``FileRegistry``: the metadata folder as the broker sees it, re-read when files change, without a restart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from broker.core.model import Protocol, UpstreamParty
from broker.keys.keyring import write_private
from broker.registry import FileRegistry
from broker.registry.saml_sps import SP_FOLDER
from broker.registry.upstreams import UPSTREAM_FOLDER
from broker.web.services import describe_upstream
from tests.flows.saml_peers import SpKeys
from tests.sp_metadata import write_sp_metadata

PERMITS = "https://permits.city.example.org"
LIBRARY = "https://library.city.example.org"


@pytest.fixture
def instance(tmp_path: Path) -> Path:
    for folder in (SP_FOLDER, UPSTREAM_FOLDER):
        (tmp_path / "metadata" / folder).mkdir(parents=True)
    write_private(tmp_path / "certs" / "idp.secret", b"upstream-client-secret")
    return tmp_path


def _upstream(instance: Path, file: str, **raw: Any) -> Path:
    raw.setdefault("protocol", "oidc")
    raw.setdefault("client_id", "broker")
    raw.setdefault("client_secret_file", "certs/idp.secret")
    path = instance / "metadata" / UPSTREAM_FOLDER / file
    path.write_text(json.dumps(raw))
    return path


def _registry(instance: Path, check_interval: float = 0) -> FileRegistry:
    return FileRegistry(instance / "metadata", instance, describe_upstream, check_interval=check_interval)


def test_serves_what_the_folder_holds(instance: Path, sp_keys: SpKeys) -> None:
    write_sp_metadata(instance / "metadata" / SP_FOLDER / "permits.xml", PERMITS, sp_keys,
                      display_name="Parking permits")
    _upstream(instance, "city.json", name="city", display_name="City IdP", issuer="https://idp.example.org")
    _upstream(instance, "google.json", name="google", preset="google")

    registry = _registry(instance)

    party = registry.downstream(PERMITS)
    assert party is not None
    assert (party.protocol, party.display_name) == (Protocol.SAML, "Parking permits")
    assert party.requested_claims == {"email", "given_name", "family_name"}
    assert registry.downstream("https://unknown.example.org") is None
    assert registry.upstream("city") == UpstreamParty("city", Protocol.OIDC, "City IdP", "https://idp.example.org")
    # the preset fills in what the file leaves out
    assert registry.upstream("google") == UpstreamParty("google", Protocol.OIDC, "Google", "https://accounts.google.com")
    assert sorted(p.name for p in registry.upstreams()) == ["city", "google"]
    assert registry.upstream("nobody") is None
    snapshot = registry.snapshot
    assert snapshot.upstreams["city"].client_secret == "upstream-client-secret"
    assert snapshot.problems == ()


def test_a_new_file_is_picked_up_without_restart(instance: Path, sp_keys: SpKeys) -> None:
    registry = _registry(instance)
    assert registry.downstream(PERMITS) is None
    assert registry.upstreams() == []

    write_sp_metadata(instance / "metadata" / SP_FOLDER / "permits.xml", PERMITS, sp_keys)
    _upstream(instance, "city.json", name="city", issuer="https://idp.example.org")

    assert registry.downstream(PERMITS) is not None
    assert registry.upstream("city") is not None


def test_changed_and_removed_files_are_picked_up(instance: Path, sp_keys: SpKeys) -> None:
    source = write_sp_metadata(instance / "metadata" / SP_FOLDER / "permits.xml", PERMITS, sp_keys,
                               display_name="Parking")
    registry = _registry(instance)
    party = registry.downstream(PERMITS)
    assert party is not None and party.display_name == "Parking"

    write_sp_metadata(source, PERMITS, sp_keys, display_name="Parking permits and residents' cards")
    party = registry.downstream(PERMITS)
    assert party is not None and party.display_name == "Parking permits and residents' cards"

    source.unlink()
    assert registry.downstream(PERMITS) is None


def test_the_snapshot_object_is_kept_while_nothing_changes(instance: Path, sp_keys: SpKeys) -> None:
    write_sp_metadata(instance / "metadata" / SP_FOLDER / "permits.xml", PERMITS, sp_keys)
    registry = _registry(instance)

    first = registry.snapshot
    assert registry.snapshot is first
    assert registry.snapshot is first

    write_sp_metadata(instance / "metadata" / SP_FOLDER / "library.xml", LIBRARY, sp_keys)
    second = registry.snapshot

    assert second is not first
    assert registry.snapshot is second
    # a request that began with the old snapshot keeps seeing it unchanged
    assert sorted(first.saml.sps) == [PERMITS]
    assert sorted(second.saml.sps) == [LIBRARY, PERMITS]


def test_changes_wait_for_the_check_interval_or_reload(instance: Path, sp_keys: SpKeys) -> None:
    registry = _registry(instance, check_interval=3600)
    before = registry.snapshot

    write_sp_metadata(instance / "metadata" / SP_FOLDER / "permits.xml", PERMITS, sp_keys)

    assert registry.snapshot is before
    assert registry.downstream(PERMITS) is None
    reloaded = registry.reload()
    assert reloaded is registry.snapshot
    assert registry.downstream(PERMITS) is not None


def test_unusable_files_are_reported_and_the_rest_stays(instance: Path, sp_keys: SpKeys) -> None:
    write_sp_metadata(instance / "metadata" / SP_FOLDER / "permits.xml", PERMITS, sp_keys)
    (instance / "metadata" / SP_FOLDER / "broken.xml").write_text("<md:EntityDescriptor")
    _upstream(instance, "city.json", name="city", issuer="https://idp.example.org")
    # valid files whose adapter settings are not: caught when the registry describes them
    _upstream(instance, "plain.json", name="plain", issuer="http://idp.example.org")
    _upstream(instance, "nopreset.json", name="nopreset", preset="facebook")
    _upstream(instance, "typed.json", name="typed", client_secret_env=["X"], client_secret_file=None)

    registry = _registry(instance)
    snapshot = registry.snapshot

    assert sorted(snapshot.saml.sps) == [PERMITS]
    assert sorted(snapshot.upstream_parties) == ["city"]
    assert sorted(snapshot.upstreams) == ["city"]
    assert len(snapshot.problems) == 4
    problems = "\n".join(snapshot.problems)
    assert "broken.xml: not usable SAML metadata" in problems
    assert "upstreams/plain: issuer 'http://idp.example.org' must be an https URL" in problems
    assert "upstreams/nopreset: unknown preset 'facebook'" in problems
    assert "typed.json: client_secret_env must be text" in problems
