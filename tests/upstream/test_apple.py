"""Sign in with Apple: the ``apple`` preset's quirks against an Apple-style provider, each rule kept and broken.

The provider is the demo provider with ``AppleStyle`` (authlib's server, Apple's departures added), served on
``http://localhost:PORT`` so that it is another site than the callback on 127.0.0.1: its form_post answer is a
real cross-site POST. Its token endpoint verifies the client secret JWT, so every client-secret test is decided
by a verifier, not by the code that signs.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey

from broker.core import errors
from broker.core.model import EmailTrust, UpstreamIdentity
from broker.demo.oidc_provider import (
    AppleStyle,
    DemoClient,
    DemoProvider,
    DemoProviderSettings,
    DemoUser,
    create_demo_provider,
)
from broker.upstream import presets
from broker.upstream.apple import APPLE, MAX_SECRET_LIFETIME, AppleQuirks, parse_user_field
from broker.upstream.http_pool import UpstreamHttp
from broker.upstream.oidc import OidcUpstream, OidcUpstreamSettings, PendingAuthorization
from broker.upstream.quirks import STANDARD, StandardQuirks
from tests.peers.browser import Browser, same_site
from tests.peers.servers import LateApp, RunningServer, serve
from tests.upstream.support import close_worlds

TEAM_ID, KEY_ID, CLIENT_ID = "ABCDE12345", "KEY1234567", "org.example.broker"
ANNA = DemoUser("anna", "correct horse", {
    "sub": "001234.5f8a9d.0917", "email": "anna@example.org", "email_verified": True,
    "given_name": "Anna", "family_name": "Virtanen",
})
PAT = DemoUser("pat", "battery staple", {  # hides the address behind Apple's private relay
    "sub": "001234.77aa21.1203", "email": "pat@example.org", "email_verified": True,
    "given_name": "Pat", "family_name": "Kim",
})
NEW = DemoUser("new", "unverified", {  # an address Apple has not verified (the flag is false)
    "sub": "001234.0000aa.0001", "email": "new@example.org", "email_verified": False,
    "given_name": "Nea", "family_name": "Uusi",
})


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Registration:
    """An upstream registration as ``presets`` reads it (``broker.registry.UpstreamRegistration``'s shape)."""

    name: str = "apple"
    preset: str | None = "apple"
    display_name: str | None = None
    issuer: str | None = None
    client_id: str = CLIENT_ID
    client_secret: str = ""  # the apple preset needs none
    scopes: tuple[str, ...] | None = None
    authorization_params: tuple[tuple[str, str], ...] = ()
    options: tuple[tuple[str, str | tuple[str, ...]], ...] = ()


@pytest.fixture(scope="session")
def team_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
        encryption: serialization.KeySerializationEncryption | None = None) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             encryption or serialization.NoEncryption())


@pytest.fixture
def key_file(tmp_path: Path, team_key: ec.EllipticCurvePrivateKey) -> Path:
    path = tmp_path / f"AuthKey_{KEY_ID}.p8"
    path.write_bytes(pem(team_key))
    return path


def quirks_for(key_file: Path, **options: str) -> AppleQuirks:
    values = {"team_id": TEAM_ID, "key_id": KEY_ID, "private_key_file": str(key_file), **options}
    built = APPLE.build_quirks(values, Registration())
    assert isinstance(built, AppleQuirks)
    return built


@pytest.fixture(scope="session")
def callback_server() -> Iterator[RunningServer]:
    """Stands in for the broker's redirect URI on 127.0.0.1: answers with the fields it received, as JSON."""
    app = Flask("callback")

    @app.route("/callback", methods=["GET", "POST"])
    def callback() -> ResponseReturnValue:
        return jsonify({"method": request.method, "fields": request.values.to_dict()})

    with serve(app) as server:
        yield server


@dataclass
class AppleWorld:
    provider: DemoProvider
    server: RunningServer
    redirect_uri: str
    http: UpstreamHttp
    browser: Browser
    quirks: AppleQuirks
    answers: list[dict[str, Any]] = field(default_factory=list)

    @property
    def issuer(self) -> str:
        return self.provider.issuer

    def upstream(self, quirks: StandardQuirks | None = None, **overrides: Any) -> OidcUpstream:
        """The adapter as the ``apple`` preset configures it (issuer overridden to the local provider)."""
        values: dict[str, Any] = {
            "name": "apple", "display_name": APPLE.display_name, "issuer": self.issuer, "client_id": CLIENT_ID,
            "client_secret": "configured-static-secret", "redirect_uri": self.redirect_uri, "scopes": APPLE.scopes,
            "allowed_algs": APPLE.allowed_algs, "preset": APPLE.name, "quirks": quirks or self.quirks,
        }
        values.update(overrides)
        return OidcUpstream(OidcUpstreamSettings(**values), self.http)

    def authorize(self, upstream: OidcUpstream, now: datetime | None = None
                  ) -> tuple[PendingAuthorization, dict[str, str]]:
        """``start``, the browser through the provider, and its form_post page submitted cross-site."""
        url, pending = upstream.start(now or utcnow())
        page = self.browser.get(url)
        assert page.status_code == 200, page.text
        assert self.browser.is_self_submitting(page), page.text
        answer = self.browser.auto_submit(page).json()
        self.answers.append(answer)
        assert answer["method"] == "POST"
        return pending, answer["fields"]

    def login(self, upstream: OidcUpstream | None = None, now: datetime | None = None,
              tamper: Callable[[dict[str, str]], None] | None = None) -> UpstreamIdentity:
        adapter = upstream or self.upstream()
        pending, fields = self.authorize(adapter, now)
        if tamper is not None:
            tamper(fields)
        return adapter.finish(pending, fields, now or utcnow())


@pytest.fixture
def make_world(team_key: ec.EllipticCurvePrivateKey, key_file: Path,
               callback_server: RunningServer) -> Iterator[Callable[..., AppleWorld]]:
    worlds: list[AppleWorld] = []

    def make(user: str = "anna", string_booleans: bool = True) -> AppleWorld:
        late = LateApp()
        server = serve(late)
        redirect_uri = callback_server.url + "/callback"
        provider = create_demo_provider(DemoProviderSettings(
            issuer=f"http://localhost:{server.port}",  # another site than the callback on 127.0.0.1
            clients=(DemoClient(CLIENT_ID, "a static secret Apple never accepts", (redirect_uri,)),),
            users=(ANNA, PAT, NEW),
            auto_login=user,
            apple=AppleStyle(TEAM_ID, {KEY_ID: team_key.public_key()}, private_relay=frozenset({"pat"}),
                             string_booleans=string_booleans),
        ))
        late.target = provider.app
        world = AppleWorld(provider, server, redirect_uri, UpstreamHttp(), Browser(), quirks_for(key_file))
        worlds.append(world)
        return world

    yield make
    close_worlds(worlds)


@pytest.fixture
def world(make_world: Callable[..., AppleWorld]) -> AppleWorld:
    return make_world()


def sign(claims: dict[str, Any], key: ec.EllipticCurvePrivateKey, kid: str = KEY_ID) -> str:
    return jwt.encode({"alg": "ES256", "kid": kid}, claims, ECKey.import_key(key), algorithms=["ES256"])


def secret_claims(now: datetime, **changes: Any) -> dict[str, Any]:
    iat = int(now.timestamp())
    return {"iss": TEAM_ID, "iat": iat, "exp": iat + 3600, "aud": "https://appleid.apple.com", "sub": CLIENT_ID,
            **changes}


class FixedSecret(AppleQuirks):
    """A client that sends the secret it is given (to show what the provider refuses)."""

    def __init__(self, base: AppleQuirks, secret: str) -> None:
        super().__init__(team_id=base.team_id, key_id=base.key_id, client_id=base.client_id,
                         private_key=ec.generate_private_key(ec.SECP256R1()))
        self.secret = secret

    def client_secret(self, configured: str, now: datetime) -> str:
        return self.secret


# -- the provider is shaped like Apple -----------------------------------------------------------------------


def test_discovery_has_no_userinfo_and_only_client_secret_post(world: AppleWorld) -> None:
    document = requests.get(world.provider.url("discovery"), timeout=10).json()

    assert "userinfo_endpoint" not in document
    assert document["token_endpoint_auth_methods_supported"] == ["client_secret_post"]
    assert "form_post" in document["response_modes_supported"]
    assert set(document["scopes_supported"]) == {"openid", "name", "email"}
    assert "authorization_response_iss_parameter_supported" not in document
    assert requests.get(world.provider.url("userinfo"), timeout=10).status_code == 404


# -- the happy path ------------------------------------------------------------------------------------------


def test_first_login_through_the_adapter(world: AppleWorld) -> None:
    upstream = world.upstream()
    url, _ = upstream.start(utcnow())
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert query["response_mode"] == "form_post"
    assert query["scope"] == "openid name email"

    identity = world.login(upstream)

    assert not same_site(world.issuer, world.redirect_uri)  # the form_post crossed sites
    assert identity.issuer == world.issuer
    assert identity.subject == ANNA.claims["sub"]
    assert identity.claims == {"email": "anna@example.org", "email_verified": True, "given_name": "Anna",
                               "family_name": "Virtanen", "name": "Anna Virtanen"}
    assert identity.email_trust is EmailTrust.VERIFIED
    assert identity.linkable_email == "anna@example.org"
    assert world.provider.hits("token") == 1
    assert world.provider.apple is not None and world.provider.apple.refusals() == []


# -- response_mode=form_post ---------------------------------------------------------------------------------


def test_form_post_is_requested_and_cannot_be_configured_away(world: AppleWorld) -> None:
    upstream = world.upstream(extra_authorization_params={"response_mode": "query"})
    url, _ = upstream.start(utcnow())
    assert parse_qs(urlsplit(url).query)["response_mode"] == ["form_post"]

    plain = world.upstream(quirks=STANDARD)  # without Apple's quirks the request is refused, as Apple does
    plain_url, _ = plain.start(utcnow())
    refused = world.browser.get(plain_url)
    assert refused.status_code == 400
    assert "form_post" in refused.text


# -- the one-time ``user`` field ---------------------------------------------------------------------------


def test_name_comes_from_the_user_field_of_the_first_login_only(world: AppleWorld) -> None:
    first = world.login()
    second = world.login()

    assert "user" in world.answers[0]["fields"]
    assert json.loads(world.answers[0]["fields"]["user"]) == {
        "name": {"firstName": "Anna", "lastName": "Virtanen"}, "email": "anna@example.org"}
    assert (first.claims["given_name"], first.claims["family_name"]) == ("Anna", "Virtanen")
    assert "user" not in world.answers[1]["fields"]
    assert second.subject == first.subject
    assert not {"given_name", "family_name", "name"} & set(second.claims)
    assert second.sent_once == {"given_name", "family_name", "name"}  # so the account store keeps them
    assert world.provider.apple is not None
    world.provider.apple.forget("anna")  # "stop using Sign in with Apple": the next one is a first again
    assert world.login().claims["given_name"] == "Anna"


def test_user_field_never_overrides_the_id_token(world: AppleWorld) -> None:
    def forge(fields: dict[str, str]) -> None:
        fields["user"] = json.dumps({"name": {"firstName": "Mallory", "lastName": "M"}, "email": "boss@example.org",
                                     "sub": "someone-else", "email_verified": True, "is_private_email": False})

    identity = world.login(tamper=forge)

    assert identity.subject == ANNA.claims["sub"]
    assert identity.claims["email"] == "anna@example.org"
    assert identity.claims["given_name"] == "Mallory"  # a self-asserted name is all the field can carry
    assert identity.linkable_email == "anna@example.org"


@pytest.mark.parametrize("user_field", [
    "not json",
    "[]",
    '"text"',
    '{"name": "Anna Virtanen"}',
    '{"name": {"firstName": 5, "lastName": ["Virtanen"]}}',
    '{"name": {"firstName": "", "lastName": "   "}}',
    '{"name": {"firstName": "Anna\\u202eVirtanen"}}',  # a bidi override: not a name to show anyone
    '{"name": {"firstName": "' + "A" * 300 + '"}}',
    '{"name": ' + "[" * 2000 + "]" * 2000 + "}",  # nesting deep enough to exhaust the parser's recursion
    '{"name": {"firstName": "' + "A" * 5000 + '"}}',  # larger than any real field
    "\ud800",
], ids=["not-json", "list", "string", "name-string", "wrong-types", "blank", "control", "long-name", "deep",
        "huge", "lone-surrogate"])
def test_malformed_user_field_is_ignored_and_the_login_succeeds(world: AppleWorld, user_field: str) -> None:
    def replace(fields: dict[str, str]) -> None:
        fields["user"] = user_field

    identity = world.login(tamper=replace)

    assert identity.subject == ANNA.claims["sub"]
    assert identity.claims["email"] == "anna@example.org"
    assert not {"given_name", "family_name", "name"} & set(identity.claims)


def test_partly_usable_user_field_gives_what_is_usable() -> None:
    assert parse_user_field('{"name": {"firstName": " Anna ", "lastName": 7}}') == {"given_name": "Anna",
                                                                                     "name": "Anna"}
    assert parse_user_field('{"name": {"lastName": "Virtanen"}, "email": "x@example.org"}') == {
        "family_name": "Virtanen", "name": "Virtanen"}
    assert parse_user_field(None) == {}


# -- email_verified / is_private_email ------------------------------------------------------------------------


@pytest.mark.parametrize("string_booleans", [True, False], ids=["strings", "booleans"])
def test_boolean_claims_as_strings_or_booleans(make_world: Callable[..., AppleWorld], string_booleans: bool) -> None:
    verified = make_world("anna", string_booleans=string_booleans).login()
    unverified = make_world("new", string_booleans=string_booleans).login()

    assert verified.claims["email_verified"] is True
    assert verified.email_trust is EmailTrust.VERIFIED
    assert unverified.claims["email_verified"] is False
    assert unverified.email_trust is EmailTrust.UNVERIFIED
    assert unverified.linkable_email is None


@pytest.mark.parametrize("string_booleans", [True, False], ids=["strings", "booleans"])
def test_private_relay_address_is_never_verified(make_world: Callable[..., AppleWorld],
                                                 string_booleans: bool) -> None:
    identity = make_world("pat", string_booleans=string_booleans).login()

    assert str(identity.claims["email"]).endswith("@privaterelay.appleid.com")
    assert identity.claims["email_verified"] is True  # Apple vouches the relay delivers...
    assert identity.email_trust is EmailTrust.PRIVATE_RELAY  # ...but it names no one outside this team
    assert identity.linkable_email is None
    assert identity.claims["email_relay"] is True  # kept with the address, for apps that ask (core.email_relay)


@pytest.mark.parametrize(("claims", "trust"), [
    ({"email": "a@example.org", "email_verified": "true", "is_private_email": "false"}, EmailTrust.VERIFIED),
    ({"email": "a@example.org", "email_verified": True, "is_private_email": "true"}, EmailTrust.PRIVATE_RELAY),
    ({"email": "x1@privaterelay.appleid.com", "email_verified": "true", "is_private_email": False},
     EmailTrust.PRIVATE_RELAY),
    ({"email": "x1@PrivateRelay.AppleID.com.", "email_verified": True}, EmailTrust.PRIVATE_RELAY),
    ({"email": "x1@eu.privaterelay.appleid.com", "email_verified": True}, EmailTrust.PRIVATE_RELAY),
    ({"email": "a@example.org", "email_verified": "true", "is_private_email": "maybe"}, EmailTrust.UNVERIFIED),
    ({"email": "a@example.org", "email_verified": "yes"}, EmailTrust.UNVERIFIED),
    ({"email": "a@example.org", "email_verified": 1}, EmailTrust.UNVERIFIED),
    ({"email_verified": True}, EmailTrust.UNVERIFIED),
], ids=["verified", "flagged-private", "relay-domain", "relay-domain-case", "relay-subdomain", "unknown-flag",
        "unknown-verified", "number", "no-email"])
def test_email_trust_rules(key_file: Path, claims: dict[str, Any], trust: EmailTrust) -> None:
    assert quirks_for(key_file).email_trust(claims) is trust


# -- the client secret JWT -----------------------------------------------------------------------------------


def test_client_secret_is_an_es256_jwt_of_the_team(key_file: Path, team_key: ec.EllipticCurvePrivateKey) -> None:
    now = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)
    secret = quirks_for(key_file).client_secret("configured-static-secret", now)

    token = jwt.decode(secret, ECKey.import_key(team_key.public_key()), algorithms=["ES256"])
    assert token.header["alg"] == "ES256" and token.header["kid"] == KEY_ID
    iat = int(now.timestamp()) - 60  # backdated a minute for a provider clock a little behind
    assert token.claims == {"iss": TEAM_ID, "iat": iat, "exp": iat + 30 * 86400,
                            "aud": "https://appleid.apple.com", "sub": CLIENT_ID}
    assert "configured-static-secret" not in secret


def test_client_secret_is_kept_and_renewed_before_it_expires(key_file: Path,
                                                            team_key: ec.EllipticCurvePrivateKey) -> None:
    quirks = quirks_for(key_file)
    t0 = datetime(2030, 5, 1, tzinfo=UTC)
    first = quirks.client_secret("", t0)

    assert quirks.client_secret("", t0 + timedelta(days=22)) == first
    renewed = quirks.client_secret("", t0 + timedelta(days=23))  # less than 7 days left
    assert renewed != first
    renewed_at = int((t0 + timedelta(days=23)).timestamp())
    assert jwt.decode(renewed, ECKey.import_key(team_key.public_key())).claims["iat"] == renewed_at - 60
    assert quirks.client_secret("", t0 + timedelta(days=24)) == renewed
    assert quirks.client_secret("", t0) != renewed  # the clock went back: never a secret from the future
    with pytest.raises(ValueError, match="timezone"):
        quirks.client_secret("", datetime(2030, 5, 1))


def test_client_secret_is_issued_once_under_concurrency(key_file: Path) -> None:
    quirks = quirks_for(key_file)
    now = utcnow()
    seen: list[str] = []
    lock = threading.Lock()

    def take() -> None:
        secret = quirks.client_secret("", now)
        with lock:
            seen.append(secret)

    threads = [threading.Thread(target=take) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 16 and len(set(seen)) == 1


def test_provider_accepts_the_kept_secret_and_the_renewed_one(world: AppleWorld, key_file: Path) -> None:
    now = utcnow()
    kept = quirks_for(key_file)
    issued = kept.client_secret("", now - timedelta(days=20))  # 10 days left: still used
    world.login(world.upstream(kept), now)
    assert kept.client_secret("", now) == issued

    renewing = quirks_for(key_file)
    old = renewing.client_secret("", now - timedelta(days=24))  # 6 days left: renewed at the next login
    world.login(world.upstream(renewing), now)
    assert renewing.client_secret("", now) != old

    assert world.provider.apple is not None and world.provider.apple.refusals() == []
    assert world.provider.hits("token") == 2


BAD_SECRETS: dict[str, tuple[Callable[[datetime, ec.EllipticCurvePrivateKey], str], str]] = {
    "other-key": (lambda now, key: sign(secret_claims(now), ec.generate_private_key(ec.SECP256R1())), "signature"),
    "unknown-kid": (lambda now, key: sign(secret_claims(now), key, kid="OTHERKEY99"), "kid"),
    "other-team": (lambda now, key: sign(secret_claims(now, iss="ZZZZZ99999"), key), "iss"),
    "other-client": (lambda now, key: sign(secret_claims(now, sub="org.example.other"), key), "sub"),
    "issuer-as-aud": (lambda now, key: sign(secret_claims(now, aud="http://localhost"), key), "aud"),
    "expired": (lambda now, key: sign(secret_claims(now - timedelta(days=31), exp=int(now.timestamp()) - 60), key),
                "expired"),
    "over-six-months": (lambda now, key: sign(secret_claims(
        now, exp=int(now.timestamp()) + int(MAX_SECRET_LIFETIME.total_seconds()) + 1), key), "more than"),
    "from-the-future": (lambda now, key: sign(secret_claims(now + timedelta(hours=1), exp=int(now.timestamp()) + 7200),
                                              key), "future"),
    "no-exp": (lambda now, key: sign({k: v for k, v in secret_claims(now).items() if k != "exp"}, key), "exp"),
    "hs256": (lambda now, key: jwt.encode({"alg": "HS256", "kid": KEY_ID}, secret_claims(now),
                                          OctKey.import_key(b"k" * 32), algorithms=["HS256"]), "alg"),
    "static-secret": (lambda now, key: "a static secret Apple never accepts", "not a signed JWT"),
}


@pytest.mark.parametrize("case", list(BAD_SECRETS))
def test_provider_refuses_a_bad_client_secret(world: AppleWorld, team_key: ec.EllipticCurvePrivateKey,
                                              case: str) -> None:
    make, reason = BAD_SECRETS[case]
    now = utcnow()
    upstream = world.upstream(FixedSecret(world.quirks, make(now, team_key)))

    with pytest.raises(errors.UpstreamError) as raised:
        world.login(upstream, now)

    assert "HTTP 401, error 'invalid_client'" in str(raised.value.detail)
    assert world.provider.apple is not None
    assert reason in world.provider.apple.refusals()[-1]


def test_provider_refuses_the_secret_of_a_wrong_key_file(world: AppleWorld, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.p8"
    wrong.write_bytes(pem(ec.generate_private_key(ec.SECP256R1())))

    with pytest.raises(errors.UpstreamError) as raised:
        world.login(world.upstream(quirks_for(wrong)))
    assert "invalid_client" in str(raised.value.detail)
    assert world.provider.apple is not None and "signature" in world.provider.apple.refusals()[-1]


# -- the preset and its options ------------------------------------------------------------------------------


def test_apple_preset_defaults() -> None:
    assert (APPLE.name, APPLE.display_name, APPLE.issuer) == ("apple", "Apple", "https://appleid.apple.com")
    assert APPLE.scopes == ("openid", "name", "email")
    assert APPLE.allowed_algs == ("RS256",)
    assert list(APPLE.options_help) == ["team_id", "key_id", "private_key_file"]


def test_settings_for_fills_in_the_apple_preset(key_file: Path) -> None:
    """Needs ``APPLE`` in ``presets.PRESETS``. No client secret is registered: the preset makes its own."""
    options = (("key_id", KEY_ID), ("private_key_file", str(key_file)), ("team_id", TEAM_ID))
    settings = presets.settings_for(Registration(options=options), redirect_uri="https://broker.example/cb")

    assert settings.issuer == "https://appleid.apple.com"
    assert settings.scopes == ("openid", "name", "email")
    assert isinstance(settings.quirks, AppleQuirks)
    assert settings.quirks.client_id == CLIENT_ID


def test_relative_key_path_is_taken_from_the_working_directory(key_file: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(key_file.parent)
    assert quirks_for(Path(key_file.name)).key_id == KEY_ID


def _options_case(tmp_path: Path, team_key: ec.EllipticCurvePrivateKey, case: str) -> dict[str, Any]:
    good: dict[str, Any] = {"team_id": TEAM_ID, "key_id": KEY_ID, "private_key_file": str(tmp_path / "k.p8")}
    (tmp_path / "k.p8").write_bytes(pem(team_key))
    files = {
        "not-pem": b"-----BEGIN NOTHING-----\n",
        "rsa-key": pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        "p384-key": pem(ec.generate_private_key(ec.SECP384R1())),
        "encrypted": pem(team_key, serialization.BestAvailableEncryption(b"passphrase")),
    }
    if case in files:
        (tmp_path / "bad.p8").write_bytes(files[case])
        return {**good, "private_key_file": str(tmp_path / "bad.p8")}
    changes: dict[str, dict[str, Any]] = {
        "no-team": {"team_id": None}, "no-key-id": {"key_id": None}, "no-file": {"private_key_file": None},
        "empty-team": {"team_id": ""}, "short-team": {"team_id": "ABC"}, "lowercase-key-id": {"key_id": "key1234567"},
        "list": {"team_id": (TEAM_ID,)}, "unknown": {"hosted_domain": "example.org"},
        "missing-file": {"private_key_file": str(tmp_path / "absent.p8")},
    }
    changed = {**good, **changes[case]}
    return {k: v for k, v in changed.items() if v is not None}


@pytest.mark.parametrize(("case", "message"), [
    ("no-team", "missing options: team_id"), ("no-key-id", "missing options: key_id"),
    ("no-file", "missing options: private_key_file"), ("empty-team", "missing options: team_id"),
    ("short-team", "options.team_id"), ("lowercase-key-id", "options.key_id"), ("list", "options.team_id must be text"),
    ("unknown", "unknown options \\['hosted_domain'\\]"), ("missing-file", "cannot read private_key_file"),
    ("not-pem", "not an unencrypted PEM private key"), ("encrypted", "not an unencrypted PEM private key"),
    ("rsa-key", "not an EC P-256 key"), ("p384-key", "not an EC P-256 key"),
])
def test_preset_options_are_validated(tmp_path: Path, team_key: ec.EllipticCurvePrivateKey, case: str,
                                      message: str) -> None:
    options = _options_case(tmp_path, team_key, case)
    with pytest.raises(ValueError, match=message) as raised:
        APPLE.build_quirks(options, Registration())
    assert "upstream 'apple'" in str(raised.value)


def test_quirks_refuse_a_lifetime_apple_would_refuse(team_key: ec.EllipticCurvePrivateKey) -> None:
    def make(**kwargs: Any) -> AppleQuirks:
        return AppleQuirks(team_id=TEAM_ID, key_id=KEY_ID, client_id=CLIENT_ID, private_key=team_key, **kwargs)

    make(lifetime=MAX_SECRET_LIFETIME)
    with pytest.raises(ValueError, match="lifetime"):
        make(lifetime=MAX_SECRET_LIFETIME + timedelta(seconds=1))
    with pytest.raises(ValueError, match="renew_before"):
        make(lifetime=timedelta(days=7), renew_before=timedelta(days=7))
