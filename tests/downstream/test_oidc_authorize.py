"""The authorization request (OpenID Connect Core 1.0 §3.1.2.1, RFC 6749 §4.1.1) into a ``LoginRequest``,
without a web app: ``parse_authorization_request(pairs, lookup)``.

What is proved here:

- which refusals are a page (``reply is None``: the client or its redirect URI is not established, RFC 6749
  §4.1.2.1, §10.15) and which go back to the client (``reply`` set, with the OAuth error code of OIDC Core
  §3.1.2.6 / RFC 6749 §4.1.2.1);
- scopes become requested claims (OIDC Core §5.4) only where the client is registered for them;
- the ``claims`` parameter (OIDC Core §5.5, §5.5.1.1 for ``acr``), and its malformed forms refused cleanly;
- ``prompt``, ``max_age``, ``login_hint``, ``idp_hint``, ``state`` and ``response_mode`` as §3.1.2.1 defines them;
- a property over arbitrary parameter lists: a ``LoginRequest`` that answers only a registered redirect URI, or
  ``AuthorizeRejected``, never another exception, and never a reply to an unregistered redirect URI.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from broker.core import errors
from broker.core.claims import claims_for_scopes
from broker.core.model import LoginRequest, Protocol
from broker.downstream.oidc.authorize import MAX_CLAIMS, AuthorizeRejected, parse_authorization_request
from broker.oidc.client import OidcClient

REDIRECT = "https://app.example.org/cb"
LOOPBACK = "http://127.0.0.1:8080/cb"
PUBLIC_REDIRECT = "https://spa.example.org/"
#: RFC 7636 Appendix B
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"

CITY_APP = OidcClient("city-app", "City app", (REDIRECT, LOOPBACK), "client_secret_basic")
WIDE_APP = OidcClient("wide-app", "Wide app", ("https://wide.example.org/cb",), "client_secret_basic",
                      scope=("openid", "profile", "email", "address", "phone"))
SPA = OidcClient("spa", "Single-page app", (PUBLIC_REDIRECT,), "none")
CLIENTS = {c.client_id: c for c in (CITY_APP, WIDE_APP, SPA)}

Pairs = list[tuple[str, str]]


def lookup(client_id: str) -> OidcClient | None:
    return CLIENTS.get(client_id)


def request(*, client: OidcClient = CITY_APP, drop: Sequence[str] = (), **params: str) -> Pairs:
    """A valid authorization request of ``client``, with ``params`` replacing or adding parameters and the
    names in ``drop`` left out."""
    fields = {"client_id": client.client_id, "redirect_uri": client.redirect_uris[0], "response_type": "code",
              "scope": "openid", "state": "af0ifjsldkj", "nonce": "n-0S6_WzA2Mj"}
    if client.is_public:
        fields |= {"code_challenge": CHALLENGE, "code_challenge_method": "S256"}
    fields |= params
    return [(k, v) for k, v in fields.items() if k not in drop]


def parse(pairs: Pairs) -> LoginRequest:
    return parse_authorization_request(pairs, lookup)


def rejected(pairs: Pairs) -> AuthorizeRejected:
    with pytest.raises(AuthorizeRejected) as caught:
        parse(pairs)
    return caught.value


# -- the good request ------------------------------------------------------------------------------------------

def test_a_valid_request_becomes_a_login_request() -> None:
    login = parse(request(scope="openid email", code_challenge=CHALLENGE, code_challenge_method="S256"))

    assert (login.downstream, login.protocol, login.return_to) == ("city-app", Protocol.OIDC, REDIRECT)
    assert login.request_id is None
    assert login.relay_state == "af0ifjsldkj"
    assert login.requested_claims == {"email", "email_verified"}
    assert (login.force_authn, login.passive, login.max_age, login.login_hint) == (False, False, None, None)
    assert (login.acr_values, login.preferred_acr, login.upstream_hints) == ((), (), ())
    assert dict(login.protocol_state) == {
        "response_mode": "query", "scope": "openid email", "nonce": "n-0S6_WzA2Mj", "code_challenge": CHALLENGE,
        "prompt": "", "id_token_claims": "", "essential": "",
    }
    # the login pipeline stores the request as JSON between the legs of the sign-in
    assert LoginRequest.from_json(login.to_json()) == login


def test_every_registered_redirect_uri_is_accepted() -> None:
    assert parse(request(redirect_uri=LOOPBACK)).return_to == LOOPBACK


def test_the_parameter_order_does_not_matter() -> None:
    pairs = request(scope="openid profile", prompt="login")
    assert parse(list(reversed(pairs))) == parse(pairs)


# -- refusals that are a page: nothing may go to an unestablished redirect URI ---------------------------------

@pytest.mark.parametrize(("pairs", "kind"), [
    (request(drop=["client_id"]), errors.UnknownParty),
    (request(client_id=""), errors.UnknownParty),
    (request(client_id="no-such-app"), errors.UnknownParty),
    (request(client_id="City-App"), errors.UnknownParty),  # client ids are case-sensitive (RFC 6749 §2.2)
    (request(client_id="city-app "), errors.UnknownParty),
    ([*request(), ("client_id", "city-app")], errors.UnknownParty),  # duplicated, even with the same value
    ([*request(), ("client_id", "wide-app")], errors.UnknownParty),
    (request(drop=["redirect_uri"]), errors.UnregisteredReturnUrl),  # required by OIDC Core §3.1.2.1
    (request(redirect_uri=""), errors.UnregisteredReturnUrl),
    ([*request(), ("redirect_uri", REDIRECT)], errors.UnregisteredReturnUrl),
    ([*request(), ("redirect_uri", LOOPBACK)], errors.UnregisteredReturnUrl),
    (request(redirect_uri="https://wide.example.org/cb"), errors.UnregisteredReturnUrl),  # another client's
], ids=["missing", "empty", "unknown", "other-case", "trailing-space", "duplicated-same", "duplicated-other",
        "redirect-missing", "redirect-empty", "redirect-duplicated-same", "redirect-duplicated-other",
        "redirect-of-another-client"])
def test_unknown_client_or_redirect_uri_is_a_page(pairs: Pairs, kind: type[errors.BrokerError]) -> None:
    refusal = rejected(pairs)
    assert type(refusal.error) is kind
    assert refusal.reply is None


@pytest.mark.parametrize("near_miss", [
    REDIRECT + "/",
    REDIRECT + "x",
    REDIRECT + "?",
    REDIRECT + "?next=https://evil.example",
    REDIRECT + "#",
    REDIRECT + "#x",
    REDIRECT + " ",
    " " + REDIRECT,
    REDIRECT + "%00",
    REDIRECT + "\x00",
    "https://app.example.org/cb/../cb",
    "https://app.example.org/./cb",
    "https://app.example.org//cb",
    "https://app.example.org/c%62",
    "https://app.example.org/CB",
    "https://APP.example.org/cb",
    "HTTPS://app.example.org/cb",
    "http://app.example.org/cb",
    "https://app.example.org:443/cb",
    "https://app.example.org.:443/cb",
    "https://app.example.org./cb",
    "https://app.example.org.evil.example/cb",
    "https://evil.example/https://app.example.org/cb",
    "https://app.example.org@evil.example/cb",
    "https://user@app.example.org/cb",
    "//app.example.org/cb",
    "app.example.org/cb",
    "https://app.example.org/c",
    "http://127.0.0.1:8081/cb",  # loopback with another port: not registered (no RFC 8252 §7.3 port wildcard)
    "http://localhost:8080/cb",
    "http://[::1]:8080/cb",
    "https://app.example.org/cb\u200b",
    "https://\u0430pp.example.org/cb",  # Cyrillic a
])
def test_near_miss_redirect_uris_are_a_page(near_miss: str) -> None:
    """Exact string comparison (OIDC Core §3.1.2.1 "MUST exactly match"; RFC 9700 §4.1.3): no prefix match, no
    normalisation, so no variant of a registered URI can receive an error or a code."""
    refusal = rejected(request(redirect_uri=near_miss))
    assert type(refusal.error) is errors.UnregisteredReturnUrl
    assert refusal.reply is None


def test_the_client_is_checked_before_the_redirect_uri_and_both_before_anything_else() -> None:
    """Everything else wrong too, and still a page: no error reaches a URI before it is established."""
    unknown = rejected([("client_id", "nobody"), ("redirect_uri", "https://evil.example/"), ("response_type", "x")])
    assert type(unknown.error) is errors.UnknownParty and unknown.reply is None
    unregistered = rejected([("client_id", "city-app"), ("redirect_uri", "https://evil.example/"),
                             ("response_type", "token"), ("request", "x"), ("scope", "email")])
    assert type(unregistered.error) is errors.UnregisteredReturnUrl and unregistered.reply is None


# -- refusals that go back to the client ---------------------------------------------------------------------

@pytest.mark.parametrize(("pairs", "oidc_error"), [
    ([*request(), ("state", "second")], "invalid_request"),  # RFC 6749 §3.1: at most once
    ([*request(), ("scope", "openid")], "invalid_request"),
    ([*request(), ("response_type", "code")], "invalid_request"),
    (request(response_mode="fragment"), "invalid_request"),  # the code never goes in a fragment here
    (request(response_mode="form_post.jwt"), "invalid_request"),
    (request(state="s" * 2049), "invalid_request"),
    (request(request="eyJhbGciOiJub25lIn0.e30."), "request_not_supported"),  # OIDC Core §6.1
    (request(request_uri="https://app.example.org/r"), "request_uri_not_supported"),  # §6.2
    (request(registration="{}"), "registration_not_supported"),  # §7.2.1
    (request(drop=["response_type"]), "unsupported_response_type"),
    (request(response_type=""), "unsupported_response_type"),
    (request(response_type="token"), "unsupported_response_type"),  # implicit (RFC 9700 §2.1.2)
    (request(response_type="id_token"), "unsupported_response_type"),
    (request(response_type="code id_token"), "unsupported_response_type"),  # hybrid
    (request(response_type="code token"), "unsupported_response_type"),
    (request(response_type="none"), "unsupported_response_type"),
    (request(response_type="CODE"), "unsupported_response_type"),
    (request(drop=["scope"]), "invalid_scope"),  # an OAuth request, not OpenID Connect (§3.1.2.1)
    (request(scope=""), "invalid_scope"),
    (request(scope="profile email"), "invalid_scope"),
    (request(scope="OpenID"), "invalid_scope"),
    (request(scope="openid_connect"), "invalid_scope"),
    (request(client=SPA, drop=["code_challenge", "code_challenge_method"]), "invalid_request"),  # RFC 9700 §2.1.1
    (request(client=SPA, code_challenge_method="plain"), "invalid_request"),  # S256 only
    (request(client=SPA, drop=["code_challenge_method"]), "invalid_request"),  # defaults to plain (RFC 7636 §4.3)
    (request(client=SPA, code_challenge="short"), "invalid_request"),  # RFC 7636 §4.2: 43-128 characters
    (request(client=SPA, code_challenge=CHALLENGE + "="), "invalid_request"),  # base64url without padding
    (request(client=SPA, code_challenge="x" * 129), "invalid_request"),
    (request(code_challenge_method="S256"), "invalid_request"),  # a method without a challenge
    (request(prompt="bogus"), "invalid_request"),
    (request(prompt="none login"), "invalid_request"),  # §3.1.2.1: none with any other value is an error
    (request(prompt="consent none"), "invalid_request"),
    (request(prompt="LOGIN"), "invalid_request"),
    (request(max_age="-1"), "invalid_request"),
    (request(max_age="1.5"), "invalid_request"),
    (request(max_age="1e3"), "invalid_request"),
    (request(max_age=" 60"), "invalid_request"),
    (request(max_age="60s"), "invalid_request"),
    (request(max_age="12345678901"), "invalid_request"),
    (request(max_age="\u00b2"), "invalid_request"),  # superscript two: str.isdigit() is true, int() fails
    (request(max_age="\u0661\u0662"), "invalid_request"),  # Arabic-Indic digits: not an OAuth integer
    (request(max_age="\uff11"), "invalid_request"),  # fullwidth 1
    (request(nonce="n" * 513), "invalid_request"),
    (request(login_hint="h" * 257), "invalid_request"),
], ids=lambda value: None if isinstance(value, list) else value)
def test_errors_after_the_redirect_uri_go_back_to_the_client(pairs: Pairs, oidc_error: str) -> None:
    refusal = rejected(pairs)
    assert refusal.error.oidc_error == oidc_error, refusal.error.detail
    assert refusal.reply is not None
    sent = dict(pairs)
    assert (refusal.reply.downstream, refusal.reply.return_to) == (sent["client_id"], sent["redirect_uri"])


def test_a_reply_carries_the_clients_state_and_a_response_mode_it_can_use() -> None:
    """OIDC Core §3.1.2.6: the error carries ``state``; a response_mode the broker does not know is answered the
    default way (query), a supported one is honoured even in an error."""
    refusal = rejected(request(state="xyz 123", response_mode="form_post", response_type="token"))
    assert refusal.reply is not None
    assert refusal.reply.relay_state == "xyz 123"
    assert refusal.reply.state("response_mode") == "form_post"

    unknown_mode = rejected(request(response_mode="fragment"))
    assert unknown_mode.reply is not None and unknown_mode.reply.state("response_mode") == "query"

    too_long = rejected(request(state="s" * 2049))
    assert too_long.reply is not None and too_long.reply.relay_state is None, "an oversized state is not echoed"


def test_pkce_is_optional_for_confidential_clients_and_kept_when_sent() -> None:
    assert parse(request()).state("code_challenge") == ""
    assert parse(request(code_challenge=CHALLENGE, code_challenge_method="S256")).state("code_challenge") == CHALLENGE
    assert parse(request(client=SPA)).state("code_challenge") == CHALLENGE


# -- scopes -> requested claims ------------------------------------------------------------------------------

@pytest.mark.parametrize(("scope", "claims"), [
    ("openid", set()),
    ("openid profile", {"given_name", "family_name", "name", "preferred_username", "birthdate", "locale"}),
    ("openid email", {"email", "email_verified"}),
    ("openid address", {"address"}),
    ("openid phone", {"phone_number", "phone_number_verified"}),
    ("openid email phone", {"email", "email_verified", "phone_number", "phone_number_verified"}),
    ("openid  email   unknown-scope", {"email", "email_verified"}),
])
def test_scopes_request_the_claims_of_oidc_core_5_4(scope: str, claims: set[str]) -> None:
    login = parse(request(client=WIDE_APP, scope=scope))
    assert login.requested_claims == claims
    assert login.requested_claims == claims_for_scopes(scope.split())


def test_scopes_the_client_is_not_registered_for_are_dropped() -> None:
    """CITY_APP may ask for openid, profile and email only (RFC 6749 §3.3: the server may grant less)."""
    login = parse(request(scope="openid address phone email offline_access made-up"))
    assert login.requested_claims == {"email", "email_verified"}
    assert login.state("scope") == "openid email"


def test_granted_scopes_keep_the_requested_order_once_each() -> None:
    assert parse(request(client=WIDE_APP, scope="phone openid email phone")).state("scope") == "phone openid email"


# -- the claims parameter (OIDC Core §5.5) ---------------------------------------------------------------------

def _claims(document: object) -> Pairs:
    return request(claims=json.dumps(document))


def test_claims_at_userinfo_and_in_the_id_token() -> None:
    login = parse(_claims({"userinfo": {"email": {"essential": True}, "phone_number": None},
                           "id_token": {"given_name": {"essential": True}, "not_a_claim": None}}))
    # scope openid alone: the claims come from the claims parameter only
    assert login.requested_claims == {"email", "phone_number", "given_name"}
    assert login.state("id_token_claims") == "given_name"


def test_claims_add_to_the_scopes_claims() -> None:
    login = parse(request(scope="openid email", claims=json.dumps({"userinfo": {"family_name": None}})))
    assert login.requested_claims == {"email", "email_verified", "family_name"}


@pytest.mark.parametrize(("acr", "essential", "preferred"), [
    ({"essential": True, "values": ["urn:loa:high", "urn:loa:substantial"]}, ("urn:loa:high", "urn:loa:substantial"),
     ()),
    ({"essential": True, "value": "urn:loa:high"}, ("urn:loa:high",), ()),
    ({"values": ["urn:loa:low"]}, (), ("urn:loa:low",)),
    ({"essential": False, "value": "urn:loa:low"}, (), ("urn:loa:low",)),
    ({"essential": "true", "value": "urn:loa:low"}, (), ("urn:loa:low",)),  # only JSON true makes it essential
    (None, (), ()),
    ({"essential": True}, (), ()),
])
def test_acr_in_the_id_token_claims(acr: object, essential: tuple[str, ...], preferred: tuple[str, ...]) -> None:
    """§5.5.1.1: an essential ``acr`` must be met (``acr_values`` of the LoginRequest); a voluntary one is a
    preference (``preferred_acr``)."""
    login = parse(_claims({"id_token": {"acr": acr}}))
    assert (login.acr_values, login.preferred_acr) == (essential, preferred)
    assert login.requested_claims == set()


def test_acr_at_userinfo_is_not_an_assurance_request() -> None:
    login = parse(_claims({"userinfo": {"acr": {"essential": True, "value": "urn:loa:high"}}}))
    assert (login.acr_values, login.preferred_acr) == ((), ())


def test_acr_values_parameter_is_voluntary_and_merged_with_voluntary_claims() -> None:
    """§3.1.2.1: ``acr_values`` is voluntary; both sources become ``preferred_acr``, each value once."""
    login = parse(request(acr_values="urn:loa:a  urn:loa:b",
                          claims=json.dumps({"id_token": {"acr": {"values": ["urn:loa:b", "urn:loa:c"]}}})))
    assert login.preferred_acr == ("urn:loa:a", "urn:loa:b", "urn:loa:c")
    assert login.acr_values == ()


def test_parameters_without_a_value_count_as_omitted() -> None:
    """RFC 6749 §3.1: ``claims=``, ``response_mode=``, ``state=`` and ``code_challenge_method=`` are absent."""
    login = parse(request(claims="", response_mode="", state="", code_challenge_method="", request=""))
    assert login.relay_state is None
    assert login.state("response_mode") == "query"


@pytest.mark.parametrize("raw", [
    "not json",
    "{",
    "[]",
    '"userinfo"',
    "null",
    "42",
    "NaN",
    '{"userinfo": []}',
    '{"userinfo": "email"}',
    '{"id_token": true}',
    '{"userinfo": {"email": true}}',
    '{"userinfo": {"email": "essential"}}',
    '{"id_token": {"email": [1]}}',
    '{"id_token": {"acr": "urn:loa:high"}}',
    '{"id_token": {"acr": {"values": "urn:loa:high"}}}',
    '{"id_token": {"acr": {"values": [1]}}}',
    '{"id_token": {"acr": {"values": null}}}',
    '{"id_token": {"acr": {"value": 3}}}',
    '{"id_token": {"acr": {"essential": true, "value": null}}}',
    '{"userinfo": {"x": {"y": ' + "1" * 5000 + "}}}",  # beyond Python's int-string limit: ValueError
    json.dumps({"userinfo": {"name": "x" * MAX_CLAIMS}}),  # longer than MAX_CLAIMS
], ids=lambda raw: repr(raw[:30]))
def test_malformed_claims_are_refused_to_the_client(raw: str) -> None:
    refusal = rejected(request(claims=raw))
    assert refusal.error.oidc_error == "invalid_request"
    assert refusal.reply is not None and refusal.reply.return_to == REDIRECT


@pytest.mark.parametrize("raw", [
    "[" * 4000 + "]" * 4000,
    '{"a":' * 1300 + "1" + "}" * 1300,
    '{"userinfo": {"email": ' + '{"a":' * 1300 + "1" + "}" * 1300 + "}}",
], ids=["arrays", "objects", "inside-a-member"])
def test_claims_nested_past_the_recursion_limit_are_refused_cleanly(raw: str) -> None:
    # the premise: short enough to pass the length check, deep enough to exhaust the JSON parser
    assert len(raw) <= MAX_CLAIMS
    with pytest.raises(RecursionError):
        json.loads(raw)

    refusal = rejected(request(claims=raw))
    assert type(refusal.error) is errors.InvalidRequest
    assert refusal.reply is not None and refusal.reply.relay_state == "af0ifjsldkj"


# -- prompt, max_age, hints, state, response_mode (OIDC Core §3.1.2.1) ----------------------------------------

@pytest.mark.parametrize(("prompt", "force_authn", "passive", "kept"), [
    ("", False, False, ""),
    ("login", True, False, "login"),
    ("select_account", True, False, "select_account"),  # for a broker: choose the provider again
    ("none", False, True, "none"),
    ("consent", False, False, "consent"),  # the consent page is the pipeline's business: it reads the state
    ("login consent", True, False, "consent login"),
    ("consent  select_account", True, False, "consent select_account"),
])
def test_prompt(prompt: str, force_authn: bool, passive: bool, kept: str) -> None:
    login = parse(request(prompt=prompt))
    assert (login.force_authn, login.passive, login.state("prompt")) == (force_authn, passive, kept)


@pytest.mark.parametrize(("max_age", "expected", "force_authn"), [
    ("0", 0, True),  # §3.1.2.1: max_age=0 is prompt=login
    ("1", 1, False),
    ("3600", 3600, False),
    ("0003600", 3600, False),
    ("9999999999", 9999999999, False),
    ("", None, False),
])
def test_max_age(max_age: str, expected: int | None, force_authn: bool) -> None:
    login = parse(request(max_age=max_age))
    assert (login.max_age, login.force_authn) == (expected, force_authn)


def test_no_max_age() -> None:
    assert parse(request()).max_age is None


def test_login_hint_and_idp_hint_are_passed_on_as_hints() -> None:
    login = parse(request(login_hint="anna@example.org", idp_hint="city-idp"))
    assert login.login_hint == "anna@example.org"
    assert login.upstream_hints == ("city-idp",)

    empty = parse(request(login_hint="", idp_hint=""))
    assert (empty.login_hint, empty.upstream_hints) == (None, ())


@pytest.mark.parametrize("state", ["af0ifjsldkj", "a b+c/=&%20ü\u2603", "s" * 2048, "<script>", "\x00"])
def test_state_is_kept_verbatim(state: str) -> None:
    """RFC 6749 §4.1.2: returned exactly as received (the web layer encodes it)."""
    assert parse(request(state=state)).relay_state == state


def test_no_state_is_none_not_empty() -> None:
    assert parse(request(drop=["state"])).relay_state is None


@pytest.mark.parametrize(("pairs", "mode"), [
    (request(), "query"),  # the default of response_type=code (OAuth 2.0 Multiple Response Types §2.1)
    (request(response_mode="query"), "query"),
    (request(response_mode="form_post"), "form_post"),
])
def test_response_mode(pairs: Pairs, mode: str) -> None:
    assert parse(pairs).state("response_mode") == mode


def test_nonce_is_kept_for_the_id_token() -> None:
    assert parse(request(nonce="abc")).state("nonce") == "abc"
    assert parse(request(drop=["nonce"])).state("nonce") == ""


# -- the property --------------------------------------------------------------------------------------------
#
# The settings and strategies of ``tests/security/fuzz_support.py``, restated here because that module imports the
# whole web app and these tests run without one: deterministic unless ``BROKER_FUZZ_EXPLORE=1``, no example
# database, no deadline, ``max_examples`` scaled by ``BROKER_FUZZ_SCALE``.

EXPLORE = os.environ.get("BROKER_FUZZ_EXPLORE") == "1"
FUZZ = settings(max_examples=max(1, int(400 * float(os.environ.get("BROKER_FUZZ_SCALE", "1")))),
                derandomize=not EXPLORE, database=None, deadline=None, print_blob=EXPLORE,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.large_base_example])
#: fragments that mean something to a URL or JSON parser
MARKUP = ("%", "%00", "%zz", "+", "=", "&", "#", "?", "/", "\\", "\x00", "\ufeff", "\r\n", "\u202e", " ", "null",
          "true", "[]", "{}", '{"a":', "NaN", "1e999", "[" * 1200)


def junk_text(max_size: int = 60) -> st.SearchStrategy[str]:
    plain = st.text(max_size=max_size)
    marked = st.lists(st.one_of(st.sampled_from(MARKUP), st.text(max_size=8)), max_size=6).map("".join)
    return st.one_of(plain, marked)


def huge_text() -> st.SearchStrategy[str]:
    return st.builds(lambda unit, times: (unit * times)[:20_000],
                     st.text(min_size=1, max_size=4), st.integers(min_value=500, max_value=10_000))


NAMES = ("client_id", "redirect_uri", "response_type", "scope", "state", "nonce", "response_mode", "prompt",
         "max_age", "login_hint", "idp_hint", "acr_values", "claims", "code_challenge", "code_challenge_method",
         "request", "request_uri", "registration", "id_token_hint", "ui_locales")
#: values that are right for some parameter, so examples get past the first checks
GOOD_VALUES = ("city-app", "spa", "wide-app", REDIRECT, LOOPBACK, PUBLIC_REDIRECT, "https://wide.example.org/cb",
               "code", "openid", "openid profile email", "openid address phone", "query", "form_post", "none", "login",
               "consent", "select_account", "0", "60", "S256", CHALLENGE, '{"id_token": {"acr": {"essential": true}}}',
               '{"userinfo": {"email": null}}', "\u00b2", "-1")
REGISTERED = {(c.client_id, uri) for c in CLIENTS.values() for uri in c.redirect_uris}


def parameter_lists() -> st.SearchStrategy[Pairs]:
    name = st.one_of(st.sampled_from(NAMES), junk_text(12))
    value = st.one_of(st.sampled_from(GOOD_VALUES), junk_text(), huge_text(),
                      st.sampled_from([REDIRECT + "/", "https://APP.example.org/cb", REDIRECT + "#"]))
    # half the lists start from a valid request, so the deep checks are reached as well as the first ones
    base = st.sampled_from([[], request(), request(client=SPA), request(client=WIDE_APP, scope="openid phone")])
    extra = st.lists(st.tuples(name, value), max_size=8)
    return st.builds(lambda start, more, cut: [p for p in start if p[0] not in cut] + more,
                     base, extra, st.sets(st.sampled_from(NAMES), max_size=3))


@FUZZ
@given(pairs=parameter_lists())
@example(pairs=request(max_age="\u00b2"))
@example(pairs=request(claims="[" * 4000 + "]" * 4000))
@example(pairs=[("client_id", "city-app"), ("redirect_uri", REDIRECT + "/"), ("response_type", "token")])
def test_any_parameters_give_a_login_request_or_a_rejection(pairs: Pairs) -> None:
    try:
        login = parse(pairs)
    except AuthorizeRejected as refusal:
        assert isinstance(refusal.error, errors.BrokerError)
        event(f"refused: {type(refusal.error).__name__}, {'reply' if refusal.reply else 'page'}")
        if refusal.reply is not None:
            sent = [(k, v) for k, v in pairs if k in ("client_id", "redirect_uri")]
            # the reply goes to the one redirect URI sent, once, and registered for the one client sent
            assert sorted(sent) == [("client_id", refusal.reply.downstream), ("redirect_uri", refusal.reply.return_to)]
            assert (refusal.reply.downstream, refusal.reply.return_to) in REGISTERED
            assert refusal.reply.state("response_mode") in ("query", "form_post")
        return
    event("accepted")
    assert (login.downstream, login.return_to) in REGISTERED
    assert dict(pairs)["redirect_uri"] == login.return_to
    assert login.relay_state == dict(pairs).get("state")
    assert "openid" in dict(pairs)["scope"].split(" ") and dict(pairs)["response_type"] == "code"
    assert LoginRequest.from_json(login.to_json()) == login


def test_essential_claims_are_kept_for_the_consent_step() -> None:
    """OIDC Core §5.5.1: an essential claim is one the app needs; consent cannot decline it."""
    claims = '{"userinfo": {"given_name": {"essential": true}, "family_name": null}, "id_token": {"email": {}}}'
    login = parse(request(claims=claims))

    assert login.state("essential") == "given_name"
    assert {"given_name", "family_name", "email"} <= login.requested_claims
