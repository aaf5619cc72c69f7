"""Logout tokens from an upstream OpenID provider (Back-Channel Logout 1.0 §2.6, ``broker.upstream.oidc_backchannel``):
tokens signed with the demo provider's own key (published in its JWKS, fetched by the adapter over real HTTP the way
its ID tokens' keys are) pass; each broken rule is refused with a detail naming the check that fired.
"""

from __future__ import annotations

import base64
import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from broker.core import errors
from broker.demo.oidc_provider import Mischief
from broker.upstream.oidc import OidcUpstream
from broker.upstream.oidc_backchannel import LOGOUT_EVENT, MAX_AGE, OidcBackChannel
from tests.upstream.conftest import CLIENT_ID, OidcWorld, utcnow

Claims = dict[str, Any]


def adapter(world: OidcWorld) -> tuple[OidcBackChannel, OidcUpstream]:
    upstream = world.upstream()
    return OidcBackChannel(lambda name: upstream if name == "demo" else None), upstream


def claims(world: OidcWorld, now: datetime, **changes: Any) -> Claims:
    made: Claims = {"iss": world.issuer, "aud": CLIENT_ID, "iat": int(now.timestamp()),
                    "exp": int((now + timedelta(minutes=2)).timestamp()), "jti": secrets.token_urlsafe(16),
                    "events": {LOGOUT_EVENT: {}}, "sub": "alice-0001", "sid": "op-session-1"}
    made.update(changes)
    return {k: v for k, v in made.items() if v is not None}


def signed(world: OidcWorld, body: Claims, key: RSAKey | None = None, **header: Any) -> str:
    current = world.provider.keys.current
    return jwt.encode({"alg": "RS256", "kid": str(current.kid), "typ": "logout+jwt", **header}, body,
                      key or current, ["RS256"])


def b64(value: Claims) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def test_a_good_token_names_the_identity_and_the_session(world: OidcWorld) -> None:
    back_channel, _ = adapter(world)
    now = utcnow()
    body = claims(world, now)

    verified = back_channel.verify("demo", signed(world, body), now)

    assert verified.upstream == "demo"
    assert verified.identity == (world.issuer, "alice-0001")  # the key the ID token's sign-in was linked under
    assert (verified.sid, verified.jti) == ("op-session-1", body["jti"])
    assert verified.keep_jti_until >= now + MAX_AGE  # until its iat is too old to be accepted anyway


def test_the_jwks_is_the_one_the_id_tokens_use(world: OidcWorld) -> None:
    """One cache per upstream: a sign-in fetched the JWKS, the logout token is checked without fetching it again."""
    back_channel, upstream = adapter(world)
    now = utcnow()
    world.login(upstream, now)
    fetched = world.provider.hits("jwks")

    back_channel.verify("demo", signed(world, claims(world, now)), now)

    assert world.provider.hits("jwks") == fetched == 1


@pytest.mark.parametrize("changes", [
    {"sid": None},  # sub alone: all the person's sessions at the provider
    {"sub": None},  # sid alone
    {"exp": None},  # drafts before 1.0 final had no exp
    {"aud": ["another-client", CLIENT_ID]},
    {"events": {LOGOUT_EVENT: {}, "https://example.org/other-event": {"x": 1}}},
])
def test_the_forms_the_specification_allows_pass(world: OidcWorld, changes: Claims) -> None:
    back_channel, _ = adapter(world)
    now = utcnow()
    verified = back_channel.verify("demo", signed(world, claims(world, now, **changes)), now)
    assert verified.identity == (None if "sub" in changes else (world.issuer, "alice-0001"))
    assert verified.sid == (None if "sid" in changes else "op-session-1")


def refused(back_channel: OidcBackChannel, token: str, now: datetime, words: str,
            upstream: str = "demo", expected: type[errors.BrokerError] = errors.UpstreamVerificationFailed) -> None:
    with pytest.raises(expected) as failure:
        back_channel.verify(upstream, token, now)
    assert words in (failure.value.detail or ""), failure.value.detail


SKEW = timedelta(seconds=60)  # OidcUpstreamSettings.clock_skew_seconds


@pytest.mark.parametrize(("changes", "words"), [
    ({"iss": "https://evil.example"}, "iss 'https://evil.example' is not"),
    ({"aud": "another-client"}, "aud 'another-client' does not include this client"),
    ({"aud": None}, "aud 'None' does not include"),
    ({"nonce": "n-0001"}, "it carries a nonce"),
    ({"events": None}, "events has no back-channel logout member"),
    ({"events": {"http://schemas.openid.net/event/other": {}}}, "events has no back-channel logout member"),
    ({"events": {LOGOUT_EVENT: "yes"}}, "events has no back-channel logout member"),
    ({"sub": None, "sid": None}, "neither sub nor sid"),
    ({"sub": 12}, "sub is not a string"),
    ({"jti": None}, "no jti"),
    ({"iat": None}, "iat is missing"),
    ({"iat": "now"}, "iat is missing or not a finite number"),
])
def test_a_broken_claim_is_refused(world: OidcWorld, changes: Claims, words: str) -> None:
    back_channel, _ = adapter(world)
    now = utcnow()
    refused(back_channel, signed(world, claims(world, now, **changes)), now, words)


@pytest.mark.parametrize(("iat_from_now", "exp_from_now", "words"), [
    (SKEW + timedelta(seconds=5), timedelta(minutes=3), "issued in the future"),
    (-(MAX_AGE + SKEW + timedelta(seconds=5)), timedelta(minutes=3), "more than 0:10:00 before now"),
    (-timedelta(minutes=5), -(SKEW + timedelta(seconds=5)), "expired at"),
])
def test_a_token_out_of_its_time_is_refused(world: OidcWorld, iat_from_now: timedelta, exp_from_now: timedelta,
                                            words: str) -> None:
    back_channel, _ = adapter(world)
    now = utcnow()
    body = claims(world, now, iat=int((now + iat_from_now).timestamp()), exp=int((now + exp_from_now).timestamp()))
    refused(back_channel, signed(world, body), now, words)


def test_times_within_the_skew_pass(world: OidcWorld) -> None:
    back_channel, _ = adapter(world)
    now = utcnow()
    body = claims(world, now, iat=int((now + SKEW - timedelta(seconds=5)).timestamp()))
    assert back_channel.verify("demo", signed(world, body), now).jti == body["jti"]
    old = claims(world, now, iat=int((now - MAX_AGE).timestamp()), exp=None)
    assert back_channel.verify("demo", signed(world, old), now).jti == old["jti"]


def test_a_token_signed_with_another_key_is_refused(world: OidcWorld) -> None:
    back_channel, _ = adapter(world)
    now = utcnow()
    foreign = RSAKey.generate_key(2048)
    refused(back_channel, signed(world, claims(world, now), key=foreign), now, "logout token: signature not valid")


def test_a_token_with_an_unknown_kid_is_refused(world: OidcWorld) -> None:
    back_channel, _ = adapter(world)
    now = utcnow()
    refused(back_channel, signed(world, claims(world, now), kid="not-published"), now, "no RS256 key with kid")


@pytest.mark.parametrize("alg", ["none", "HS256"])
def test_alg_none_and_hmac_are_refused(world: OidcWorld, alg: str) -> None:
    """``none`` never; HS256 with the provider's public key as the secret never (RFC 8725 §2.1, §3.1)."""
    back_channel, _ = adapter(world)
    now = utcnow()
    token = f"{b64({'alg': alg, 'typ': 'logout+jwt'})}.{b64(claims(world, now))}."
    refused(back_channel, token, now, f"logout token: alg '{alg}' is not allowed")


def test_an_algorithm_the_upstream_does_not_use_is_refused(world: OidcWorld) -> None:
    upstream = world.upstream(allowed_algs=("ES256",))
    back_channel = OidcBackChannel(lambda name: upstream)
    now = utcnow()
    refused(back_channel, signed(world, claims(world, now)), now, "alg 'RS256' is not allowed")


def test_a_token_typed_as_another_jwt_is_refused(world: OidcWorld) -> None:
    back_channel, _ = adapter(world)
    now = utcnow()
    refused(back_channel, signed(world, claims(world, now), typ="at+jwt"), now, "typ 'at+jwt' is not a logout")


@pytest.mark.parametrize("token", ["", "not-a-jwt", "a.b", "a.b.c.d.e", "é.é.é"])
def test_garbage_is_refused(world: OidcWorld, token: str) -> None:
    back_channel, _ = adapter(world)
    refused(back_channel, token, utcnow(), "logout token:")


def test_an_overlong_token_is_not_read(world: OidcWorld) -> None:
    back_channel, _ = adapter(world)
    refused(back_channel, "a" * 20_000 + ".b.c", utcnow(), "characters long")


def test_an_id_token_is_no_logout_token(world: OidcWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real ID token of the provider, replayed as a logout token: its nonce (and missing events) refuse it."""
    back_channel, upstream = adapter(world)
    now = utcnow()
    issued: list[str] = []
    original = world.provider.keys.tamper

    def recording(id_token: str, mischief: Mischief) -> str:
        issued.append(id_token)
        return original(id_token, mischief)

    monkeypatch.setattr(world.provider.keys, "tamper", recording)
    world.login(upstream, now)
    [id_token] = issued
    refused(back_channel, id_token, now, "logout token: events has no back-channel logout member")


def test_a_name_that_is_no_oidc_upstream_is_refused(world: OidcWorld) -> None:
    back_channel, _ = adapter(world)
    now = utcnow()
    refused(back_channel, signed(world, claims(world, now)), now, "no OpenID Connect upstream", upstream="other",
            expected=errors.UnknownUpstream)
    assert back_channel.knows("demo") and not back_channel.knows("other")


def test_now_must_be_aware(world: OidcWorld) -> None:
    back_channel, _ = adapter(world)
    with pytest.raises(ValueError, match="timezone-aware"):
        back_channel.verify("demo", "a.b.c", datetime.now(UTC).replace(tzinfo=None))  # naive, as now

