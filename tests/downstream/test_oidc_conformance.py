"""Conformance of the OpenID provider with the REQUIRED parts of OpenID Connect Discovery 1.0 §3 and OpenID Connect
Core 1.0 §2, §3.1.3.6, §8, checked independently of the broker's own code: the tests compute hashes themselves
and verify ID tokens with joserfc against the published JWKS.

What is proved here:

- the discovery document (from the pure function and as a real broker instance serves it) has every REQUIRED
  member, its issuer is the configured base URL (https or loopback, no query or fragment), every endpoint lies
  under the issuer, RS256 is offered (Discovery §3), and it never advertises ``none``, the implicit or hybrid
  flows, or ``plain`` PKCE; what it advertises is what the parser and the key ring really support;
- ID tokens signed with RS256 and ES256 verify against the JWKS, name a published ``kid`` and the client's
  registered algorithm, and carry the claims of Core §2 (and only the session claims that are known), with
  ``at_hash`` per §3.1.3.6 and ``nonce`` per §2 and §12.2;
- ``sub`` (§8): pairwise per sector, one public identifier shared by public clients, never the account id.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import extract_compact

from broker.core.claims import CLAIMS, ClaimValue, claims_for_scopes
from broker.core.grants import Grant, new_token
from broker.downstream.oidc.authorize import PROMPTS, RESPONSE_MODES
from broker.downstream.oidc.discovery import ENDPOINTS, DiscoveryInputs, discovery_document
from broker.downstream.oidc.id_token import at_hash, id_token, subject
from broker.keys.jwt import PRIVATE_MEMBERS, public_jwks
from broker.keys.keyring import KeyRing, generate_keyring, load_keyring, write_private
from broker.oidc.client import SCOPES, SIGNING_ALGS, OidcClient

ISSUER = "https://login.city.example.org"
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
LIFETIME = timedelta(minutes=10)
ACCOUNT = "7f0c5a2e-1d4b-4c1e-9a43-5b7d2f0e8c11"
PAIRWISE_SECRET = b"pairwise secret of the test broker, 32+ bytes"
#: Discovery 1.0 §3 members that are REQUIRED (token_endpoint: unless only the implicit flow is offered)
REQUIRED = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri", "response_types_supported",
            "subject_types_supported", "id_token_signing_alg_values_supported")
LOOPBACK = ("127.0.0.1", "localhost", "::1")

RS_CLIENT = OidcClient("rs-app", "RS256 app", ("https://app.example.org/cb",), "client_secret_basic",
                       sector="app.example.org")
ES_CLIENT = replace(RS_CLIENT, client_id="es-app", id_token_signed_response_alg="ES256")


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> KeyRing:
    """A key ring as ``broker init`` makes it, read back the way the broker reads it at start-up."""
    certs = tmp_path_factory.mktemp("certs")
    generate_keyring(certs, "conformance broker", bits=2048)
    return load_keyring(certs)


def grant(**changes: Any) -> Grant:
    fields: dict[str, Any] = {
        "grant_id": "g-1", "client_id": "rs-app", "account_id": ACCOUNT, "scope": ("openid", "email"),
        "claims": frozenset({"email"}), "redirect_uri": "https://app.example.org/cb", "nonce": "n-0S6_WzA2Mj",
        "code_challenge": None, "auth_time": NOW - timedelta(minutes=3, seconds=20, microseconds=500_000),
        "acr": "urn:loa:substantial", "amr": ("pwd", "otp"), "sid": "sid-1", "upstream": "city-idp",
        "created_at": NOW,
    }
    fields.update(changes)
    return Grant(**fields)


def b64url_sha256_left_half(text: str) -> str:
    """OIDC Core §3.1.3.6, written out here rather than taken from the code under test: hash the ASCII octets
    with the hash of the JWS alg (SHA-256 for RS256 and ES256), keep the left-most half, base64url-encode."""
    digest = hashlib.sha256(text.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).decode("ascii").rstrip("=")


# -- discovery: the pure document ----------------------------------------------------------------------------------

@pytest.fixture(params=[False, True], ids=["registration-closed", "registration-open"])
def document(request: pytest.FixtureRequest) -> dict[str, Any]:
    made = discovery_document(DiscoveryInputs(ISSUER, registration_open=request.param))
    # what is served is JSON: the document must survive that unchanged
    assert json.loads(json.dumps(made)) == made
    return made


def check_discovery(document: dict[str, Any], issuer: str) -> None:
    """Discovery 1.0 §3 REQUIRED members and values, shared by the pure and the served document."""
    missing = [name for name in REQUIRED if name not in document]
    assert not missing, f"REQUIRED members missing: {missing}"
    assert document["issuer"] == issuer
    parts = urlsplit(issuer)
    assert parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK)
    assert not parts.query and not parts.fragment and "?" not in issuer and "#" not in issuer
    assert not issuer.endswith("/"), "iss in ID tokens must be the identical string (Core §3.1.3.7)"

    endpoints = {k: v for k, v in document.items() if k.endswith("_endpoint") or k == "jwks_uri"}
    assert endpoints.keys() >= {"authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint"}
    for name, url in endpoints.items():
        assert isinstance(url, str) and url.startswith(issuer + "/"), name
        assert urlsplit(url).scheme == parts.scheme and not urlsplit(url).query and not urlsplit(url).fragment, name
    assert len(set(endpoints.values())) == len(endpoints), "each endpoint has its own URL"

    assert "code" in document["response_types_supported"]
    # no implicit or hybrid flow (RFC 9700 §2.1.2): no response type that puts a token in the front channel
    assert all("token" not in rt.split() for rt in document["response_types_supported"])
    assert "id_token" not in document["response_types_supported"]
    assert "implicit" not in document["grant_types_supported"]
    assert "fragment" not in document.get("response_modes_supported", [])
    assert set(document["subject_types_supported"]) <= {"pairwise", "public"} and document["subject_types_supported"]

    algs = document["id_token_signing_alg_values_supported"]
    assert "RS256" in algs, "Discovery §3: RS256 MUST be included"
    assert "none" not in [a.lower() for a in algs] and not any(a.startswith("HS") for a in algs)
    for member, values in document.items():
        if member.endswith("_signing_alg_values_supported"):
            assert "none" not in [str(v).lower() for v in values], member  # §3: "none" MUST NOT be used
    assert document.get("code_challenge_methods_supported") == ["S256"], "no plain PKCE"
    assert "openid" in document.get("scopes_supported", ["openid"])


def test_discovery_document_meets_discovery_3(document: dict[str, Any]) -> None:
    check_discovery(document, ISSUER)


def test_registration_endpoint_only_when_registration_is_open() -> None:
    closed = discovery_document(DiscoveryInputs(ISSUER, registration_open=False))
    opened = discovery_document(DiscoveryInputs(ISSUER, registration_open=True))
    assert "registration_endpoint" not in closed
    assert opened["registration_endpoint"] == ISSUER + "/oidc/register"


def test_loopback_issuer_for_development() -> None:
    check_discovery(discovery_document(DiscoveryInputs("http://127.0.0.1:5000", False)), "http://127.0.0.1:5000")


def test_discovery_advertises_what_the_provider_does(document: dict[str, Any], keys: KeyRing) -> None:
    """Every advertised value is one the parser, the token endpoint or the key ring really supports."""
    assert document["response_types_supported"] == ["code"]
    assert set(document["response_modes_supported"]) == set(RESPONSE_MODES)
    assert set(document["prompt_values_supported"]) == set(PROMPTS)
    assert set(document["scopes_supported"]) == set(SCOPES)
    assert set(document["id_token_signing_alg_values_supported"]) == set(SIGNING_ALGS)
    for alg in document["id_token_signing_alg_values_supported"]:
        assert keys.signing_key(alg).alg == alg  # an active key for every advertised algorithm
    scope_claims = {c.oidc_name for c in CLAIMS if c.name in claims_for_scopes(SCOPES)}
    assert scope_claims <= set(document["claims_supported"])
    assert {"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp", "sid", "at_hash"} <= set(
        document["claims_supported"])
    assert document["request_parameter_supported"] is False and document["request_uri_parameter_supported"] is False


# -- discovery: a real broker instance ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory, keys: KeyRing) -> Iterator[Any]:
    """A broker instance with an https base URL, its own keys and database, as ``create_app`` builds it."""
    from broker.app import close_app, create_app  # the web app only here: the pure tests above run without it
    from broker.config.settings import load_settings
    from broker.storage import upgrade

    folder = tmp_path_factory.mktemp("instance")
    for source in (keys.key_file, keys.cert_file, keys.key_file.parent / "oidc-es256.key"):
        write_private(folder / "certs" / source.name, source.read_bytes())
    write_private(folder / "certs" / "session.secret", secrets.token_urlsafe(48).encode())
    write_private(folder / "certs" / "pairwise.secret", secrets.token_urlsafe(48).encode())
    write_private(folder / "certs" / "claims.key", secrets.token_hex(32).encode())
    for sub in ("saml-sp", "upstreams", "oidc-clients"):
        (folder / "metadata" / sub).mkdir(parents=True)
    database = f"sqlite:///{folder / 'broker.db'}"
    (folder / "broker.toml").write_text(f'[broker]\nbase_url = "{ISSUER}/"\ndatabase_url = "{database}"\n'
                                        'secret_key_file = "certs/session.secret"\n'
                                        'pairwise_secret_file = "certs/pairwise.secret"\n'
                                        'claims_key_file = "certs/claims.key"\n')
    upgrade(database)
    app = create_app(load_settings(folder / "broker.toml", environ={}))
    try:
        yield app
    finally:
        close_app(app)


def test_the_served_discovery_document_and_jwks(instance: Any, keys: KeyRing) -> None:
    client = instance.test_client()
    answer = client.get("/.well-known/openid-configuration", base_url=ISSUER)
    assert answer.status_code == 200 and answer.mimetype == "application/json"
    served = answer.get_json()
    # configured with a trailing slash, published without: iss must match the discovery issuer exactly
    check_discovery(served, ISSUER)

    jwks_path = urlsplit(served["jwks_uri"]).path
    assert jwks_path == ENDPOINTS["jwks_uri"]
    jwks_answer = client.get(jwks_path, base_url=ISSUER)
    assert jwks_answer.status_code == 200
    jwks = jwks_answer.get_json()
    assert jwks == public_jwks(keys.jwt_keys)
    # the JWKS the relying party fetches verifies a token the instance's keys sign
    token = id_token(keys, served["issuer"], RS_CLIENT, grant(), "sub-1", {}, NOW, LIFETIME, None)
    assert jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["RS256"]).claims["iss"] == ISSUER


def test_every_advertised_endpoint_is_served(instance: Any) -> None:
    """An endpoint in the document that the app does not route would send relying parties into a 404."""
    served = instance.test_client().get("/.well-known/openid-configuration", base_url=ISSUER).get_json()
    adapter = instance.url_map.bind("login.city.example.org", url_scheme="https")
    endpoints = [v for k, v in served.items() if k.endswith("_endpoint") or k == "jwks_uri"]
    assert len(endpoints) >= 7
    for url in endpoints:
        path = urlsplit(url).path
        methods = [r.methods for r in instance.url_map.iter_rules() if r.rule == path]
        assert methods, f"{url} is advertised but not routed"
        adapter.match(path, method=sorted(methods[0] - {"HEAD", "OPTIONS"})[0])  # raises when not routed


# -- ID tokens -----------------------------------------------------------------------------------------------------

def test_the_jwks_publishes_public_keys_only(keys: KeyRing) -> None:
    jwks = public_jwks(keys.jwt_keys)
    assert {k["alg"] for k in jwks["keys"]} == {"RS256", "ES256"}
    for key in jwks["keys"]:
        assert not PRIVATE_MEMBERS & key.keys()
        assert key["use"] == "sig" and isinstance(key["kid"], str) and key["kid"]
    assert len({k["kid"] for k in jwks["keys"]}) == len(jwks["keys"])


def key_set(jwks: dict[str, Any]) -> KeySet:
    """A JWK Set as ``public_jwks`` returns it (a plain dict), imported by joserfc."""
    return KeySet.import_key_set({"keys": jwks["keys"]})


def decode(keys: KeyRing, token: str, alg: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims after verifying the signature with the published JWKS, accepting only ``alg``."""
    jwks = public_jwks(keys.jwt_keys)
    verified = jwt.decode(token, key_set(jwks), algorithms=[alg])
    header = extract_compact(token.encode()).headers()
    assert header["kid"] in {k["kid"] for k in jwks["keys"]}
    return header, dict(verified.claims)


@pytest.mark.parametrize("client", [RS_CLIENT, ES_CLIENT], ids=["RS256", "ES256"])
def test_id_token_verifies_and_has_the_required_claims(keys: KeyRing, client: OidcClient) -> None:
    access_token = new_token()
    sub = subject(PAIRWISE_SECRET, client, ACCOUNT)
    released: dict[str, ClaimValue] = {"email": "anna@example.org", "email_verified": True}
    token = id_token(keys, ISSUER, client, grant(client_id=client.client_id), sub, released, NOW, LIFETIME,
                     access_token)
    header, claims = decode(keys, token, client.id_token_signed_response_alg)

    assert header["alg"] == client.id_token_signed_response_alg
    assert header["typ"] == "JWT"
    jwk = next(k for k in public_jwks(keys.jwt_keys)["keys"] if k["kid"] == header["kid"])
    assert jwk["alg"] == client.id_token_signed_response_alg

    assert claims["iss"] == ISSUER
    assert claims["sub"] == sub and 0 < len(sub) <= 255 and sub.isascii()  # Core §2
    audience = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    assert client.client_id in audience
    assert claims["azp"] == client.client_id  # Core §2: the party the token was issued to
    for name in ("iat", "exp", "auth_time"):
        assert type(claims[name]) is int, name  # NumericDate: JSON numbers, not strings
    assert claims["iat"] == int(NOW.timestamp())
    assert claims["exp"] == claims["iat"] + 600 and claims["exp"] > claims["iat"]
    assert claims["auth_time"] == int((NOW - timedelta(minutes=3, seconds=20, microseconds=500_000)).timestamp())
    assert claims["auth_time"] <= claims["iat"]
    assert claims["nonce"] == "n-0S6_WzA2Mj"
    assert claims["sid"] == "sid-1"
    assert (claims["acr"], claims["amr"]) == ("urn:loa:substantial", ["pwd", "otp"])
    assert claims["at_hash"] == b64url_sha256_left_half(access_token)
    assert (claims["email"], claims["email_verified"]) == ("anna@example.org", True)


def test_at_hash_matches_the_oidc_core_example() -> None:
    """The access token and at_hash of OIDC Core 1.0 Appendix A.3 (an RS256 token)."""
    assert at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y") == "77QmUPtjPfzWtF2AnpK9RQ"
    assert b64url_sha256_left_half("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y") == "77QmUPtjPfzWtF2AnpK9RQ"


@pytest.mark.parametrize("client", [RS_CLIENT, ES_CLIENT], ids=["RS256", "ES256"])
def test_a_token_of_one_algorithm_does_not_verify_as_the_other(keys: KeyRing, client: OidcClient) -> None:
    token = id_token(keys, ISSUER, client, grant(), "sub-1", {}, NOW, LIFETIME, None)
    other = "ES256" if client.id_token_signed_response_alg == "RS256" else "RS256"
    with pytest.raises(JoseError):
        jwt.decode(token, key_set(public_jwks(keys.jwt_keys)), algorithms=[other])


@pytest.mark.parametrize(("grant_nonce", "with_nonce", "expected"), [
    ("n-1", True, "n-1"),
    (None, True, None),  # no nonce in the request: none in the token (Core §2)
    ("n-1", False, None),  # a refreshed ID token (Core §12.2: "SHOULD NOT" carry the nonce)
])
def test_nonce(keys: KeyRing, grant_nonce: str | None, with_nonce: bool, expected: str | None) -> None:
    token = id_token(keys, ISSUER, RS_CLIENT, grant(nonce=grant_nonce), "sub-1", {}, NOW, LIFETIME, None,
                     with_nonce=with_nonce)
    assert decode(keys, token, "RS256")[1].get("nonce") == expected


def test_session_claims_only_when_known(keys: KeyRing) -> None:
    """acr and amr say how the person really signed in (Core §2): when the upstream did not say, they are absent
    rather than guessed; at_hash only when an access token is issued with the ID token."""
    token = id_token(keys, ISSUER, RS_CLIENT, grant(acr=None, amr=()), "sub-1", {}, NOW, LIFETIME, None)
    claims = decode(keys, token, "RS256")[1]
    assert not {"acr", "amr", "at_hash"} & claims.keys()
    assert {"iss", "sub", "aud", "exp", "iat", "auth_time", "azp", "sid", "nonce"} <= claims.keys()


def test_released_claims_cannot_replace_the_registered_ones(keys: KeyRing) -> None:
    """Only vocabulary claims with an OIDC name are copied in; none of them is a JWT or session claim."""
    released: dict[str, ClaimValue] = {"email": "anna@example.org", "address": {"locality": "Tampere"},
                                       "not_in_vocabulary": "x"}
    token = id_token(keys, ISSUER, RS_CLIENT, grant(), "sub-1", released, NOW, LIFETIME, None)
    claims = decode(keys, token, "RS256")[1]
    assert (claims["iss"], claims["sub"], claims["aud"]) == (ISSUER, "sub-1", "rs-app")
    assert claims["address"] == {"locality": "Tampere"} and "not_in_vocabulary" not in claims


# -- sub (OIDC Core §8) -------------------------------------------------------------------------------------------

SAME_SECTOR_A = OidcClient("city-a", "A", ("https://city.example.org/a",), "client_secret_basic",
                           sector="city.example.org")
SAME_SECTOR_B = OidcClient("city-b", "B", ("https://city.example.org/b",), "client_secret_basic",
                           sector="city.example.org")
OTHER_SECTOR = OidcClient("shop", "Shop", ("https://shop.example.com/cb",), "client_secret_basic",
                          sector="shop.example.com")
PUBLIC_A = OidcClient("pub-a", "Public A", ("https://a.example.net/cb",), "client_secret_basic",
                      subject_type="public", sector="a.example.net")
PUBLIC_B = OidcClient("pub-b", "Public B", ("https://b.example.net/cb",), "none", subject_type="public",
                      sector="b.example.net")


def test_pairwise_sub_is_per_sector() -> None:
    a, b = (subject(PAIRWISE_SECRET, c, ACCOUNT) for c in (SAME_SECTOR_A, SAME_SECTOR_B))
    assert a == b, "two clients of one sector see one identifier (§8.1)"
    assert subject(PAIRWISE_SECRET, OTHER_SECTOR, ACCOUNT) != a
    assert subject(PAIRWISE_SECRET, SAME_SECTOR_A, "another-account") != a
    assert subject(PAIRWISE_SECRET, SAME_SECTOR_A, ACCOUNT) == a, "stable"


def test_public_sub_is_shared_by_public_clients_and_unlike_any_pairwise_one() -> None:
    public = subject(PAIRWISE_SECRET, PUBLIC_A, ACCOUNT)
    assert subject(PAIRWISE_SECRET, PUBLIC_B, ACCOUNT) == public
    for pairwise in (SAME_SECTOR_A, OTHER_SECTOR, replace(PUBLIC_A, subject_type="pairwise")):
        assert subject(PAIRWISE_SECRET, pairwise, ACCOUNT) != public


def test_pairwise_without_a_sector_is_per_client() -> None:
    one = replace(SAME_SECTOR_A, sector="")
    two = replace(SAME_SECTOR_B, sector="")
    assert subject(PAIRWISE_SECRET, one, ACCOUNT) != subject(PAIRWISE_SECRET, two, ACCOUNT)


def test_sub_reveals_nothing_of_the_account() -> None:
    for client in (SAME_SECTOR_A, OTHER_SECTOR, PUBLIC_A):
        sub = subject(PAIRWISE_SECRET, client, ACCOUNT)
        assert 0 < len(sub) <= 255 and sub.isascii()
        assert ACCOUNT not in sub and ACCOUNT.replace("-", "") not in sub
        # the secret matters: another broker cannot compute the same identifiers
        assert subject(b"another broker's pairwise secret, 32+ bytes", client, ACCOUNT) != sub
