"""The logout members of OpenID Connect client metadata: ``backchannel_logout_uri`` and
``backchannel_logout_session_required`` (Back-Channel Logout 1.0 §2.2), ``frontchannel_logout_uri`` and
``frontchannel_logout_session_required`` (Front-Channel Logout 1.0 §2), in files and under the dynamic policy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from broker.oidc.client import OidcClient, hash_secret
from broker.oidc.client_metadata import (
    ClientMetadataError,
    RegistrationPolicy,
    client_metadata_document,
    parse_client_metadata,
)
from broker.registry.oidc_clients import CLIENT_FOLDER, FILE_POLICY, load_oidc_clients

CALLBACK = "https://permits.city.example.org/oidc/callback"
BACK = "https://permits.city.example.org/oidc/backchannel-logout"
FRONT = "https://permits.city.example.org/oidc/frontchannel-logout?app=permits"
SECRET_HASH = hash_secret("s" * 43)
DYNAMIC = RegistrationPolicy(allowed_hosts=frozenset({"*.city.example.org", "127.0.0.1"}), dynamic=True)
ANY_HOST = RegistrationPolicy(allowed_hosts=frozenset(), dynamic=True)
MEMBERS = ("backchannel_logout_uri", "frontchannel_logout_uri")
FLAGS = ("backchannel_logout_session_required", "frontchannel_logout_session_required")


def _metadata(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {"client_id": "permits", "redirect_uris": [CALLBACK], "client_secret_hash": SECRET_HASH}
    raw.update(changes)
    return raw


def _parse(raw: dict[str, Any], policy: RegistrationPolicy = FILE_POLICY) -> OidcClient:
    if policy.dynamic:
        raw = {k: v for k, v in raw.items() if k not in ("client_id", "client_secret_hash")}
        raw["token_endpoint_auth_method"] = "none"  # the secret is the web layer's to issue
        return parse_client_metadata(raw, policy, client_id="dyn-1", source="dynamic")
    return parse_client_metadata(raw, policy, client_id=None, source="metadata/oidc-clients/permits.json")


def test_none_by_default() -> None:
    client = _parse(_metadata())
    assert client.backchannel_logout_uri is None and client.frontchannel_logout_uri is None
    assert client.backchannel_logout_session_required is False
    assert client.frontchannel_logout_session_required is False
    document = client_metadata_document(client)
    assert not {*MEMBERS, *FLAGS} & set(document)


@pytest.mark.parametrize("policy", [FILE_POLICY, DYNAMIC], ids=["file", "dynamic"])
def test_all_four_are_read_and_the_document_gives_them_back(policy: RegistrationPolicy) -> None:
    raw = _metadata(backchannel_logout_uri=BACK, backchannel_logout_session_required=True,
                    frontchannel_logout_uri=FRONT, frontchannel_logout_session_required=True)
    client = _parse(raw, policy)

    assert client.backchannel_logout_uri == BACK and client.backchannel_logout_session_required is True
    assert client.frontchannel_logout_uri == FRONT and client.frontchannel_logout_session_required is True
    document = client_metadata_document(client)
    assert {k: document[k] for k in (*MEMBERS, *FLAGS)} == {k: raw[k] for k in (*MEMBERS, *FLAGS)}
    # what is stored after a dynamic registration reads back to the same client (``_stored_metadata``)
    if client.client_secret_hash is not None:
        document["client_secret_hash"] = client.client_secret_hash
    assert parse_client_metadata(document, FILE_POLICY, client_id=None, source=client.source) == client


def test_a_uri_without_its_flag_is_returned_with_the_flag_false() -> None:
    document = client_metadata_document(_parse(_metadata(backchannel_logout_uri=BACK)))
    assert document["backchannel_logout_uri"] == BACK
    assert document["backchannel_logout_session_required"] is False
    assert "frontchannel_logout_session_required" not in document


@pytest.mark.parametrize("uri", ["http://127.0.0.1:8080/logout", "http://localhost/logout", "http://[::1]:9/x",
                                 "https://permits.city.example.org:8443/a/b?c=d"])
@pytest.mark.parametrize("member", MEMBERS)
def test_files_follow_the_redirect_uri_rules(member: str, uri: str) -> None:
    assert getattr(_parse(_metadata(**{member: uri})), member) == uri


BAD_URIS = [
    ("plain http", "http://permits.city.example.org/logout", "must use https"),
    ("fragment", "https://permits.city.example.org/logout#x", "fragment"),
    ("relative", "/logout", "absolute https URL"),
    ("private-use scheme", "org.example.permits:/logout", "absolute https URL"),
    ("javascript", "javascript:alert(1)", "absolute https URL"),
    ("no host", "https:///logout", "has no host"),
    ("user name", "https://user@permits.city.example.org/logout", "user name"),
    ("wildcard", "https://*.city.example.org/logout", "wildcard"),
    ("not text", ["https://permits.city.example.org/logout"], "must be text"),
    ("a number", 42, "must be text"),
    ("spaces", "https://permits.city.example.org/log out", "without spaces"),
]


@pytest.mark.parametrize("policy", [FILE_POLICY, DYNAMIC], ids=["file", "dynamic"])
@pytest.mark.parametrize("member", MEMBERS)
@pytest.mark.parametrize(("case", "uri", "message"), BAD_URIS, ids=[c[0] for c in BAD_URIS])
def test_bad_uris_are_refused(policy: RegistrationPolicy, member: str, case: str, uri: object, message: str) -> None:
    with pytest.raises(ClientMetadataError) as refused:
        _parse(_metadata(**{member: uri}), policy)
    assert refused.value.error == "invalid_client_metadata"  # not invalid_redirect_uri: these are no redirect URIs
    assert any(p.startswith(member) and message in p for p in refused.value.problems), refused.value.problems


@pytest.mark.parametrize("member", MEMBERS)
def test_dynamic_registration_keeps_to_the_allowed_hosts(member: str) -> None:
    with pytest.raises(ClientMetadataError, match="not allowed to register here"):
        _parse(_metadata(**{member: "https://evil.example.com/logout"}), DYNAMIC)


@pytest.mark.parametrize("uri", ["http://localhost/logout", "https://10.0.0.7/logout", "https://[::1]/logout",
                                 "http://127.0.0.1:6379/"])
def test_dynamic_back_channel_uris_name_no_loopback_host_or_address(uri: str) -> None:
    """The broker POSTs to it from its own network: a registered client may not aim that at the broker's machine,
    unless the operator allowed that very host; the front channel is loaded by the browser, as redirects are."""
    with pytest.raises(ClientMetadataError, match="loopback host or an IP address"):
        _parse(_metadata(backchannel_logout_uri=uri), ANY_HOST)
    assert _parse(_metadata(frontchannel_logout_uri=uri.replace("https://10.0.0.7", "https://permits.example")),
                  ANY_HOST).frontchannel_logout_uri
    assert _parse(_metadata(backchannel_logout_uri=uri), FILE_POLICY).backchannel_logout_uri == uri


def test_an_operator_may_allow_a_loopback_back_channel_for_registration() -> None:
    client = _parse(_metadata(backchannel_logout_uri="http://127.0.0.1:8080/bc"), DYNAMIC)
    assert client.backchannel_logout_uri == "http://127.0.0.1:8080/bc"


@pytest.mark.parametrize("policy", [FILE_POLICY, DYNAMIC], ids=["file", "dynamic"])
@pytest.mark.parametrize("flag", FLAGS)
@pytest.mark.parametrize("value", ["true", 1, 0, None, [], {}], ids=repr)
def test_the_flags_are_true_or_false(policy: RegistrationPolicy, flag: str, value: object) -> None:
    with pytest.raises(ClientMetadataError) as refused:
        _parse(_metadata(**{flag: value}), policy)
    assert refused.value.problems == (f"{flag} must be true or false, not {value!r}",)


def test_every_problem_is_listed() -> None:
    with pytest.raises(ClientMetadataError) as refused:
        _parse(_metadata(backchannel_logout_uri="http://permits.city.example.org/", frontchannel_logout_uri="x",
                         backchannel_logout_session_required="yes", frontchannel_logout_session_required=1))
    assert len(refused.value.problems) == 4


def test_a_file_with_the_logout_members_loads_and_a_bad_one_is_skipped(tmp_path: Path) -> None:
    folder = tmp_path / CLIENT_FOLDER
    folder.mkdir()
    (folder / "permits.json").write_text(json.dumps(_metadata(
        backchannel_logout_uri=BACK, frontchannel_logout_uri=FRONT, frontchannel_logout_session_required=True)))
    (folder / "bad.json").write_text(json.dumps(_metadata(client_id="bad", backchannel_logout_uri="ftp://x/")))

    clients, problems = load_oidc_clients(tmp_path)

    assert set(clients) == {"permits"}
    assert clients["permits"].backchannel_logout_uri == BACK
    assert clients["permits"].frontchannel_logout_session_required is True
    assert len(problems) == 1 and problems[0].startswith("bad.json: backchannel_logout_uri")
