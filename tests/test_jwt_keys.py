"""The broker's JWT keys: the files in ``certs/`` (``broker.keys.keyring``), the JWKS, signing, and the check of a JWT
the broker issued itself (``broker.keys.jwt``)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from joserfc import jws, jwt
from joserfc.jwk import ECKey, RSAKey

from broker.cli.main import main
from broker.instance import InstanceOptions, init_instance
from broker.keys.jwt import PRIVATE_MEMBERS, InvalidJwt, JwtKey, public_jwks, sign_jwt, verify_own_jwt
from broker.keys.keyring import (
    ES256_COMMAND,
    ES256_KEY,
    NEXT_DIR,
    SIGNING_KEY,
    KeyRing,
    KeyRingError,
    generate_es256_key,
    generate_keyring,
    load_keyring,
    write_private,
)

CLAIMS = {"iss": "https://broker.example.org", "sub": "abc", "aud": "app", "exp": 2_000_000_000}


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An instance's certs folder with active and next keys for both algorithms (generated once)."""
    folder = tmp_path_factory.mktemp("certs")
    generate_keyring(folder, "test broker", bits=2048)
    write_private(folder / NEXT_DIR / SIGNING_KEY, _pkcs8(rsa.generate_private_key(65537, 2048)))
    generate_es256_key(folder / NEXT_DIR)
    return folder


@pytest.fixture(scope="module")
def ring(certs: Path) -> KeyRing:
    return load_keyring(certs)


def _pkcs8(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64json(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value).encode())


def _thumbprint(public: dict[str, Any]) -> str:
    """RFC 7638 §3.2, computed here without joserfc: the required members, sorted, no whitespace."""
    required = ("e", "kty", "n") if public["kty"] == "RSA" else ("crv", "kty", "x", "y")
    canonical = json.dumps({m: public[m] for m in required}, separators=(",", ":"), sort_keys=True)
    return _b64(hashlib.sha256(canonical.encode()).digest())


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- the files -----------------------------------------------------------------------------------------------


def test_generate_keyring_writes_a_private_pkcs8_p256_key(tmp_path: Path) -> None:
    ring = generate_keyring(tmp_path, "test", bits=2048)

    path = tmp_path / ES256_KEY
    assert _mode(path) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS8, not SEC1
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1)
    assert [(k.alg, k.active) for k in ring.jwt_keys] == [("RS256", True), ("ES256", True)]
    assert ring == load_keyring(tmp_path)


def test_generate_es256_key_writes_mode_0600_even_under_a_permissive_umask(tmp_path: Path) -> None:
    (tmp_path / ES256_KEY).write_bytes(b"old")
    (tmp_path / ES256_KEY).chmod(0o644)

    path = generate_es256_key(tmp_path)

    assert path == tmp_path / ES256_KEY
    assert _mode(path) == 0o600
    assert path.read_bytes() != b"old"


def test_a_missing_es256_key_names_the_command_that_creates_it(tmp_path: Path) -> None:
    generate_keyring(tmp_path, "test", bits=2048)
    (tmp_path / ES256_KEY).unlink()

    with pytest.raises(KeyRingError) as caught:
        load_keyring(tmp_path)

    assert str(caught.value) == (f"{tmp_path / ES256_KEY} (the ES256 key for OpenID Connect) is missing; "
                                 "run 'broker keys generate-es256' to create it")
    assert ES256_COMMAND == "broker keys generate-es256"


@pytest.mark.parametrize("relative", [ES256_KEY, f"{NEXT_DIR}/{SIGNING_KEY}", f"{NEXT_DIR}/{ES256_KEY}"])
def test_a_jwt_key_readable_by_others_is_refused(tmp_path: Path, relative: str) -> None:
    generate_keyring(tmp_path, "test", bits=2048)
    generate_keyring(tmp_path / NEXT_DIR, "next", bits=2048)
    (tmp_path / relative).chmod(0o640)

    with pytest.raises(KeyRingError, match="is readable by other users; run: chmod 600"):
        load_keyring(tmp_path)


@pytest.mark.parametrize(("relative", "wrong"), [
    (ES256_KEY, lambda: _pkcs8(rsa.generate_private_key(65537, 2048))),
    (ES256_KEY, lambda: _pkcs8(ec.generate_private_key(ec.SECP384R1()))),
    (ES256_KEY, lambda: b"not a key"),
    (f"{NEXT_DIR}/{SIGNING_KEY}", lambda: _pkcs8(ec.generate_private_key(ec.SECP256R1()))),
])
def test_a_key_of_the_wrong_kind_is_refused(tmp_path: Path, relative: str, wrong: Callable[[], bytes]) -> None:
    generate_keyring(tmp_path, "test", bits=2048)
    write_private(tmp_path / relative, wrong())

    with pytest.raises(KeyRingError, match=f"{tmp_path / relative} is not usable as the (RS|ES)256 key"):
        load_keyring(tmp_path)


def test_the_cli_creates_the_es256_key_of_an_older_instance(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BROKER_CONFIG", "BROKER_CERTS_DIR"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "secret").write_bytes(b"s" * 48)
    (tmp_path / "claims.key").write_bytes(b"c" * 64)  # 64 hex digits
    config = tmp_path / "broker.toml"
    config.write_text('[broker]\nbase_url = "https://broker.example.org"\nsecret_key_file = "secret"\n'
                      'pairwise_secret_file = "secret"\nclaims_key_file = "claims.key"\n')
    generate_keyring(tmp_path / "certs", "test", bits=2048)
    (tmp_path / "certs" / ES256_KEY).unlink()

    assert main(["--config", str(config), "keys", "generate-es256"]) == 0
    assert capsys.readouterr().out == f"created {tmp_path / 'certs' / ES256_KEY}\n"
    assert _mode(tmp_path / "certs" / ES256_KEY) == 0o600
    assert load_keyring(tmp_path / "certs").signing_key("ES256").active

    before = (tmp_path / "certs" / ES256_KEY).read_bytes()
    assert main(["--config", str(config), "keys", "generate-es256"]) == 1
    assert "already exists; use --force to replace it" in capsys.readouterr().err
    assert (tmp_path / "certs" / ES256_KEY).read_bytes() == before
    assert main(["--config", str(config), "keys", "generate-es256", "--force"]) == 0
    assert (tmp_path / "certs" / ES256_KEY).read_bytes() != before


def test_init_creates_the_es256_key_and_adds_it_to_an_older_instance(tmp_path: Path) -> None:
    folder = tmp_path / "city"
    init_instance(InstanceOptions(folder))
    key = folder / "certs" / ES256_KEY
    assert _mode(key) == 0o600
    rsa_before = (folder / "certs" / SIGNING_KEY).read_bytes()
    key.unlink()

    init_instance(InstanceOptions(folder), force=True)

    assert _mode(key) == 0o600
    assert (folder / "certs" / SIGNING_KEY).read_bytes() == rsa_before  # the SAML key is kept
    assert load_keyring(folder / "certs").signing_key("ES256").active


# -- the key ring --------------------------------------------------------------------------------------------


def test_kids_are_rfc7638_thumbprints_and_stable(certs: Path, ring: KeyRing) -> None:
    published = {k["kid"]: k for k in public_jwks(ring.jwt_keys)["keys"]}

    assert [k.kid for k in load_keyring(certs).jwt_keys] == [k.kid for k in ring.jwt_keys]
    assert all(_thumbprint(published[k.kid]) == k.kid for k in ring.jwt_keys)
    assert len(set(published)) == 4


def test_the_ring_has_one_active_key_per_alg_and_the_next_keys(ring: KeyRing) -> None:
    assert [(k.alg, k.active) for k in ring.jwt_keys] == [
        ("RS256", True), ("ES256", True), ("RS256", False), ("ES256", False)]
    assert ring.signing_key("RS256") is ring.jwt_keys[0]
    assert ring.signing_key("ES256") is ring.jwt_keys[1]
    with pytest.raises(KeyError):
        ring.signing_key("HS256")
    with pytest.raises(KeyError):
        KeyRing(ring.key_file, ring.cert_file).signing_key("RS256")  # the old constructor still works


def test_the_rs256_key_is_the_saml_signing_key(ring: KeyRing) -> None:
    assert ring.signing_key("RS256").private_pem == ring.key_file.read_bytes()


def test_private_key_not_in_repr(ring: KeyRing) -> None:
    assert "PRIVATE" not in repr(ring.signing_key("ES256"))
    assert "PRIVATE" not in repr(ring)


# -- the JWKS ------------------------------------------------------------------------------------------------


def test_jwks_publishes_active_and_next_keys_with_public_members_only(ring: KeyRing) -> None:
    jwks = public_jwks(ring.jwt_keys)

    assert [(k["kty"], k["alg"], k["use"], k["kid"]) for k in jwks["keys"]] == [
        ("RSA", "RS256", "sig", ring.jwt_keys[0].kid), ("EC", "ES256", "sig", ring.jwt_keys[1].kid),
        ("RSA", "RS256", "sig", ring.jwt_keys[2].kid), ("EC", "ES256", "sig", ring.jwt_keys[3].kid)]
    for key in jwks["keys"]:
        assert not PRIVATE_MEMBERS & set(key), key
        assert set(key) <= {"kty", "kid", "alg", "use", "n", "e", "crv", "x", "y"}
    assert {"d", "p", "q", "dp", "dq", "qi"} <= PRIVATE_MEMBERS
    text = json.dumps(jwks)
    assert '"d"' not in text and "PRIVATE" not in text
    assert jwks["keys"][1]["crv"] == "P-256"


# -- signing and verifying -----------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_sign_and_verify_round_trip(ring: KeyRing, alg: str) -> None:
    key = ring.signing_key(alg)

    token = sign_jwt(CLAIMS, key, typ="logout+jwt")

    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header == {"alg": alg, "kid": key.kid, "typ": "logout+jwt"}
    assert verify_own_jwt(token, ring.jwt_keys) == CLAIMS
    # and a relying party verifies it with the published JWKS alone
    published = next(k for k in public_jwks(ring.jwt_keys)["keys"] if k["kid"] == key.kid)
    public = (RSAKey if alg == "RS256" else ECKey).import_key(published)
    assert jwt.decode(token, public, algorithms=[alg]).claims == CLAIMS


def test_default_typ_is_jwt(ring: KeyRing) -> None:
    token = sign_jwt(CLAIMS, ring.signing_key("RS256"))
    assert json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))["typ"] == "JWT"


def test_a_next_key_never_signs(ring: KeyRing) -> None:
    with pytest.raises(ValueError, match="next key"):
        sign_jwt(CLAIMS, ring.jwt_keys[3])


def test_verify_does_not_check_exp(ring: KeyRing) -> None:
    expired = {**CLAIMS, "exp": 1}
    assert verify_own_jwt(sign_jwt(expired, ring.signing_key("ES256")), ring.jwt_keys) == expired


def _forged(header: dict[str, Any], claims: dict[str, Any], sign: Callable[[bytes], bytes]) -> str:
    signing_input = f"{_b64json(header)}.{_b64json(claims)}"
    return f"{signing_input}.{_b64(sign(signing_input.encode()))}"


def _tampered_payload(ring: KeyRing) -> str:
    header, _, signature = sign_jwt(CLAIMS, ring.signing_key("RS256")).split(".")
    return f"{header}.{_b64json({**CLAIMS, 'sub': 'someone else'})}.{signature}"


def _alg_none(ring: KeyRing) -> str:
    return _forged({"alg": "none", "kid": ring.signing_key("RS256").kid}, CLAIMS, lambda _: b"")


def _rs256_header_on_the_ec_key(ring: KeyRing) -> str:
    """A valid RS256 signature by the broker's RSA key, but the kid of its EC key: the alg must fit the key."""
    rsa_key = serialization.load_pem_private_key(ring.signing_key("RS256").private_pem, password=None)
    assert isinstance(rsa_key, rsa.RSAPrivateKey)
    return _forged({"alg": "RS256", "kid": ring.signing_key("ES256").kid}, CLAIMS,
                   lambda data: rsa_key.sign(data, padding.PKCS1v15(), hashes.SHA256()))


def _unknown_kid(ring: KeyRing) -> str:
    foreign = JwtKey(kid="foreign", alg="ES256", active=True,
                     private_pem=_pkcs8(ec.generate_private_key(ec.SECP256R1())))
    return sign_jwt(CLAIMS, foreign)


def _our_kid_a_stranger_s_key(ring: KeyRing) -> str:
    stranger = JwtKey(kid=ring.signing_key("ES256").kid, alg="ES256", active=True,
                      private_pem=_pkcs8(ec.generate_private_key(ec.SECP256R1())))
    return sign_jwt(CLAIMS, stranger)


def _hs256_with_the_public_key_as_secret(ring: KeyRing) -> str:
    """RFC 8725 §2.1: the classic confusion, HMAC keyed with the public key everyone can fetch."""
    key = ring.signing_key("RS256")
    private = serialization.load_pem_private_key(key.private_pem, password=None)
    public_pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    return _forged({"alg": "HS256", "kid": key.kid}, CLAIMS,
                   lambda data: hmac.new(public_pem, data, hashlib.sha256).digest())


def _no_kid(ring: KeyRing) -> str:
    token = sign_jwt(CLAIMS, ring.signing_key("RS256"))
    _, payload, signature = token.split(".")
    return f"{_b64json({'alg': 'RS256'})}.{payload}.{signature}"


@pytest.mark.parametrize(("make", "reason"), [
    (_tampered_payload, "signature not valid"),
    (_alg_none, "alg 'none' is not one the broker signs with"),
    (_rs256_header_on_the_ec_key, "alg RS256 does not match key"),
    (_unknown_kid, "kid 'foreign' is not one of the broker's keys"),
    (_our_kid_a_stranger_s_key, "signature not valid"),
    (_hs256_with_the_public_key_as_secret, "alg 'HS256' is not one the broker signs with"),
    (_no_kid, "JOSE header has no kid"),
    (lambda ring: "not.a.jwt", "unreadable JOSE header"),
    (lambda ring: "not.a-jwt", "not a signed JWT in compact form"),
    (lambda ring: "a.b.c.d.e", "not a signed JWT in compact form"),
])
def test_verify_own_jwt_refuses(ring: KeyRing, make: Callable[[KeyRing], str], reason: str) -> None:
    with pytest.raises(InvalidJwt, match=reason) as caught:
        verify_own_jwt(make(ring), ring.jwt_keys)
    assert isinstance(caught.value, ValueError)


def test_verify_own_jwt_refuses_crit(ring: KeyRing) -> None:
    token = _forged({"alg": "ES256", "kid": ring.signing_key("ES256").kid, "crit": ["x"], "x": 1}, CLAIMS,
                    lambda _: b"\0" * 64)  # refused before the signature is looked at
    with pytest.raises(InvalidJwt, match="crit"):
        verify_own_jwt(token, ring.jwt_keys)


def test_verify_own_jwt_refuses_a_payload_that_is_not_an_object(ring: KeyRing) -> None:
    key = ring.signing_key("ES256")
    listed = jws.serialize_compact({"alg": "ES256", "kid": key.kid}, b"[1, 2]", ECKey.import_key(key.private_pem),
                                   algorithms=["ES256"])
    with pytest.raises(InvalidJwt, match="payload is not a JSON object"):
        verify_own_jwt(listed, ring.jwt_keys)
