"""Property-based tests of the OpenID Connect relying party: the callback's parameters into
``OidcUpstream.finish``, the provider's signed claims, and any compact-JWT-looking string into
``validate_id_token``.

The property: ``finish`` gives an ``UpstreamIdentity`` only for the provider's real answer to this pending
authorization, and otherwise raises ``UpstreamError`` (its documented contract: nothing of authlib, joserfc or
requests escapes); ``validate_id_token`` returns claims that pass every check of OIDC Core §3.1.3.7, or raises
``UpstreamVerificationFailed``. The provider is the broker's demo OpenID provider on 127.0.0.1 (real HTTP).
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

import lxml.html  # type: ignore[import-untyped]
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import event, example, given
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey

from broker.core import errors
from broker.core.model import UpstreamIdentity, utcnow
from broker.demo.oidc_provider_config import NO_MISCHIEF, Mischief
from broker.storage.tables import PendingStateRow
from broker.upstream.oidc_tokens import MAX_SUB_LENGTH, IdTokenExpectations, validate_id_token
from tests.databases import BACKENDS
from tests.flows.federation import Federation
from tests.peers.browser import Browser
from tests.security.fuzz_support import (
    OidcWorld,
    count_rows,
    fuzz_settings,
    json_values,
    junk_text,
    live_federation,
    note_refusal,
    oidc_world,
    text_values,
)

CALLBACK_KEYS = ("code", "state", "iss", "error", "error_description", "error_uri", "session_state", "user",
                 "id_token", "scope", "_same_site")
#: keys that look like the real ones to a person or a lenient parser, never to the broker
LOOKALIKE_KEYS = ("State", "state ", " state", "state[]", "code\x00", "ISS", "iss\u200b", "error ")


@pytest.fixture(scope="module")
def world() -> Iterator[OidcWorld]:
    with oidc_world() as running:
        yield running


# -- the callback's parameters ---------------------------------------------------------------------------------


@st.composite
def _edited(draw: st.DrawFn, real: dict[str, str]) -> dict[str, str]:
    """``real`` with keys removed, replaced or added: junk, huge values, the right value under another key."""
    params = dict(real)
    for key in draw(st.lists(st.sampled_from(sorted(real) or ["state"]), max_size=2, unique=True)):
        params.pop(key, None)
    keys = st.sampled_from(CALLBACK_KEYS + LOOKALIKE_KEYS) | junk_text(12)
    values = text_values() | st.sampled_from(sorted(real.values()) or [""]) | st.sampled_from(
        ("", "access_denied", "user_cancelled_authorize", "invalid_request", " ", "\x00"))
    params.update(draw(st.dictionaries(keys, values, max_size=4)))
    return params


@fuzz_settings(60)
@given(data=st.data(), mode=st.sampled_from(("junk", "real-state", "real-answer")))
@example(data=None, mode="real-answer")  # unchanged: the provider's own answer signs in
def test_finish_with_any_callback_params(world: OidcWorld, data: st.DataObject | None, mode: str) -> None:
    now = utcnow()
    if mode == "real-answer":
        pending, real = world.authorize(now)
    else:
        pending, real = world.upstream.start(now)[1], {}
        if mode == "real-state":
            real = {"state": pending.state, "iss": world.provider.issuer, "code": "not-a-code"}
    params = data.draw(_edited(real), label="params") if data is not None else real
    if mode == "junk" and data is not None:
        params = data.draw(st.dictionaries(st.sampled_from(CALLBACK_KEYS) | junk_text(12), text_values(),
                                           max_size=6), label="junk")
    try:
        identity = world.upstream.finish(pending, params, now)
    except errors.UpstreamError as refused:
        note_refusal(refused)
        return

    event("accepted")
    assert isinstance(identity, UpstreamIdentity)
    assert (identity.issuer, identity.subject) == (world.provider.issuer, "fuzz-0001")
    for key in ("state", "code", "iss"):
        assert params.get(key) == real.get(key), f"accepted with a changed {key}"
    assert "error" not in params


def test_the_callback_test_reaches_sign_in(world: OidcWorld) -> None:
    """The provider's own answer, unchanged, signs in: every refusal above is the fuzzing's doing."""
    now = utcnow()
    pending, params = world.authorize(now)
    assert world.upstream.finish(pending, params, now).subject == "fuzz-0001"


# -- what the provider signs -----------------------------------------------------------------------------------

ID_TOKEN_CLAIMS = ("iss", "aud", "azp", "exp", "iat", "nbf", "auth_time", "nonce", "sub", "acr", "amr", "at_hash",
                   "email", "email_verified", "given_name", "family_name", "name", "address", "phone_number")


@fuzz_settings(40)
@given(overrides=st.dictionaries(st.sampled_from(ID_TOKEN_CLAIMS), json_values(6), max_size=4),
       dropped=st.lists(st.sampled_from(ID_TOKEN_CLAIMS), max_size=3, unique=True),
       profile=st.dictionaries(st.sampled_from(ID_TOKEN_CLAIMS[9:]), json_values(6), max_size=4))
def test_finish_with_any_claims_the_provider_signs(world: OidcWorld, overrides: dict[str, Any], dropped: list[str],
                                                   profile: dict[str, Any]) -> None:
    """The ID token's claims (and the person's profile, which UserInfo also answers) hold anything JSON can."""
    before = dict(world.claims)
    world.claims.update(profile)
    world.provider.mischief = Mischief(claim_overrides=overrides, drop_claims=tuple(dropped))
    try:
        now = utcnow()
        pending, params = world.authorize(now)
        try:
            identity = world.upstream.finish(pending, params, now)
        except errors.UpstreamError as refused:
            note_refusal(refused)
            return
    finally:
        world.provider.mischief = NO_MISCHIEF
        world.claims.clear()
        world.claims.update(before)

    event("accepted")
    for name in ("iss", "aud", "nonce", "sub", "exp", "iat"):
        assert name not in dropped or name in overrides
    assert identity.subject == str(overrides.get("sub", "fuzz-0001"))
    assert all(isinstance(value, str | bool | dict) for value in identity.claims.values())


# -- validate_id_token on its own ------------------------------------------------------------------------------

ISSUER, CLIENT, NONCE = "https://op.example.org", "fuzz-client", "n-0S6_WzA2Mj"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def keys() -> dict[str, RSAKey | ECKey]:
    rsa_key = RSAKey.import_key(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    ec_key = ECKey.import_key(ec.generate_private_key(ec.SECP256R1()))
    return {"rsa": rsa_key, "ec": ec_key}


def _expected(access_token: str | None = None) -> IdTokenExpectations:
    return IdTokenExpectations(issuer=ISSUER, client_id=CLIENT, nonce=NONCE, allowed_algs=("RS256", "ES256", "PS256"),
                               now=NOW, clock_skew=timedelta(seconds=60), access_token=access_token)


def _resolver(keys: dict[str, RSAKey | ECKey]) -> Any:
    def resolve(kid: str | None, alg: str) -> RSAKey | ECKey:
        if kid == "unknown":
            raise errors.UpstreamVerificationFailed(detail="no key")
        return keys["ec"] if alg.startswith("ES") else keys["rsa"]
    return resolve


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@st.composite
def _compact(draw: st.DrawFn) -> str:
    """Anything from junk to three well-formed base64url segments of JSON, of arbitrary bytes, or of neither."""
    segment = st.one_of(
        json_values(8).map(lambda v: _b64(json.dumps(v).encode())),
        st.fixed_dictionaries({"alg": st.sampled_from(("RS256", "ES256", "none", "HS256", "PS256")) | json_values(2)},
                              optional={"kid": json_values(2), "crit": json_values(2), "b64": st.booleans(),
                                        "typ": junk_text(5), "jku": junk_text(10)}).map(
            lambda h: _b64(json.dumps(h).encode())),
        st.binary(max_size=300).map(_b64),
        junk_text(40),
    )
    count = draw(st.sampled_from((3, 3, 3, 1, 2, 4, 5)))
    return ".".join(draw(segment) for _ in range(count))


@fuzz_settings(150)
@given(raw=_compact() | text_values())
@example(raw="..")
@example(raw="e30.e30.")
@example(raw=_b64(b'{"alg":"RS256"}') + "." + _b64(b"[1]") + "." + _b64(b"x"))
def test_validate_id_token_with_any_compact_string(keys: dict[str, RSAKey | ECKey], raw: str) -> None:
    with pytest.raises(errors.UpstreamVerificationFailed):
        validate_id_token(raw, _expected(), _resolver(keys))


def _valid_claims() -> dict[str, Any]:
    now = int(NOW.timestamp())
    return {"iss": ISSUER, "aud": CLIENT, "sub": "s-1", "nonce": NONCE, "iat": now - 10, "exp": now + 300}


@fuzz_settings(150)
@given(overrides=st.dictionaries(st.sampled_from(ID_TOKEN_CLAIMS) | junk_text(8), json_values(6), max_size=5),
       dropped=st.lists(st.sampled_from(("iss", "aud", "sub", "nonce", "iat", "exp")), max_size=2, unique=True),
       alg=st.sampled_from(("RS256", "ES256", "PS256")), header=st.dictionaries(
           st.sampled_from(("kid", "typ", "cty", "x5u", "jku", "zip")), json_values(2), max_size=2),
       access_token=st.none() | junk_text(20))
def test_validate_id_token_with_any_signed_claims(keys: dict[str, RSAKey | ECKey], overrides: dict[str, Any],
                                                  dropped: list[str], alg: str, header: dict[str, Any],
                                                  access_token: str | None) -> None:
    claims = {k: v for k, v in {**_valid_claims(), **overrides}.items() if k not in dropped}
    key = keys["ec"] if alg.startswith("ES") else keys["rsa"]
    try:
        raw = jwt.encode({**header, "alg": alg}, claims, key, algorithms=[alg])
    except (JoseError, ValueError, TypeError):  # joserfc itself will not write this header or these claims
        return
    try:
        accepted = validate_id_token(raw, _expected(access_token), _resolver(keys))
    except errors.UpstreamVerificationFailed as refused:
        note_refusal(refused)
        return

    _assert_valid(accepted, access_token, alg)


def _assert_valid(claims: dict[str, Any], access_token: str | None, alg: str) -> None:
    """What an accepted ID token says, by OIDC Core 1.0 §3.1.3.7 and §2."""
    assert claims["iss"] == ISSUER
    assert claims["aud"] == CLIENT or (isinstance(claims["aud"], list) and CLIENT in claims["aud"])
    assert claims["nonce"] == NONCE
    assert isinstance(claims["sub"], str) and 1 <= len(claims["sub"]) <= MAX_SUB_LENGTH
    now = NOW.timestamp()
    for name in ("exp", "iat", "nbf", "auth_time"):
        value = claims.get(name)
        if value is None and name in ("nbf", "auth_time"):  # optional: absent or null
            continue
        assert isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value), name
    assert now < claims["exp"] + 60 and claims["iat"] <= now + 60
    del access_token, alg


@pytest.mark.parametrize(("claim", "value"), [("exp", math.nan), ("exp", math.inf), ("iat", math.nan),
                                              ("nbf", math.nan)])
def test_validate_id_token_refuses_times_that_are_not_finite(keys: dict[str, RSAKey | ECKey], claim: str,
                                                             value: float) -> None:
    """Found by the fuzzing above (an ID token with exp NaN never expired); fixed in oidc_tokens._number."""
    raw = jwt.encode({"alg": "RS256"}, {**_valid_claims(), claim: value}, keys["rsa"], algorithms=["RS256"])
    with pytest.raises(errors.UpstreamVerificationFailed):
        validate_id_token(raw, _expected(), _resolver(keys))


def test_the_signed_claims_test_reaches_acceptance(keys: dict[str, RSAKey | ECKey]) -> None:
    """The fuzzed overrides start from claims that pass: a refusal there is the fuzzing's doing."""
    raw = jwt.encode({"alg": "RS256"}, _valid_claims(), keys["rsa"], algorithms=["RS256"])
    _assert_valid(validate_id_token(raw, _expected(), _resolver(keys)), None, "RS256")
    assert utcnow() > NOW  # NOW is fixed; the expectations pass it, nothing reads the clock


# -- the callback endpoint of the live broker ------------------------------------------------------------------


@pytest.fixture(scope="module", params=BACKENDS)
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    with live_federation(tmp_path_factory.mktemp("oidc-fuzz-live"), request.param) as federation:
        yield federation


def _started_login(federation: Federation, browser: Browser) -> str:
    """A login started at sp1 and sent on to the provider (not followed there): the ``state`` it carries."""
    _, location = federation.sps["sp1"].redirect_request()
    to_upstream = browser.get(location, follow=False)
    assert to_upstream.status_code == 302, to_upstream.text
    to_provider = browser.get(urljoin(location, to_upstream.headers["Location"]), follow=False)
    assert to_provider.status_code == 302, to_provider.text
    return dict(parse_qsl(urlsplit(to_provider.headers["Location"]).query))["state"]


#: request lines over 65,536 bytes are refused by the HTTP server (414) before the broker sees them
OVERSIZED = 60_000


@fuzz_settings(15, scaled=False)
@given(data=st.data(), method=st.sampled_from(("GET", "POST")), keep_state=st.booleans())
def test_live_callback_never_fails_with_500(live: Federation, data: st.DataObject, method: str,
                                            keep_state: bool) -> None:
    with Browser() as browser:
        state = _started_login(live, browser)
        params = data.draw(_edited({"state": state, "code": "not-a-code", "iss": live.provider.issuer}),
                           label="params")
        if keep_state:
            params["state"] = state
        pending_before = count_rows(live.database_url, PendingStateRow)
        callback = live.url + "/upstream/oidc/op/callback"
        try:
            page = (browser.get(callback, params=params, follow=False) if method == "GET"
                    else browser.post(callback, params, follow=False))
        except requests.ConnectionError:
            # The HTTP server answers a request line over 64 KiB with 414 and closes the TLS connection without
            # reading the rest, so the client may see the close before the answer. Only such a request may.
            page = None
        pending_after = count_rows(live.database_url, PendingStateRow)

    if page is None:
        assert len(urlencode(params)) > OVERSIZED, "a request of ordinary size lost its connection"
        assert pending_after == pending_before and live.accounts() == 0
        return
    event(f"HTTP {page.status_code}")
    assert page.status_code in (200, 400, 413, 414, 429), page.status_code
    assert "Traceback" not in page.text
    if page.status_code == 200:  # a SAML error Response to sp1's ACS, or the same-site bounce of a form_post
        form = lxml.html.fromstring(page.text).forms[0]
        assert form.action in (live.sps["sp1"].acs_url, callback), form.action
    consumed = params.get("state") == state and page.status_code == 200 and form.action != callback
    assert pending_after == pending_before - (1 if consumed else 0)
    assert live.accounts() == 0
