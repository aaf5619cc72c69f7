"""A legacy SAML app signs a citizen in through the broker with Sign in with Apple, end to end.

Real peers: a pysaml2 SP, the broker on its own HTTP server with the ``apple`` preset, and an Apple-style
provider (the demo provider with ``AppleStyle``) on ``localhost``, another site than the broker on 127.0.0.1.
Its form_post answer is a cross-site POST, so the SameSite-aware browser withholds the broker's Lax session
cookie and the broker must bounce the answer same-site. Apple sends the name only on the first authorization;
the SP must still receive it on the second. When Apple hands out a private relay address, apps that ask for
``email_relay`` (SAML attribute ``urn:civic-broker:attribute:email_relay``, OIDC claim by the ``claims``
parameter) learn that it is one; for the person's own address they learn that it is not.

Needs ``APPLE`` in ``broker.upstream.presets.PRESETS``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import lxml.html  # type: ignore[import-untyped]  # lxml ships no type information
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from broker.demo.oidc_provider import (
    AppleStyle,
    DemoClient,
    DemoProvider,
    DemoProviderSettings,
    DemoUser,
    create_demo_provider,
)
from broker.keys.keyring import write_private
from tests.databases import database_for
from tests.flows.federation import ExtraUpstream, Federation, running_federation
from tests.flows.oidc_peers import relying_party
from tests.peers.browser import Browser
from tests.peers.servers import WsgiApp
from tests.sp_metadata import sp_metadata

TEAM_ID, KEY_ID, CLIENT_ID = "TEAM000042", "KEY0000042", "org.example.city-broker"
SAME_SITE_MARK = "_same_site"  # the field the broker's bounce page adds (broker.web.login)
AINO = DemoUser("aino", "sisu", {
    "sub": "000042.c0ffee.1234", "email": "aino@example.org", "email_verified": True,
    "given_name": "Aino", "family_name": "Korhonen",
})


@dataclass
class AppleUpstream:
    """Builds the Apple-style provider and the broker's ``apple`` registration for ``running_federation``."""

    team_key: ec.EllipticCurvePrivateKey
    provider: DemoProvider | None = None
    #: Aino chose "Hide My Email": Apple gives the broker a relay address and is_private_email true
    relay: bool = False

    def build(self, base_url: str, redirect_uri: str, folder: Path) -> tuple[WsgiApp, dict[str, Any]]:
        key_file = folder / "certs" / f"AuthKey_{KEY_ID}.p8"
        write_private(key_file, self.team_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        self.provider = create_demo_provider(DemoProviderSettings(
            issuer=base_url,
            clients=(DemoClient(CLIENT_ID, "a static secret Apple never accepts", (redirect_uri,)),),
            users=(AINO,),
            auto_login=AINO.username,
            apple=AppleStyle(TEAM_ID, {KEY_ID: self.team_key.public_key()},
                             private_relay=frozenset({AINO.username} if self.relay else ())),
        ))
        return self.provider.app, {
            # no client_secret_env/file: the apple preset signs its own client secret
            "protocol": "oidc", "preset": "apple", "issuer": base_url, "client_id": CLIENT_ID,
            # relative to the instance folder, as an operator would write it
            "options": {"team_id": TEAM_ID, "key_id": KEY_ID,
                        "private_key_file": str(key_file.relative_to(folder))},
        }


@pytest.fixture
def apple(request: pytest.FixtureRequest) -> AppleUpstream:
    """Aino's own address; with ``indirect`` parametrization ``True``, a private relay address."""
    return AppleUpstream(ec.generate_private_key(ec.SECP256R1()), relay=getattr(request, "param", False))


@pytest.fixture
def federation(tmp_path: Path, key_folder: Path, apple: AppleUpstream) -> Iterator[Federation]:
    database = database_for("sqlite", tmp_path)
    extra = ExtraUpstream("apple", apple.build, host="localhost")
    with running_federation(tmp_path / "instance", key_folder, next(database), extra_upstreams=[extra]) as running:
        yield running


def _sign_in_with_apple(federation: Federation, browser: Browser) -> tuple[Any, dict[str, str]]:
    """From the SP through discovery and Apple back to the SP's answer page.

    Returns the SP's parsed response and the fields Apple posted.
    """
    request_id, discovery = federation.login(browser)
    assert discovery.status_code == 200, discovery.text
    forms = lxml.html.document_fromstring(discovery.text).forms
    chosen = [i for i, f in enumerate(forms) if (f.action or "").endswith("/upstream/apple")]
    assert len(chosen) == 1 and "Sign in with Apple" in discovery.text

    at_apple = browser.submit(discovery, form=chosen[0])
    assert urlsplit(at_apple.url).hostname == "localhost", at_apple.url
    assert browser.is_self_submitting(at_apple), at_apple.text  # form_post: a page that posts the answer

    posted = browser.form_fields(at_apple)
    # cross-site, but the broker is https and its cookie SameSite=None; Secure, so the cookie comes along and
    # no same-site bounce is needed (that bounce, for plain-http Lax cookies: tests/security/test_attack_browser.py)
    answer = browser.auto_submit(at_apple)
    assert answer.status_code == 200, answer.text
    assert SAME_SITE_MARK not in browser.form_fields(answer) and "SAMLResponse" in browser.form_fields(answer)
    response = federation.sps["sp1"].parse(browser.form_fields(answer)["SAMLResponse"], request_id)
    assert response is not None
    return response, posted


def test_name_reaches_the_sp_on_the_first_and_the_second_login(federation: Federation, browser: Browser,
                                                                apple: AppleUpstream) -> None:
    first, first_fields = _sign_in_with_apple(federation, browser)
    with Browser() as other:  # a new browser: no SSO session, so the broker goes to Apple again
        second, second_fields = _sign_in_with_apple(federation, other)

    assert "user" in first_fields
    assert "user" not in second_fields  # Apple sends the name once
    for response in (first, second):
        identity = response.get_identity()
        assert identity["givenName"] == ["Aino"]
        assert identity["sn"] == ["Korhonen"]
        assert identity["mail"] == ["aino@example.org"]
    assert second.get_subject().text == first.get_subject().text
    assert federation.accounts() == 1
    assert apple.provider is not None and apple.provider.apple is not None
    assert apple.provider.apple.refusals() == []  # the broker's client secret JWT was accepted each time
    assert apple.provider.hits("token") == 2


def test_apple_registration_is_loaded_with_the_presets_defaults(federation: Federation) -> None:
    """The canary for the preset: an unknown preset or a bad option would drop the registration here."""
    snapshot = federation.app.extensions["broker"].registry.snapshot
    assert snapshot.problems == ()
    party = snapshot.upstream_parties["apple"]
    assert party.display_name == "Apple"
    assert party.issuer == federation.extra["apple"].url.replace("127.0.0.1", "localhost")


# -- private relay addresses: the email_relay claim ----------------------------------------------------------

RELAY_CASES = pytest.mark.parametrize("apple", [True, False], indirect=True, ids=["relay", "own-address"])


def _saml_answer_via_apple(federation: Federation, browser: Browser) -> Any:
    """sp1's parsed Response after a sign-in through discovery and Apple, however the answer travels back."""
    request_id, discovery = federation.login(browser)
    forms = lxml.html.document_fromstring(discovery.text).forms
    [chosen] = [i for i, f in enumerate(forms) if (f.action or "").endswith("/upstream/apple")]
    page = browser.submit(discovery, form=chosen)
    while browser.is_self_submitting(page) and "SAMLResponse" not in browser.form_fields(page):
        page = browser.auto_submit(page)  # Apple's form_post, the broker's same-site bounce
    assert page.status_code == 200, page.text
    response = federation.sps["sp1"].parse(browser.form_fields(page)["SAMLResponse"], request_id)
    assert response is not None
    return response


def _apple_address(apple: AppleUpstream) -> str:
    assert apple.provider is not None and apple.provider.apple is not None
    return apple.provider.apple.email_of(AINO)[0]


@RELAY_CASES
def test_a_saml_app_that_asks_learns_whether_the_address_is_a_relay(federation: Federation, browser: Browser,
                                                                   apple: AppleUpstream) -> None:
    sp = federation.sps["sp1"]
    asking = sp_metadata(sp.entity_id, sp.keys, requested=("mail", "givenName", "sn", "emailRelay"))
    assert 'Name="urn:civic-broker:attribute:email_relay"' in asking  # a RequestedAttribute under the uri format
    (federation.folder / "metadata" / "saml-sp" / "sp1.xml").write_text(asking)
    federation.app.extensions["broker"].registry.reload()

    response = _saml_answer_via_apple(federation, browser)

    identity = response.get_identity()
    address = _apple_address(apple)
    assert identity["mail"] == [address]
    assert address.endswith("@privaterelay.appleid.com") is apple.relay
    assert identity["emailRelay"] == ["true" if apple.relay else "false"]
    names = {a.name for s in response.assertion.attribute_statement for a in s.attribute}
    assert "urn:civic-broker:attribute:email_relay" in names


def test_a_saml_app_that_does_not_ask_is_not_told(federation: Federation, browser: Browser) -> None:
    response = _saml_answer_via_apple(federation, browser)  # sp1's metadata asks for mail, givenName and sn

    assert "emailRelay" not in response.get_identity()


@RELAY_CASES
def test_an_oidc_app_that_asks_gets_the_claim(federation: Federation, browser: Browser, apple: AppleUpstream) -> None:
    asked = json.dumps({"id_token": {"email_relay": None}, "userinfo": {"email_relay": None}})
    with relying_party(federation, "city-app") as rp:
        page = browser.get(f"{rp.url}/login", params={"claims": asked, "idp_hint": "apple"})
        while browser.is_self_submitting(page):  # Apple's form_post, then the broker's same-site bounce
            page = browser.auto_submit(page)
        assert page.status_code == 200, page.text
        plain = browser.get(f"{rp.url}/login", params={"idp_hint": "apple"})  # the SSO session answers

        asking, silent = rp.outcomes
        assert plain.status_code == 200, plain.text
        assert asking.id_token_claims is not None and asking.userinfo is not None
        assert asking.userinfo["email"] == _apple_address(apple)
        assert asking.userinfo["email_relay"] is apple.relay
        assert asking.id_token_claims["email_relay"] is apple.relay
        assert silent.userinfo is not None and silent.userinfo["email"] == _apple_address(apple)
        assert "email_relay" not in silent.userinfo  # the email scope alone does not release it
        assert apple.provider is not None and apple.provider.hits("token") == 1
