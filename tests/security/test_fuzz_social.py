"""Property-based tests of the social providers' parsers of untrusted input: GitHub's callback and API answers
into ``GitHubUpstream.finish``, and Apple's unsigned ``user`` form field (``parse_user_field``,
``AppleQuirks.profile``).

GitHub: an ``UpstreamIdentity`` only for GitHub's real answer, whose subject is the positive numeric account id;
otherwise ``UpstreamError``. Apple: the ``user`` field can only ever add a name (``given_name``, ``family_name``,
``name``) the ID token lacks, as clean text, and never raises: "a broken name must never fail a login".
"""

from __future__ import annotations

import json
import math
import unicodedata
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import event, example, given
from hypothesis import strategies as st

from broker.core import errors
from broker.core.model import EmailTrust, utcnow
from broker.upstream.apple import MAX_NAME_LENGTH, MAX_USER_FIELD, NAME_CLAIMS, AppleQuirks, parse_user_field
from tests.peers.github_sim import Mischief
from tests.security.fuzz_support import (
    GITHUB_USER,
    GitHubWorld,
    deep_nesting,
    fuzz_settings,
    github_world,
    json_documents,
    json_values,
    junk_text,
    note_refusal,
    text_values,
)

# -- GitHub ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def github() -> Iterator[GitHubWorld]:
    with github_world() as world:
        yield world


GITHUB_KEYS = ("code", "state", "error", "error_description", "error_uri", "scope", "installation_id",
               "setup_action")


@fuzz_settings(60)
@given(data=st.data(), mode=st.sampled_from(("junk", "real-state", "real-answer")))
def test_github_finish_with_any_callback_params(github: GitHubWorld, data: st.DataObject, mode: str) -> None:
    now = utcnow()
    if mode == "real-answer":
        pending, real = github.authorize(now)
    else:
        pending, real = github.upstream.start(now)[1], {}
        if mode == "real-state":
            real = {"state": pending.state, "code": "not-a-code"}
    keys = st.sampled_from(GITHUB_KEYS) | junk_text(12)
    values = text_values() | st.sampled_from([*real.values(), "", "access_denied"])
    params = dict(real)
    for key in data.draw(st.lists(st.sampled_from(sorted(real) or ["state"]), max_size=2, unique=True), label="drop"):
        params.pop(key, None)
    params.update(data.draw(st.dictionaries(keys, values, max_size=4), label="set"))
    try:
        identity = github.upstream.finish(pending, params, now)
    except errors.UpstreamError as refused:
        note_refusal(refused)
        return

    event("accepted")
    assert identity.subject == str(GITHUB_USER.id)
    assert (params.get("state"), params.get("code")) == (real.get("state"), real.get("code"))
    assert "error" not in params


@fuzz_settings(40)
@given(token=st.dictionaries(st.sampled_from(("access_token", "token_type", "scope", "error", "error_description")),
                             json_values(4), max_size=3),
       user=st.dictionaries(st.sampled_from(("id", "login", "name", "email", "node_id")), json_values(4), max_size=3),
       html=st.sets(st.sampled_from(("token", "user", "emails")), max_size=1))
@example(token={}, user={"id": 2**70}, html=set())
@example(token={}, user={"id": 1.0}, html=set())
@example(token={"scope": ["user:email"]}, user={}, html=set())
def test_github_finish_with_any_api_answers(github: GitHubWorld, token: dict[str, Any], user: dict[str, Any],
                                            html: set[str]) -> None:
    """The token endpoint's and ``/user``'s JSON members hold anything JSON can (or the answer is an HTML page)."""
    github.sim.mischief = Mischief(token_overrides=token, user_overrides=user, html=frozenset(html))
    try:
        now = utcnow()
        pending, params = github.authorize(now)
        try:
            identity = github.upstream.finish(pending, params, now)
        except errors.UpstreamError as refused:
            note_refusal(refused)
            return
    finally:
        github.sim.mischief = Mischief()

    event("accepted")
    user_id = user.get("id", GITHUB_USER.id)
    assert isinstance(user_id, int) and not isinstance(user_id, bool) and user_id > 0
    assert identity.subject == str(user_id)
    if "email" in identity.claims:  # only the primary verified address of /user/emails, never /user's email
        assert identity.claims["email"] == "octocat@example.org" and identity.email_trust is EmailTrust.VERIFIED


def test_github_world_signs_in_unchanged(github: GitHubWorld) -> None:
    now = utcnow()
    pending, params = github.authorize(now)
    assert github.upstream.finish(pending, params, now).subject == str(GITHUB_USER.id)


# -- Apple's user field --------------------------------------------------------------------------------------


@st.composite
def _user_fields(draw: st.DrawFn) -> str:
    """Apple's shape ``{"name": {"firstName": ..., "lastName": ...}, "email": ...}`` with anything in it."""
    name = draw(st.fixed_dictionaries({}, optional={"firstName": json_values(3) | text_values(),
                                                    "lastName": json_values(3) | text_values(),
                                                    "middleName": json_values(2)}) | json_values(4))
    user = draw(st.fixed_dictionaries({"name": st.just(name)}, optional={
        "email": json_values(2), "sub": json_values(2), "email_verified": json_values(2)}))
    return json.dumps(user, allow_nan=True)


@fuzz_settings(200)
@given(raw=st.none() | _user_fields() | json_documents() | text_values() | deep_nesting())
@example(raw='{"name": {"firstName": "Anna", "lastName": "Virtanen"}}')
@example(raw='{"name": {"firstName": " \\u202eAnna"}}')
@example(raw='{"name": {"firstName": "\\ud800"}}')
@example(raw='{"name": "Anna"}')
@example(raw='{"name": {"firstName": 1e999}}')
def test_parse_user_field_takes_anything(raw: str | None) -> None:
    found = parse_user_field(raw)

    assert set(found) <= NAME_CLAIMS
    assert ("name" in found) == bool(found.keys() & {"given_name", "family_name"})
    for claim, text in found.items():
        assert isinstance(text, str) and text == text.strip() and text
        assert len(text) <= (2 * MAX_NAME_LENGTH + 1 if claim == "name" else MAX_NAME_LENGTH)
        assert not any(unicodedata.category(c).startswith("C") and c != " " for c in text), repr(text)
    if raw is None or len(raw) > MAX_USER_FIELD:
        assert found == {}


@pytest.fixture(scope="module")
def apple_quirks() -> AppleQuirks:
    return AppleQuirks(team_id="TEAM000001", key_id="KEY0000001", client_id="city.example.signin",
                       private_key=ec.generate_private_key(ec.SECP256R1()))


@fuzz_settings(120)
@given(id_claims=st.dictionaries(st.sampled_from(("sub", "email", "email_verified", "is_private_email",
                                                  "given_name", "family_name", "name")) | junk_text(8),
                                 json_values(3), max_size=5),
       user=st.none() | _user_fields() | json_documents(),
       params=st.dictionaries(junk_text(8), text_values(), max_size=3))
def test_apple_profile_lets_the_user_field_add_names_only(apple_quirks: AppleQuirks, id_claims: dict[str, Any],
                                                          user: str | None, params: dict[str, str]) -> None:
    form = {**params, **({"user": user} if user is not None else {})}
    merged = apple_quirks.profile(id_claims, {}, form)

    for claim, value in id_claims.items():  # the signed ID token always wins
        assert _same(merged[claim], value), claim
    added = set(merged) - set(id_claims)
    assert added <= NAME_CLAIMS
    assert apple_quirks.email_trust(merged) in set(EmailTrust)


def _same(a: object, b: object) -> bool:
    """Equality that holds for NaN too (the claims are the same object, so ``is`` settles it)."""
    return a is b or a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))
