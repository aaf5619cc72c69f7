"""Codes, access tokens and refresh tokens of the OpenID provider (``broker.downstream.oidc.grants``) against the
real ``SqlGrantStore``: SQLite always, PostgreSQL too when ``BROKER_TEST_DATABASE_URL`` is set.

What is proved here (RFC 6749 §4.1.2-§4.1.3, §6; RFC 7636 §4.6; RFC 9700 §2.2.2, §4.14):

- a code is single-use and short-lived; its second use revokes every token the first use produced, and a code
  presented by another client is refused and its grant revoked;
- a code is bound to the authorization request's ``redirect_uri`` and PKCE challenge (S256, with the RFC 7636
  Appendix B test vector), and a failed redemption uses the code up (no second try at a verifier);
- refresh tokens rotate: each use burns the old one, and presenting a burnt one revokes the whole grant;
- a refresh may ask for the granted scope or less; a larger scope is ``invalid_scope`` and does not burn the token.

The login requests come from ``parse_authorization_request``, so the fields ``issue_code`` reads are the ones the
authorization endpoint writes.
"""

from __future__ import annotations

import base64
import secrets
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from broker.core.grants import Grant, TokenKind, new_token
from broker.core.model import Account, LoginResult, UpstreamIdentity
from broker.core.ports import GrantStore
from broker.downstream.oidc.authorize import parse_authorization_request
from broker.downstream.oidc.errors import OAuthError
from broker.downstream.oidc.grants import (
    IssuedTokens,
    Lifetimes,
    issue_code,
    issue_tokens,
    redeem_code,
    rotate_refresh_token,
    s256,
)
from broker.oidc.client import OidcClient
from broker.storage import SqlAccountStore, SqlGrantStore, create_engine_for, upgrade
from broker.storage.sealing import Sealer
from tests.databases import BACKENDS, database_for

SEALER = Sealer([secrets.token_bytes(32)])  # claims sealed at rest under a key of this run
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
LIFETIMES = Lifetimes(code=timedelta(minutes=1), access_token=timedelta(minutes=10), id_token=timedelta(minutes=10),
                      refresh_token=timedelta(days=30))
#: RFC 7636 Appendix B: the 32 random octets, the verifier that is their base64url form, and its S256 challenge
VERIFIER_OCTETS = bytes([116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212, 37, 77,
                         105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121])
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
REDIRECT = "https://app.example.org/cb"

CITY_APP = OidcClient("city-app", "City app", (REDIRECT, "https://app.example.org/other"), "client_secret_basic",
                      scope=("openid", "profile", "email", "offline_access"),
                      grant_types=("authorization_code", "refresh_token"))
NO_REFRESH = OidcClient("no-refresh", "No refresh", ("https://nr.example.org/cb",), "client_secret_basic")
OTHER_APP = OidcClient("other-app", "Other app", ("https://other.example.org/cb",), "client_secret_basic",
                       grant_types=("authorization_code", "refresh_token"))
SPA = OidcClient("spa", "Single-page app", ("https://spa.example.org/",), "none")
CLIENTS = {c.client_id: c for c in (CITY_APP, NO_REFRESH, OTHER_APP, SPA)}


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated, empty database of each backend."""
    database = database_for(request.param, tmp_path)
    url = next(database)
    upgrade(url)
    engine = create_engine_for(url)
    try:
        yield engine
    finally:
        engine.dispose()
        for _ in database:  # drops the PostgreSQL schema
            pass


@pytest.fixture
def store(engine: Engine) -> GrantStore:
    return SqlGrantStore(engine)


@pytest.fixture
def account(engine: Engine) -> Account:
    identity = UpstreamIdentity(upstream="city-idp", issuer="https://idp.example.org", subject="anna",
                                claims={"email": "anna@example.org"}, acr="urn:loa:substantial", auth_time=NOW)
    created, _ = SqlAccountStore(engine, SEALER).create_with_identity(identity, NOW)
    return created


@dataclass
class Issued:
    grant: Grant
    code: str


SignIn = Callable[..., Issued]


@pytest.fixture
def sign_in(store: GrantStore, account: Account) -> SignIn:
    """Complete a sign-in of the test account for an authorization request of ``client`` and issue its code."""

    def sign_in(client: OidcClient = CITY_APP, *, at: datetime = NOW, **params: str) -> Issued:
        fields = {"client_id": client.client_id, "redirect_uri": client.redirect_uris[0], "response_type": "code",
                  "scope": "openid profile email offline_access", "state": "s-1", "nonce": "n-0S6_WzA2Mj", **params}
        login = parse_authorization_request(fields.items(), CLIENTS.get)
        result = LoginResult(request=login, account=account, released={}, upstream="city-idp",
                             acr="urn:loa:substantial", auth_time=at - timedelta(minutes=2), amr=("pwd", "otp"))
        grant, code = issue_code(store, result, frozenset({"email", "given_name"}), "sid-1", at, LIFETIMES)
        return Issued(grant, code)

    return sign_in


def assert_invalid_grant(caught: pytest.ExceptionInfo[OAuthError], revoked: str | None = None) -> None:
    """RFC 6749 §5.2 ``invalid_grant``, the same words whatever the reason (nothing to probe), and whether the
    request revoked a grant (a security event for the audit log)."""
    assert (caught.value.error, caught.value.status) == ("invalid_grant", 400)
    assert caught.value.description == "the authorization code or refresh token is invalid or expired"
    assert caught.value.revoked_grant == revoked


def tokens_live(store: GrantStore, issued: IssuedTokens, at: datetime = NOW) -> tuple[bool, bool]:
    access = store.find(TokenKind.ACCESS, issued.access_token, at) is not None
    refresh = issued.refresh_token is not None and store.find(TokenKind.REFRESH, issued.refresh_token, at) is not None
    return access, refresh


# -- the grant a code stands for ---------------------------------------------------------------------------------

def test_the_grant_records_the_request_and_the_sign_in(sign_in: SignIn, account: Account) -> None:
    issued = sign_in(code_challenge=CHALLENGE, code_challenge_method="S256",
                     claims='{"id_token": {"email": {"essential": true}}}')
    grant = issued.grant

    assert (grant.client_id, grant.account_id, grant.redirect_uri) == ("city-app", account.account_id, REDIRECT)
    assert grant.scope == ("openid", "profile", "email", "offline_access")
    assert (grant.nonce, grant.code_challenge) == ("n-0S6_WzA2Mj", CHALLENGE)
    assert grant.claims == {"email", "given_name"}
    assert grant.id_token_claims == {"email"}
    assert (grant.acr, grant.amr, grant.sid, grant.upstream) == ("urn:loa:substantial", ("pwd", "otp"), "sid-1",
                                                                  "city-idp")
    assert (grant.auth_time, grant.created_at) == (NOW - timedelta(minutes=2), NOW)
    assert len(issued.code) >= 43, "256 random bits (RFC 6749 §10.10)"


def test_a_request_without_nonce_or_pkce_gives_a_grant_without_them(sign_in: SignIn) -> None:
    grant = sign_in(nonce="").grant
    assert (grant.nonce, grant.code_challenge) == (None, None)


# -- codes: single use, expiry, replay -----------------------------------------------------------------------------

def test_a_code_is_redeemed_once(store: GrantStore, sign_in: SignIn) -> None:
    issued = sign_in()
    assert redeem_code(store, CITY_APP, issued.code, REDIRECT, None, NOW + SECOND) == issued.grant

    with pytest.raises(OAuthError) as caught:
        redeem_code(store, CITY_APP, issued.code, REDIRECT, None, NOW + 2 * SECOND)
    assert_invalid_grant(caught, revoked=issued.grant.grant_id)


def test_a_replayed_code_revokes_the_tokens_of_its_first_use(store: GrantStore, sign_in: SignIn) -> None:
    """RFC 6749 §4.1.2: "the authorization server ... SHOULD revoke (when possible) all tokens previously issued
    based on that authorization code"."""
    issued = sign_in()
    grant = redeem_code(store, CITY_APP, issued.code, REDIRECT, None, NOW)
    tokens = issue_tokens(store, CITY_APP, grant, NOW, LIFETIMES)
    assert tokens_live(store, tokens) == (True, True)

    with pytest.raises(OAuthError) as caught:
        redeem_code(store, CITY_APP, issued.code, REDIRECT, None, NOW + SECOND)
    assert_invalid_grant(caught, revoked=grant.grant_id)

    assert tokens_live(store, tokens, NOW + SECOND) == (False, False)
    assert tokens.refresh_token is not None
    with pytest.raises(OAuthError) as refresh:
        rotate_refresh_token(store, CITY_APP, tokens.refresh_token, None, NOW + SECOND)
    assert refresh.value.error == "invalid_grant"


def test_a_replay_after_the_code_expired_is_still_a_replay(store: GrantStore, sign_in: SignIn) -> None:
    issued = sign_in()
    grant = redeem_code(store, CITY_APP, issued.code, REDIRECT, None, NOW)
    tokens = issue_tokens(store, CITY_APP, grant, NOW, LIFETIMES)

    with pytest.raises(OAuthError) as caught:
        redeem_code(store, CITY_APP, issued.code, REDIRECT, None, NOW + LIFETIMES.code + SECOND)
    assert_invalid_grant(caught, revoked=grant.grant_id)
    assert tokens_live(store, tokens, NOW + 2 * LIFETIMES.code) == (False, False)


def test_an_expired_code_is_refused_without_revoking_anything(store: GrantStore, sign_in: SignIn) -> None:
    issued = sign_in()
    with pytest.raises(OAuthError) as caught:
        redeem_code(store, CITY_APP, issued.code, REDIRECT, None, NOW + LIFETIMES.code)
    assert_invalid_grant(caught)


@pytest.mark.parametrize("code", ["", "x", new_token(), "' OR 1=1 --"], ids=["empty", "short", "random", "sql"])
def test_an_unknown_code_is_refused(store: GrantStore, sign_in: SignIn, code: str) -> None:
    sign_in()
    with pytest.raises(OAuthError) as caught:
        redeem_code(store, CITY_APP, code, REDIRECT, None, NOW)
    assert_invalid_grant(caught)


def test_a_refresh_token_is_not_a_code(store: GrantStore, sign_in: SignIn) -> None:
    grant = redeem_code(store, CITY_APP, sign_in().code, REDIRECT, None, NOW)
    tokens = issue_tokens(store, CITY_APP, grant, NOW, LIFETIMES)
    for token in (tokens.access_token, tokens.refresh_token):
        assert token is not None
        with pytest.raises(OAuthError) as caught:
            redeem_code(store, CITY_APP, token, REDIRECT, None, NOW)
        assert_invalid_grant(caught)
    assert tokens_live(store, tokens) == (True, True)


def test_another_clients_code_is_refused_and_its_grant_revoked(store: GrantStore, sign_in: SignIn) -> None:
    """RFC 6749 §4.1.3: the code must have been issued to the authenticated client; a code in another client's
    hands was stolen, so its grant cannot be trusted either."""
    issued = sign_in()
    with pytest.raises(OAuthError) as caught:
        redeem_code(store, OTHER_APP, issued.code, REDIRECT, None, NOW)
    assert_invalid_grant(caught, revoked=issued.grant.grant_id)

    with pytest.raises(OAuthError) as rightful:
        redeem_code(store, CITY_APP, issued.code, REDIRECT, None, NOW + SECOND)
    assert rightful.value.error == "invalid_grant"


def test_concurrent_redemptions_of_one_code_have_one_winner(store: GrantStore, sign_in: SignIn) -> None:
    issued = sign_in()
    threads = 8
    start = threading.Barrier(threads)

    def redeem() -> Grant | OAuthError:
        start.wait()
        try:
            return redeem_code(store, CITY_APP, issued.code, REDIRECT, None, NOW)
        except OAuthError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=threads) as pool:
        outcomes = [f.result(timeout=60) for f in [pool.submit(redeem) for _ in range(threads)]]

    assert [o for o in outcomes if isinstance(o, Grant)] == [issued.grant]
    refusals = [o for o in outcomes if isinstance(o, OAuthError)]
    assert len(refusals) == threads - 1 and {r.error for r in refusals} == {"invalid_grant"}
    # every loser saw a replay, so the winner's grant is revoked: no tokens can be issued from it
    assert {r.revoked_grant for r in refusals} == {issued.grant.grant_id}


# -- codes: redirect_uri binding (RFC 6749 §4.1.3) -----------------------------------------------------------------

@pytest.mark.parametrize("redirect_uri", [None, "", "https://app.example.org/other", REDIRECT + "/",
                                          "https://APP.example.org/cb", REDIRECT + "?x=1"])
def test_the_redirect_uri_must_be_the_authorization_requests(store: GrantStore, sign_in: SignIn,
                                                               redirect_uri: str | None) -> None:
    issued = sign_in()
    with pytest.raises(OAuthError) as caught:
        redeem_code(store, CITY_APP, issued.code, redirect_uri, None, NOW)
    assert_invalid_grant(caught)


def test_the_second_registered_redirect_uri_binds_too(store: GrantStore, sign_in: SignIn) -> None:
    other = "https://app.example.org/other"
    with pytest.raises(OAuthError) as caught:
        redeem_code(store, CITY_APP, sign_in(redirect_uri=other).code, REDIRECT, None, NOW)
    assert_invalid_grant(caught)
    assert redeem_code(store, CITY_APP, sign_in(redirect_uri=other).code, other, None, NOW).redirect_uri == other


def test_a_failed_redemption_uses_the_code_up(store: GrantStore, sign_in: SignIn) -> None:
    """No second attempt at the redirect URI or the verifier with the same code: the retry is a replay."""
    issued = sign_in(code_challenge=CHALLENGE, code_challenge_method="S256")
    with pytest.raises(OAuthError):
        redeem_code(store, CITY_APP, issued.code, REDIRECT, "x" * 43, NOW)
    with pytest.raises(OAuthError) as retry:
        redeem_code(store, CITY_APP, issued.code, REDIRECT, VERIFIER, NOW + SECOND)
    assert_invalid_grant(retry, revoked=issued.grant.grant_id)


# -- PKCE (RFC 7636) -------------------------------------------------------------------------------------------

def test_s256_matches_the_rfc_7636_appendix_b_vector() -> None:
    assert base64.urlsafe_b64encode(VERIFIER_OCTETS).decode().rstrip("=") == VERIFIER
    assert s256(VERIFIER) == CHALLENGE


@pytest.mark.parametrize("client", [CITY_APP, SPA], ids=["confidential", "public"])
def test_the_right_verifier_redeems_the_code(store: GrantStore, sign_in: SignIn, client: OidcClient) -> None:
    issued = sign_in(client, code_challenge=CHALLENGE, code_challenge_method="S256")
    grant = redeem_code(store, client, issued.code, client.redirect_uris[0], VERIFIER, NOW)
    assert grant == issued.grant and grant.code_challenge == CHALLENGE


@pytest.mark.parametrize("verifier", [
    None,  # the request had a challenge: the verifier is required (RFC 7636 §4.5)
    "",
    VERIFIER[:-1] + "Z",
    VERIFIER[:42],  # too short (RFC 7636 §4.1: 43-128 characters)
    VERIFIER + "x" * 86,  # 129 characters
    CHALLENGE,  # the challenge itself, as a "plain" client would send it
    VERIFIER.upper(),
    VERIFIER[:-1] + "\u00e9",  # not ASCII
    " " + VERIFIER,
])
def test_a_wrong_verifier_is_refused(store: GrantStore, sign_in: SignIn, verifier: str | None) -> None:
    issued = sign_in(code_challenge=CHALLENGE, code_challenge_method="S256")
    with pytest.raises(OAuthError) as caught:
        redeem_code(store, CITY_APP, issued.code, REDIRECT, verifier, NOW)
    assert_invalid_grant(caught)


def test_a_verifier_without_a_challenge_is_refused(store: GrantStore, sign_in: SignIn) -> None:
    """RFC 9700 §4.8.2 (PKCE downgrade): a code obtained without PKCE must not be redeemed with a verifier."""
    issued = sign_in()
    with pytest.raises(OAuthError) as caught:
        redeem_code(store, CITY_APP, issued.code, REDIRECT, VERIFIER, NOW)
    assert_invalid_grant(caught)


# -- tokens ------------------------------------------------------------------------------------------------------

def test_tokens_from_a_code(store: GrantStore, sign_in: SignIn) -> None:
    grant = redeem_code(store, CITY_APP, sign_in().code, REDIRECT, None, NOW)
    tokens = issue_tokens(store, CITY_APP, grant, NOW, LIFETIMES)

    assert tokens.grant == grant and tokens.expires_in == 600
    assert tokens.refresh_token is not None and tokens.refresh_token != tokens.access_token
    access = store.find(TokenKind.ACCESS, tokens.access_token, NOW + 9 * timedelta(minutes=1))
    assert access is not None and access.expires_at == NOW + LIFETIMES.access_token and access.grant == grant
    assert store.find(TokenKind.ACCESS, tokens.access_token, NOW + LIFETIMES.access_token) is None
    refresh = store.find(TokenKind.REFRESH, tokens.refresh_token, NOW)
    assert refresh is not None and refresh.expires_at == NOW + LIFETIMES.refresh_token


def test_no_refresh_token_without_the_refresh_token_grant_type(store: GrantStore, sign_in: SignIn) -> None:
    issued = sign_in(NO_REFRESH, scope="openid")
    grant = redeem_code(store, NO_REFRESH, issued.code, NO_REFRESH.redirect_uris[0], None, NOW)
    tokens = issue_tokens(store, NO_REFRESH, grant, NOW, LIFETIMES)
    assert tokens.refresh_token is None
    assert tokens_live(store, tokens) == (True, False)


# -- refresh tokens: rotation and reuse (RFC 6749 §6, RFC 9700 §4.14.2) ------------------------------------------

@pytest.fixture
def first_tokens(store: GrantStore, sign_in: SignIn) -> IssuedTokens:
    grant = redeem_code(store, CITY_APP, sign_in().code, REDIRECT, None, NOW)
    return issue_tokens(store, CITY_APP, grant, NOW, LIFETIMES)


def _refresh(tokens: IssuedTokens) -> str:
    assert tokens.refresh_token is not None
    return tokens.refresh_token


def test_refresh_rotates_the_refresh_token(store: GrantStore, first_tokens: IssuedTokens) -> None:
    later = NOW + timedelta(hours=1)
    grant = rotate_refresh_token(store, CITY_APP, _refresh(first_tokens), None, later)
    assert grant == first_tokens.grant
    second = issue_tokens(store, CITY_APP, grant, later, LIFETIMES)

    assert store.find(TokenKind.REFRESH, _refresh(first_tokens), later) is None, "the used one is burnt"
    assert tokens_live(store, second, later) == (True, True)
    third = rotate_refresh_token(store, CITY_APP, _refresh(second), None, later + SECOND)
    assert third == first_tokens.grant


def test_reusing_a_rotated_refresh_token_revokes_the_grant(store: GrantStore, first_tokens: IssuedTokens) -> None:
    """RFC 9700 §4.14.2: the old token was copied; attacker and client cannot be told apart, so the chain ends."""
    grant = rotate_refresh_token(store, CITY_APP, _refresh(first_tokens), None, NOW + SECOND)
    second = issue_tokens(store, CITY_APP, grant, NOW + SECOND, LIFETIMES)

    with pytest.raises(OAuthError) as caught:
        rotate_refresh_token(store, CITY_APP, _refresh(first_tokens), None, NOW + 2 * SECOND)
    assert_invalid_grant(caught, revoked=grant.grant_id)

    assert tokens_live(store, second, NOW + 2 * SECOND) == (False, False)
    assert tokens_live(store, first_tokens, NOW + 2 * SECOND) == (False, False)
    with pytest.raises(OAuthError) as newest:
        rotate_refresh_token(store, CITY_APP, _refresh(second), None, NOW + 3 * SECOND)
    assert newest.value.error == "invalid_grant"


def test_an_expired_refresh_token_is_refused(store: GrantStore, first_tokens: IssuedTokens) -> None:
    with pytest.raises(OAuthError) as caught:
        rotate_refresh_token(store, CITY_APP, _refresh(first_tokens), None, NOW + LIFETIMES.refresh_token)
    assert_invalid_grant(caught)


def test_another_clients_refresh_token_is_refused_and_its_grant_revoked(store: GrantStore,
                                                                        first_tokens: IssuedTokens) -> None:
    with pytest.raises(OAuthError) as caught:
        rotate_refresh_token(store, OTHER_APP, _refresh(first_tokens), None, NOW)
    assert caught.value.error == "invalid_grant"
    assert caught.value.revoked_grant == first_tokens.grant.grant_id
    assert tokens_live(store, first_tokens) == (False, False)


@pytest.mark.parametrize("token", ["", new_token(), "x" * 512], ids=["empty", "random", "long"])
def test_an_unknown_refresh_token_is_refused(store: GrantStore, first_tokens: IssuedTokens, token: str) -> None:
    with pytest.raises(OAuthError) as caught:
        rotate_refresh_token(store, CITY_APP, token, None, NOW)
    assert_invalid_grant(caught)
    assert tokens_live(store, first_tokens) == (True, True)


def test_an_access_token_is_not_a_refresh_token(store: GrantStore, first_tokens: IssuedTokens) -> None:
    with pytest.raises(OAuthError) as caught:
        rotate_refresh_token(store, CITY_APP, first_tokens.access_token, None, NOW)
    assert_invalid_grant(caught)


# -- scope at refresh (RFC 6749 §6: "MUST NOT include any scope not originally granted") ------------------------

@pytest.mark.parametrize("scope", ["openid profile email offline_access", "offline_access openid", "openid", "",
                                   "email  openid"])
def test_refresh_with_the_granted_scope_or_less(store: GrantStore, first_tokens: IssuedTokens, scope: str) -> None:
    assert rotate_refresh_token(store, CITY_APP, _refresh(first_tokens), scope, NOW) == first_tokens.grant
    assert store.find(TokenKind.REFRESH, _refresh(first_tokens), NOW) is None


@pytest.mark.parametrize("scope", ["openid address", "openid profile email offline_access phone", "admin",
                                   "OPENID"])
def test_a_larger_scope_is_invalid_scope_and_does_not_burn_the_token(store: GrantStore, first_tokens: IssuedTokens,
                                                                     scope: str) -> None:
    with pytest.raises(OAuthError) as caught:
        rotate_refresh_token(store, CITY_APP, _refresh(first_tokens), scope, NOW)
    assert (caught.value.error, caught.value.status, caught.value.revoked_grant) == ("invalid_scope", 400, None)

    # the client may correct its request: the token is still good, and the grant was not revoked
    assert tokens_live(store, first_tokens) == (True, True)
    assert rotate_refresh_token(store, CITY_APP, _refresh(first_tokens), "openid", NOW + SECOND) == first_tokens.grant
