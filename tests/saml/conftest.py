"""Fixtures for the XML-signature tests: per-session keys and real pysaml2 IdP/SP entities.

Everything under test is produced by pysaml2 itself (Server.create_authn_response); tests only tamper with
that output afterwards.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from saml2.client import Saml2Client
from saml2.config import IdPConfig, SPConfig
from saml2.metadata import entity_descriptor
from saml2.server import Server
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

from broker.saml.xmlsec_backend import install_in_process_backend

from .samlsig_support import KeyPair, MakeIdp, MakeSp, idp_config, make_keypair, sp_config


@pytest.fixture(scope="session")
def xmlsec1() -> str:
    """Path of the xmlsec1 program. Missing: a failure on CI (CI=true), a skip elsewhere."""
    path = shutil.which("xmlsec1")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("xmlsec1 is not installed; it is required on CI (apt-get install xmlsec1)")
        pytest.skip("xmlsec1 is not installed (apt-get install xmlsec1)")
    return path


@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("saml-keys")


@pytest.fixture(scope="session")
def idp_keys(keys_dir: Path) -> KeyPair:
    return make_keypair(keys_dir, "idp")


@pytest.fixture(scope="session")
def sp_keys(keys_dir: Path) -> KeyPair:
    return make_keypair(keys_dir, "sp")


@pytest.fixture(scope="session")
def attacker_keys(keys_dir: Path) -> KeyPair:
    return make_keypair(keys_dir, "attacker")


@pytest.fixture(scope="session")
def idp_metadata(idp_keys: KeyPair, xmlsec1: str) -> str:
    return str(entity_descriptor(IdPConfig().load(idp_config(idp_keys, xmlsec1))))


@pytest.fixture(scope="session")
def sp_metadata(sp_keys: KeyPair, xmlsec1: str) -> str:
    return str(entity_descriptor(SPConfig().load(sp_config(sp_keys, xmlsec1))))


@pytest.fixture
def make_idp(idp_keys: KeyPair, sp_metadata: str, xmlsec1: str) -> MakeIdp:
    """A pysaml2 IdP; ``in_process=True`` installs the in-process backend, ``keys`` swaps its key pair."""

    def make(
        *,
        in_process: bool = True,
        allow_sha1: bool = False,
        keys: KeyPair | None = None,
        sign_alg: str = SIG_RSA_SHA256,
        digest_alg: str = DIGEST_SHA256,
    ) -> Server:
        conf = idp_config(keys or idp_keys, xmlsec1, sp_metadata, sign_alg, digest_alg)
        server = Server(config=IdPConfig().load(conf))
        if in_process:
            install_in_process_backend(server, allow_sha1=allow_sha1)
        return server

    return make


@pytest.fixture
def make_sp(sp_keys: KeyPair, idp_metadata: str, xmlsec1: str) -> MakeSp:
    """A pysaml2 SP trusting the IdP's metadata; stock xmlsec1 backend unless ``in_process=True``."""

    def make(*, in_process: bool = False, allow_sha1: bool = False) -> Saml2Client:
        client = Saml2Client(config=SPConfig().load(sp_config(sp_keys, xmlsec1, idp_metadata)))
        if in_process:
            install_in_process_backend(client, allow_sha1=allow_sha1)
        return client

    return make


