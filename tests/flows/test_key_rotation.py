"""Signing-key rotation (``broker keys rotate``, ``broker.keys.rotation``): staged keys are published before they
sign, a switch keeps what was signed before verifiable, and the previous keys are retired after a grace period.

The end-to-end test restarts the broker after each step (instances read ``certs/`` at start-up) and checks with
real peers: an authlib relying party's ID token and a pysaml2 SP's view of the broker's metadata and Responses.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from flask import Flask
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError
from joserfc.jwk import KeySet

from broker.app import close_app, create_app
from broker.config.settings import load_settings
from broker.keys.keyring import generate_keyring, load_keyring
from broker.keys.rotation import RotationError, retire, stage, status, switch
from tests.flows.federation import Federation
from tests.flows.oidc_peers import relying_party
from tests.flows.oidc_to_oidc_support import sign_in
from tests.peers.browser import Browser

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


@pytest.fixture
def certs(tmp_path: Path) -> Path:
    generate_keyring(tmp_path / "certs", "test broker", bits=2048)
    return tmp_path / "certs"


def test_the_steps_run_only_in_order_and_after_their_waiting_periods(certs: Path) -> None:
    with pytest.raises(RotationError, match="no keys are staged"):
        switch(certs, T0)
    stage(certs, "test broker", T0, bits=2048)
    with pytest.raises(RotationError, match="already staged"):
        stage(certs, "test broker", T0, bits=2048)
    with pytest.raises(RotationError, match="switch after"):
        switch(certs, T0 + timedelta(hours=1))
    assert status(certs).phase == "staged"

    switch(certs, T0 + timedelta(hours=25))
    assert status(certs).phase == "grace"
    with pytest.raises(RotationError, match="retire after"):
        retire(certs, T0 + timedelta(hours=26))
    assert retire(certs, T0 + timedelta(hours=50)) is True
    assert status(certs).phase == "steady" and retire(certs, T0 + timedelta(hours=51)) is False


def test_the_key_ring_publishes_staged_and_previous_keys_but_signs_with_the_active_ones(certs: Path) -> None:
    before = load_keyring(certs)
    stage(certs, "test broker", T0, bits=2048)
    staged = load_keyring(certs)
    switch(certs, T0, force=True)
    switched = load_keyring(certs)

    active = {k.kid for k in before.jwt_keys if k.active}
    staged_kids = {k.kid for k in staged.jwt_keys} - active
    assert len(staged_kids) == 2 and all(not k.active for k in staged.jwt_keys if k.kid in staged_kids)
    assert {k.kid for k in switched.jwt_keys if k.active} == staged_kids
    assert {k.kid for k in switched.jwt_keys if not k.active} == active  # previous: published, not signing
    assert len(staged.published_cert_files) == 1 and len(switched.published_cert_files) == 1
    assert (certs / "signing.key").stat().st_mode & 0o077 == 0
    assert (certs / "previous" / "signing.key").stat().st_mode & 0o077 == 0


@pytest.fixture
def restarts(federation: Federation) -> Iterator[list[Flask]]:
    """The instances ``_restart`` started; closed after the test (the federation closes only its first one)."""
    started: list[Flask] = []
    yield started
    for app in started:
        close_app(app)


def _restart(fed: Federation, started: list[Flask]) -> Flask:
    """A new instance on the same folder (what a rolling restart does); the one it replaces is closed."""
    old = fed.app
    fed.app = create_app(load_settings(fed.folder / "broker.toml", environ={}))
    fed.broker_late.target = fed.app
    if old in started:
        started.remove(old)
        close_app(old)
    started.append(fed.app)
    return fed.app


def _jwks(fed: Federation) -> KeySet:
    return KeySet.import_key_set(requests.get(fed.url + "/oidc/jwks", timeout=10).json())


def _signing_certs(fed: Federation) -> int:
    return requests.get(fed.url + "/saml2/idp/metadata", timeout=10).text.count('use="signing"')


def test_rotation_never_breaks_a_relying_party(federation: Federation, browser: Browser,
                                               restarts: list[Flask]) -> None:
    certs = federation.folder / "certs"
    with relying_party(federation) as rp:
        sign_in(browser, rp)
        old_token = rp.last.token["id_token"] if rp.last.token else ""
        assert _signing_certs(federation) == 1

        stage(certs, "test broker", datetime.now(UTC), bits=2048)
        _restart(federation, restarts)
        published = _jwks(federation)
        assert _signing_certs(federation) == 2  # the next certificate is in the SAML metadata before it signs
        with Browser() as second:
            sign_in(second, rp)
            assert rp.last.token is not None
            assert jwt.decode(rp.last.token["id_token"], published).header["kid"] == \
                jwt.decode(old_token, published).header["kid"]  # still the old key signs

        switch(certs, datetime.now(UTC), force=True)
        _restart(federation, restarts)
        with Browser() as third:
            sign_in(third, rp)
            assert rp.last.error is None and rp.last.token is not None
            new_token = rp.last.token["id_token"]
        assert jwt.decode(new_token, published).header["kid"] != jwt.decode(old_token, published).header["kid"]
        after = _jwks(federation)
        jwt.decode(old_token, after)  # signed before the switch: still verifies with the JWKS of now
        jwt.decode(new_token, published)  # the key that signs now was published before it signed

        retire(certs, datetime.now(UTC), force=True)
        _restart(federation, restarts)
        with pytest.raises(InvalidKeyIdError):  # retired: no longer published
            jwt.decode(old_token, _jwks(federation))
    assert _signing_certs(federation) == 1


def test_a_saml_app_with_metadata_from_the_staging_time_trusts_the_switched_key(
        federation: Federation, browser: Browser, restarts: list[Flask]) -> None:
    certs = federation.folder / "certs"
    stage(certs, "test broker", datetime.now(UTC), bits=2048)
    _restart(federation, restarts)
    idp_metadata = requests.get(federation.url + "/saml2/idp/metadata", timeout=10).text
    federation.sps["sp1"].connect(idp_metadata)  # the app refreshes its metadata while the keys are staged

    switch(certs, datetime.now(UTC), force=True)
    _restart(federation, restarts)
    request_id, page = federation.login(browser, "sp1")

    response = federation.sps["sp1"].parse(browser.form_fields(page)["SAMLResponse"], request_id)
    assert response is not None and response.get_identity()["mail"] == ["anna@example.org"]
