"""The OIDC upstream adapter against a real provider: the flows that must work."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from broker.core import errors
from broker.upstream.oidc import PendingAuthorization
from tests.upstream.conftest import ALICE, CLIENT_ID, OidcWorld, utcnow


def test_happy_path_maps_claims_to_the_broker_vocabulary(world: OidcWorld) -> None:
    upstream = world.upstream()
    before = utcnow()
    identity = world.login(upstream)

    assert identity.upstream == "demo"
    assert identity.issuer == world.issuer
    assert identity.subject == "alice-0001"
    assert identity.claims == {
        "email": "alice@example.org",
        "email_verified": True,
        "given_name": "Alice",
        "family_name": "Anders",
        "name": "Alice Anders",
    }
    assert identity.acr is None
    assert identity.amr == ()
    assert before - timedelta(seconds=5) <= identity.auth_time <= utcnow() + timedelta(seconds=5)


def test_authorization_request_carries_state_nonce_and_pkce(world: OidcWorld) -> None:
    url, pending = world.upstream(extra_authorization_params={"prompt": "login"}).start(utcnow())
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}

    assert url.startswith(world.provider.url("authorize") + "?")
    assert query["response_type"] == "code"
    assert query["client_id"] == CLIENT_ID
    assert query["redirect_uri"] == world.redirect_uri
    assert query["scope"] == "openid email profile"
    assert query["state"] == pending.state
    assert query["nonce"] == pending.nonce
    assert query["code_challenge_method"] == "S256"
    assert query["code_challenge"] != pending.code_verifier
    assert query["prompt"] == "login"
    assert pending.code_verifier not in url

    _, other = world.upstream().start(utcnow())
    assert len({pending.state, other.state, pending.nonce, other.nonce}) == 4


def test_pending_authorization_survives_json() -> None:
    created = datetime(2030, 1, 2, tzinfo=UTC)
    pending = PendingAuthorization("demo", "st", "no", "v" * 43, "http://127.0.0.1/cb", created)
    assert PendingAuthorization.from_json(pending.to_json()) == pending
    with pytest.raises(errors.LoginStateInvalid):
        PendingAuthorization.from_json('{"state": "only"}')
    assert "v" * 43 not in repr(pending)


def test_interactive_login_through_the_form(make_world: Callable[..., OidcWorld]) -> None:
    world = make_world(auto_login=None)
    upstream = world.upstream()
    url, pending = upstream.start(utcnow())
    form_page = world.browser.get(url)
    assert "DEMO" in form_page.text

    wrong = world.browser.submit(form_page, {"username": "alice", "password": "nope"}, button="login")
    assert wrong.status_code == 200 and "Wrong user name or password" in wrong.text

    answer = world.browser.submit(wrong, {"username": "alice", "password": ALICE.password}, button="login")
    params = answer.json()
    identity = upstream.finish(pending, params, utcnow())
    assert identity.subject == "alice-0001"


def test_acr_amr_and_auth_time_come_from_the_id_token(make_world: Callable[..., OidcWorld]) -> None:
    world = make_world(acr="urn:example:loa:2")
    identity = world.login(world.upstream())
    assert identity.acr == "urn:example:loa:2"
    assert identity.amr == ("pwd",)


def test_client_secret_post_when_the_provider_allows_only_that(make_world: Callable[..., OidcWorld]) -> None:
    world = make_world(token_auth_methods=("client_secret_post",))
    assert world.login(world.upstream()).subject == "alice-0001"


def test_discovery_and_jwks_are_cached(world: OidcWorld) -> None:
    upstream = world.upstream()
    now = utcnow()
    world.login(upstream, now)
    world.login(upstream, now + timedelta(seconds=10))
    assert world.provider.hits("discovery") == 1
    assert world.provider.hits("jwks") == 1

    world.login(upstream, now + timedelta(seconds=3600))  # past metadata_ttl_seconds
    assert world.provider.hits("discovery") == 2
    assert world.provider.hits("jwks") == 2


def test_key_rotation_refetches_the_jwks_once(world: OidcWorld) -> None:
    upstream = world.upstream()
    now = utcnow()
    world.login(upstream, now)
    assert world.provider.hits("jwks") == 1

    old_kid = world.provider.current_kid
    new_kid = world.provider.rotate_key()
    assert new_kid != old_kid

    identity = world.login(upstream, now + timedelta(seconds=1))
    assert identity.subject == "alice-0001"
    assert world.provider.hits("jwks") == 2


def test_unknown_kid_refetch_is_rate_limited(world: OidcWorld) -> None:
    upstream = world.upstream(jwks_refetch_interval_seconds=60)
    now = utcnow()
    world.login(upstream, now)
    world.provider.rotate_key()
    world.login(upstream, now + timedelta(seconds=1))  # the one refetch
    assert world.provider.hits("jwks") == 2

    world.provider.rotate_key()
    with pytest.raises(errors.UpstreamVerificationFailed) as failure:
        world.login(upstream, now + timedelta(seconds=2))
    assert "no RS256 key with kid" in (failure.value.detail or "")
    assert world.provider.hits("jwks") == 2  # a forged kid cannot make us fetch again

    world.login(upstream, now + timedelta(seconds=62))
    assert world.provider.hits("jwks") == 3


def test_after_dropping_old_keys_the_current_key_still_verifies(world: OidcWorld) -> None:
    upstream = world.upstream()
    now = utcnow()
    world.login(upstream, now)
    world.provider.rotate_key()
    world.provider.drop_old_keys()
    assert [k["kid"] for k in world.provider.jwks()["keys"]] == [world.provider.current_kid]
    assert world.login(upstream, now + timedelta(seconds=1)).subject == "alice-0001"
