"""OpenID Connect clients: RFC 7591 §2 client metadata validated into ``OidcClient`` (each rule with the
registration it refuses), and client files in ``metadata/oidc-clients/`` as the registry loads them."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import ECKey, RSAKey

from broker.core.identifiers import client_sector
from broker.core.model import Protocol
from broker.oidc.client import OidcClient, hash_secret
from broker.oidc.client_metadata import (
    ClientMetadataError,
    RedirectUriError,
    RegistrationPolicy,
    client_metadata_document,
    parse_client_metadata,
)
from broker.registry import FileRegistry
from broker.registry.changes import registration_changes
from broker.registry.oidc_clients import CLIENT_FOLDER, FILE_POLICY, load_oidc_clients
from broker.registry.saml_sps import SP_FOLDER
from broker.web.services import describe_upstream
from tests.flows.saml_peers import SpKeys
from tests.sp_metadata import write_sp_metadata

PERMITS = "https://permits.city.example.org"
CALLBACK = "https://permits.city.example.org/oidc/callback"
SECRET_HASH = hash_secret("s" * 43)
EC_KEY = ECKey.generate_key("P-256")
PUBLIC_JWKS = {"keys": [EC_KEY.as_dict(private=False)]}
#: made without joserfc, which warns about (and the test settings turn that into an error) so small a key
_SMALL_N = rsa.generate_private_key(65537, 1024).public_key().public_numbers().n
WEAK_RSA = {"kty": "RSA", "e": "AQAB",
            "n": base64.urlsafe_b64encode(_SMALL_N.to_bytes(128, "big")).decode().rstrip("=")}
DYNAMIC = RegistrationPolicy(allowed_hosts=frozenset({"*.city.example.org", "[::1]"}), dynamic=True)


def _metadata(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {"client_id": "permits", "redirect_uris": [CALLBACK], "client_secret_hash": SECRET_HASH}
    raw.update(changes)
    return {k: v for k, v in raw.items() if v is not None}


def _public(**changes: Any) -> dict[str, Any]:
    return _metadata(**{"token_endpoint_auth_method": "none", "client_secret_hash": None, **changes})


def _parse(raw: object, policy: RegistrationPolicy = FILE_POLICY, client_id: str | None = None) -> OidcClient:
    return parse_client_metadata(raw, policy, client_id=client_id, source="metadata/oidc-clients/permits.json")


# -- what a registration gets ---------------------------------------------------------------------------------


def test_a_minimal_file_gets_the_defaults() -> None:
    client = _parse(_metadata(unknown_member="ignored (RFC 7591 §2)"))

    assert client == OidcClient(
        client_id="permits", client_name="permits", redirect_uris=(CALLBACK,),
        token_endpoint_auth_method="client_secret_basic", client_secret_hash=SECRET_HASH,
        scope=("openid", "profile", "email"), subject_type="pairwise", sector="permits.city.example.org",
        id_token_signed_response_alg="RS256", grant_types=("authorization_code",),
        source="metadata/oidc-clients/permits.json",
    )
    assert client.check_secret("s" * 43) and not client.check_secret("s" * 42)
    assert client.party().protocol is Protocol.OIDC


def test_every_member_is_read_and_the_document_gives_it_back() -> None:
    raw = _metadata(
        client_name="Parking permits", token_endpoint_auth_method="private_key_jwt", client_secret_hash=None,
        jwks=PUBLIC_JWKS, redirect_uris=[CALLBACK, "https://residents.city.example.org/cb"],
        sector_identifier_uri="https://city.example.org/sector.json",
        post_logout_redirect_uris=["https://permits.city.example.org/bye"], grant_types=["refresh_token",
        "authorization_code"], response_types=["code"], scope="openid email offline_access", subject_type="public",
        id_token_signed_response_alg="ES256", allowed_upstreams=["city", "google"], may_introspect=True,
    )
    client = _parse(raw)

    assert (client.sector, client.sector_identifier_uri) == ("city.example.org", "https://city.example.org/sector.json")
    assert client.grant_types == ("authorization_code", "refresh_token")
    assert (client.scope, client.subject_type, client.may_introspect) == (("openid", "email", "offline_access"),
                                                                         "public", True)
    assert client.party().allowed_upstreams == ("city", "google")
    document = client_metadata_document(client)
    assert document["jwks"] == PUBLIC_JWKS
    assert document["scope"] == "openid email offline_access"
    assert _parse(document) == client  # the document is the registration, read again


def test_the_document_carries_no_secret_and_reads_back_with_the_hash() -> None:
    client = _parse(_metadata(post_logout_redirect_uris=["https://permits.city.example.org/bye"]))
    document = client_metadata_document(client)

    assert "client_secret_hash" not in document and "client_secret" not in document
    assert document["response_types"] == ["code"]
    assert _parse({**document, "client_secret_hash": SECRET_HASH}) == client


#: loopback (RFC 8252 §7.3) is no one's host: the sector is the client itself (issue 15, point 5)
ITSELF = client_sector("permits")


@pytest.mark.parametrize(("uris", "sector"), [
    (["http://127.0.0.1:8400/cb", "http://127.0.0.1/other"], ITSELF),  # RFC 8252 §7.3, any port
    (["http://localhost/cb"], ITSELF),
    (["http://[::1]:9000/cb"], ITSELF),
    (["http://127.0.0.1:8400/cb", "http://[::1]:8400/cb"], ITSELF),  # both loopback: still the client alone
    (["com.example.permits:/oauth2redirect"], "com.example.permits"),  # RFC 8252 §7.1
    (["https://permits.city.example.org/cb?app=1"], "permits.city.example.org"),  # a query is allowed
])
def test_native_app_redirect_uris_for_a_public_client(uris: list[str], sector: str) -> None:
    client = _parse(_public(redirect_uris=uris))

    assert client.redirect_uris == tuple(uris)
    assert client.sector == sector
    assert client.is_public and client.client_secret_hash is None


def test_a_private_key_jwt_client_keeps_its_public_keys() -> None:
    rsa = RSAKey.generate_key(2048).as_dict(private=False)
    client = _parse(_metadata(token_endpoint_auth_method="private_key_jwt", client_secret_hash=None,
                              jwks={"keys": [rsa, *PUBLIC_JWKS["keys"]]}))

    assert client.jwks is not None and json.loads(client.jwks)["keys"][0]["n"] == rsa["n"]


def test_dynamic_registration_takes_the_given_client_id_and_leaves_the_secret_to_the_broker() -> None:
    client = parse_client_metadata(_metadata(client_id="chosen-by-the-client", client_secret_hash=None), DYNAMIC,
                                   client_id="generated-id", source="dynamic")

    assert client.client_id == "generated-id"
    assert client.client_secret_hash is None  # the registration endpoint issues one (RFC 7591 §3.2.1)
    assert _parse(_public(redirect_uris=["http://[::1]/cb"]), DYNAMIC, "generated").sector == client_sector("generated")
    assert _parse(_public(redirect_uris=["org.example.city.permits:/cb"]), DYNAMIC, "g").sector == \
        "org.example.city.permits"  # its reverse domain, permits.city.example.org, is allowed


@pytest.mark.parametrize(("host", "allowed"), [
    ("permits.city.example.org", True), ("a.b.city.example.org", True), ("city.example.org", False),
    ("evilcity.example.org", False), ("city.example.org.evil.net", False),
])
def test_a_suffix_pattern_allows_hosts_below_it_only(host: str, allowed: bool) -> None:
    assert DYNAMIC.allows_host(host) is allowed
    assert RegistrationPolicy(frozenset(), dynamic=True).allows_host(host)  # empty: any host


# -- what a registration is refused ---------------------------------------------------------------------------

REDIRECT = "invalid_redirect_uri"
METADATA = "invalid_client_metadata"


@pytest.mark.parametrize(("raw", "error", "message"), [
    (_metadata(redirect_uris=["http://permits.city.example.org/cb"]), REDIRECT, "must use https"),
    (_metadata(redirect_uris=[CALLBACK + "#top"]), REDIRECT, "must not have a fragment"),
    (_metadata(redirect_uris=["https://*.city.example.org/cb"]), REDIRECT, "must not hold a wildcard"),
    (_metadata(redirect_uris=["https://user:pw@permits.city.example.org/cb"]), REDIRECT, "user name or password"),
    (_metadata(redirect_uris=["/oidc/callback"]), REDIRECT, "is not an absolute URI"),
    (_metadata(redirect_uris=["javascript:/alert(1)"]), REDIRECT, "uses the scheme 'javascript'"),
    (_metadata(redirect_uris=["https://permits.city.example.org:99999/cb"]), REDIRECT, "invalid port"),
    (_metadata(redirect_uris=[CALLBACK + "/" + "x" * 2000]), REDIRECT, "longer than 2000 characters"),
    (_metadata(redirect_uris=[f"{CALLBACK}/{n}" for n in range(21)]), REDIRECT, "at most 20"),
    (_metadata(redirect_uris=[]), REDIRECT, "redirect_uris is required"),
    (_metadata(redirect_uris=None), REDIRECT, "redirect_uris is required"),
    (_metadata(redirect_uris=CALLBACK), REDIRECT, "redirect_uris must be a list"),
    (_metadata(redirect_uris=[CALLBACK, CALLBACK]), REDIRECT, "is listed twice"),
    (_metadata(redirect_uris=["com.example.permits:/cb"]), REDIRECT, "for native apps, which are public clients"),
    (_public(redirect_uris=["com.example.permits://cb"]), REDIRECT, "single slash"),
    (_public(redirect_uris=["permits:/cb"]), REDIRECT, "uses the scheme 'permits'"),  # not reverse-DNS
    (_metadata(post_logout_redirect_uris=["http://permits.city.example.org/bye"]), METADATA,
     "post_logout_redirect_uris: 'http://permits.city.example.org/bye' must use https"),
    (_metadata(token_endpoint_auth_method="private_key_jwt", client_secret_hash=None), METADATA,
     "private_key_jwt needs the client's public keys in jwks"),
    (_metadata(token_endpoint_auth_method="private_key_jwt", client_secret_hash=None,
               jwks={"keys": [EC_KEY.as_dict(private=True)]}), METADATA, "holds private key members (d)"),
    (_metadata(token_endpoint_auth_method="private_key_jwt", client_secret_hash=None,
               jwks={"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}), METADATA, "kty must be one of RSA, EC, OKP"),
    (_metadata(token_endpoint_auth_method="private_key_jwt", client_secret_hash=None,
               jwks={"keys": [WEAK_RSA]}), METADATA, "at least 2048 bits"),
    (_metadata(token_endpoint_auth_method="private_key_jwt", client_secret_hash=None,
               jwks={"keys": [{"kty": "EC", "crv": "P-256", "x": "AA"}]}), METADATA, "not a valid JWK Set"),
    (_metadata(token_endpoint_auth_method="private_key_jwt", client_secret_hash=None, jwks=[]), METADATA,
     "jwks must be a JWK Set"),
    (_metadata(token_endpoint_auth_method="private_key_jwt", client_secret_hash=None,
               jwks_uri="https://permits.city.example.org/jwks"), METADATA, "jwks_uri is not supported"),
    (_metadata(client_secret_hash=None, client_secret="s" * 43), METADATA,
     "a plain client_secret must not be written in the file: use `broker client add`"),
    (_metadata(client_secret_hash=None), METADATA, "client_secret_basic needs client_secret_hash"),
    (_metadata(client_secret_hash="sha256:abc"), METADATA, 'must be "sha256:" and 64 lowercase hex'),
    (_public(client_secret_hash=SECRET_HASH), METADATA, "client_secret_hash is only for client_secret_basic"),
    (_metadata(token_endpoint_auth_method="client_secret_jwt"), METADATA, "token_endpoint_auth_method must be"),
    (_metadata(response_types=["code", "id_token"]), METADATA, "implicit and hybrid flows are not offered"),
    (_metadata(response_types=["token"]), METADATA, "implicit and hybrid flows are not offered"),
    (_metadata(grant_types=["authorization_code", "implicit"]), METADATA, "grant_types must include"),
    (_metadata(grant_types=["refresh_token"]), METADATA, "grant_types must include authorization_code"),
    (_metadata(id_token_signed_response_alg="HS256"), METADATA, "id_token_signed_response_alg must be one of"),
    (_metadata(id_token_signed_response_alg="none"), METADATA, "id_token_signed_response_alg must be one of"),
    (_metadata(scope="profile email"), METADATA, "scope must include openid"),
    (_metadata(scope="openid admin"), METADATA, "scope: 'admin' not offered"),
    (_metadata(subject_type="random"), METADATA, "subject_type must be one of pairwise, public"),
    (_metadata(redirect_uris=[CALLBACK, "https://residents.city.example.org/cb"]), METADATA,
     "redirect_uris use several hosts (permits.city.example.org, residents.city.example.org)"),
    (_metadata(sector_identifier_uri="http://city.example.org/sector.json"), METADATA,
     "sector_identifier_uri must be an https URL"),
    (_metadata(client_id=None), METADATA, "client_id is required"),
    (_metadata(client_id="two words"), METADATA, "client_id is required: 1 to 255 printable ASCII"),
    (_metadata(client_id="x" * 256), METADATA, "client_id is required"),
    (_metadata(client_name=""), METADATA, "client_name must be printable text"),
    (_metadata(allowed_upstreams="city"), METADATA, "allowed_upstreams must be a list of text"),
    (_metadata(may_introspect="yes"), METADATA, "may_introspect must be true or false"),
    (["not", "an", "object"], METADATA, "client metadata must be a JSON object"),
])
def test_files_are_refused(raw: object, error: str, message: str) -> None:
    with pytest.raises(ClientMetadataError) as refused:
        _parse(raw)

    assert refused.value.error == error
    assert isinstance(refused.value, RedirectUriError) is (error == REDIRECT)
    assert message in str(refused.value)


@pytest.mark.parametrize(("raw", "error", "message"), [
    (_metadata(client_secret_hash=None, redirect_uris=["https://permits.example.net/cb"]), REDIRECT,
     "uses the host permits.example.net, which is not allowed to register here"),
    (_public(redirect_uris=["http://127.0.0.1/cb"]), REDIRECT, "uses the host 127.0.0.1, which is not allowed"),
    (_public(redirect_uris=["com.example.permits:/cb"]), REDIRECT, "whose domain is not allowed"),
    (_metadata(), METADATA, "client_secret_hash is set only in metadata files"),
    (_metadata(client_secret_hash=None, client_secret="s" * 43), METADATA, "client_secret is issued by the broker"),
    (_metadata(client_secret_hash=None, may_introspect=False), METADATA, "may_introspect is granted by the operator"),
    (_metadata(client_secret_hash=None, sector_identifier_uri="https://city.example.org/sector.json"), METADATA,
     "sector_identifier_uri is not supported in dynamic registration"),
    (_metadata(client_secret_hash=None, subject_type="public"), METADATA, "subject_type public is not offered"),
])
def test_dynamic_registration_is_refused(raw: dict[str, Any], error: str, message: str) -> None:
    with pytest.raises(ClientMetadataError) as refused:
        _parse(raw, DYNAMIC, "generated-id")

    assert (refused.value.error, message in str(refused.value)) == (error, True), str(refused.value)


def test_every_problem_is_listed() -> None:
    with pytest.raises(ClientMetadataError) as refused:
        _parse(_metadata(redirect_uris=["http://permits.city.example.org/cb"], scope="email",
                         response_types=["token"]))

    assert refused.value.error == REDIRECT  # a redirect_uris problem among them
    assert len(refused.value.problems) == 3


def test_a_public_subject_client_may_use_several_hosts() -> None:
    client = _parse(_metadata(subject_type="public", redirect_uris=[CALLBACK, "https://residents.city.example.org/cb"]))

    assert client.sector == ""  # no pairwise subjects, so no sector (OIDC Core §8.1)


# -- files in metadata/oidc-clients/ --------------------------------------------------------------------------


@pytest.fixture
def instance(tmp_path: Path) -> Path:
    for folder in (SP_FOLDER, CLIENT_FOLDER):
        (tmp_path / "metadata" / folder).mkdir(parents=True)
    return tmp_path


def _write(instance: Path, file: str, raw: object) -> Path:
    path = instance / "metadata" / CLIENT_FOLDER / file
    path.write_text(json.dumps(raw))
    return path


def _registry(instance: Path, **options: Any) -> FileRegistry:
    return FileRegistry(instance / "metadata", instance, describe_upstream, check_interval=0, **options)


def test_good_files_load_and_a_bad_one_is_skipped_with_a_problem(instance: Path) -> None:
    _write(instance, "permits.json", _metadata(client_name="Parking permits"))
    _write(instance, "app.json", _public(client_id="city-app", redirect_uris=["com.example.city:/cb"]))
    _write(instance, "insecure.json", _metadata(client_id="insecure", redirect_uris=["http://insecure.example/cb"]))
    (instance / "metadata" / CLIENT_FOLDER / "broken.json").write_text("{not json")
    (instance / "metadata" / CLIENT_FOLDER / "notes.txt").write_text("not a client file")

    clients, problems = load_oidc_clients(instance / "metadata")

    assert sorted(clients) == ["city-app", "permits"]
    assert clients["permits"].source == "metadata/oidc-clients/permits.json"
    assert len(problems) == 2
    assert problems[0].startswith("broken.json: Expecting property name")
    assert problems[1].startswith("insecure.json: redirect_uris: 'http://insecure.example/cb' must use https")


def test_a_duplicate_client_id_is_reported(instance: Path) -> None:
    _write(instance, "a.json", _metadata(client_name="first"))
    _write(instance, "b.json", _metadata(client_name="second"))

    clients, problems = load_oidc_clients(instance / "metadata")

    assert clients["permits"].client_name == "first"
    assert problems == ["b.json: client_id permits is already registered by a.json; skipped"]


def test_the_registry_serves_clients_and_refuses_a_saml_entity_id(instance: Path, sp_keys: SpKeys) -> None:
    write_sp_metadata(instance / "metadata" / SP_FOLDER / "permits.xml", PERMITS, sp_keys, display_name="Permits SP")
    _write(instance, "clash.json", _metadata(client_id=PERMITS))
    _write(instance, "app.json", _metadata(client_id="city-app", client_name="City app", allowed_upstreams=["city"]))

    registry = _registry(instance)

    assert registry.snapshot.problems == (
        f"clash.json: client_id {PERMITS} is the entity id of a registered SAML SP; skipped",)
    assert sorted(registry.snapshot.oidc_clients) == ["city-app"]
    sp = registry.downstream(PERMITS)
    assert sp is not None and (sp.protocol, sp.display_name) == (Protocol.SAML, "Permits SP")
    app = registry.downstream("city-app")
    assert app is not None
    assert (app.protocol, app.display_name, app.allowed_upstreams) == (Protocol.OIDC, "City app", ("city",))
    assert registry.oidc_client(PERMITS) is None
    assert registry.downstream("nobody") is None


def test_files_come_first_then_dynamically_registered_clients(instance: Path) -> None:
    _write(instance, "permits.json", _metadata())
    dynamic = _parse(_metadata(client_id="dyn-1", client_secret_hash=None), DYNAMIC, "dyn-1")
    asked: list[str] = []

    def lookup(client_id: str) -> OidcClient | None:
        asked.append(client_id)
        return dynamic if client_id in ("dyn-1", "permits") else None

    registry = _registry(instance, dynamic_client=lookup)

    file_client = registry.oidc_client("permits")
    assert file_client is not None and file_client.source == "metadata/oidc-clients/permits.json"
    assert registry.oidc_client("dyn-1") is dynamic
    party = registry.downstream("dyn-1")
    assert party is not None and party.protocol is Protocol.OIDC
    assert registry.oidc_client("unknown") is None
    assert asked == ["dyn-1", "dyn-1", "unknown"]
    assert _registry(instance).oidc_client("dyn-1") is None  # no store wired: files only


def test_a_file_added_changed_and_removed_is_picked_up_and_audited(instance: Path) -> None:
    changes: list[str] = []
    registry = _registry(instance, on_change=lambda before, after: changes.extend(registration_changes(before, after)))
    assert registry.oidc_client("permits") is None

    path = _write(instance, "permits.json", _metadata(client_name="Parking"))
    client = registry.oidc_client("permits")
    assert client is not None and client.client_name == "Parking"

    _write(instance, "permits.json", _metadata(client_name="Parking permits and residents' cards"))
    client = registry.oidc_client("permits")
    assert client is not None and client.client_name == "Parking permits and residents' cards"

    path.unlink()
    assert registry.oidc_client("permits") is None
    assert changes == ["added oidc-client permits", "changed oidc-client permits", "removed oidc-client permits"]
