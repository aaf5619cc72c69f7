"""The GitHub adapter against a simulated GitHub (``tests.peers.github_sim``) over real HTTP on 127.0.0.1.

One test per GitHub quirk and per security rule, each tried and broken; a refused answer must raise a broker
``UpstreamError`` whose operator detail names the check that fired.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from broker.core import errors
from broker.core.model import EmailTrust, UpstreamIdentity
from broker.upstream.github import ISSUER, GitHubSettings, GitHubUpstream, PendingAuthorization, settings_from
from broker.upstream.http_pool import UpstreamHttp
from broker.upstream.presets import OptionValue
from tests.peers.browser import Browser
from tests.peers.github_sim import GitHubEmail, GitHubSim, GitHubUser, Mischief
from tests.peers.servers import RunningServer, closed_port_url, serve
from tests.upstream.support import close_worlds

CLIENT_ID = "Iv1.0123456789abcdef"
CLIENT_SECRET = "0123456789abcdef0123456789abcdef01234567"
OCTOCAT = GitHubUser(
    id=583231,
    login="octocat",
    name="The Octocat",
    email="public-profile@example.org",  # the public profile address: never verified, never used
    emails=(
        GitHubEmail("old@example.org", primary=False, verified=True),
        GitHubEmail("octocat@example.org", primary=True, verified=True, visibility="private"),
        GitHubEmail("typo@example.org", primary=False, verified=False),
    ),
)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class GitHubWorld:
    sim: GitHubSim
    server: RunningServer
    redirect_uri: str
    http: UpstreamHttp
    browser: Browser

    def upstream(self, **overrides: object) -> GitHubUpstream:
        values: dict[str, object] = {
            "name": "github", "display_name": "GitHub", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            "redirect_uri": self.redirect_uri,
            "authorize_url": self.server.url + "/login/oauth/authorize",
            "token_url": self.server.url + "/login/oauth/access_token",
            "api_url": self.server.url + "/api/v3",
        }
        values.update(overrides)
        return GitHubUpstream(GitHubSettings(**values), self.http)  # type: ignore[arg-type]

    def authorize(self, upstream: GitHubUpstream, now: datetime) -> tuple[PendingAuthorization, dict[str, str]]:
        """``start``, then the browser through the simulated GitHub to the callback: its query params."""
        url, pending = upstream.start(now)
        answer = self.browser.get(url)
        assert answer.status_code == 200, answer.text
        assert urlsplit(answer.url).path == "/callback"
        return pending, dict(parse_qsl(urlsplit(answer.url).query))

    def login(self, upstream: GitHubUpstream | None = None) -> UpstreamIdentity:
        upstream = upstream or self.upstream()
        now = utcnow()
        pending, params = self.authorize(upstream, now)
        return upstream.finish(pending, params, now)


@pytest.fixture
def make_world(redirect_uri: str) -> Iterator[Callable[..., GitHubWorld]]:
    worlds: list[GitHubWorld] = []

    def make(*users: GitHubUser) -> GitHubWorld:
        sim = GitHubSim(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, redirect_uris=(redirect_uri,),
                        users=users or (OCTOCAT,))
        world = GitHubWorld(sim, serve(sim.app), redirect_uri, UpstreamHttp(), Browser())
        worlds.append(world)
        return world

    yield make
    close_worlds(worlds)


@pytest.fixture
def world(make_world: Callable[..., GitHubWorld]) -> GitHubWorld:
    return make_world()


def refused(world: GitHubWorld, expected: type[errors.UpstreamError], words: str,
            upstream: GitHubUpstream | None = None) -> errors.UpstreamError:
    with pytest.raises(expected) as failure:
        world.login(upstream)
    assert words in (failure.value.detail or ""), failure.value.detail
    return failure.value


# -- the sign-in that works ----------------------------------------------------------------------------------


def test_happy_path(world: GitHubWorld) -> None:
    upstream = world.upstream()
    now = utcnow()
    pending, params = world.authorize(upstream, now)
    identity = upstream.finish(pending, params, now)
    assert (identity.upstream, identity.issuer, identity.subject) == ("github", ISSUER, "583231")
    assert dict(identity.claims) == {"preferred_username": "octocat", "name": "The Octocat",
                                     "email": "octocat@example.org", "email_verified": True}
    assert identity.email_trust is EmailTrust.VERIFIED
    assert identity.linkable_email == "octocat@example.org"
    assert (identity.auth_time, identity.acr, identity.amr) == (now, None, ())
    # RFC 6749 §4.1.1 / §10.12 / RFC 7636 §4.3: what went to GitHub's authorization endpoint
    sent = world.sim.seen["authorize"]
    assert sent["state"] == pending.state and sent["client_id"] == CLIENT_ID
    assert sent["scope"] == "read:user user:email"
    assert sent["code_challenge_method"] == "S256" and len(sent["code_challenge"]) == 43
    assert "allow_signup" not in sent
    assert pending.nonce and pending.nonce != pending.state
    # the code exchange: client credentials in the form, the verifier, JSON asked for
    form = world.sim.seen["token"]
    assert (form["client_id"], form["client_secret"]) == (CLIENT_ID, CLIENT_SECRET)
    assert form["code_verifier"] == pending.code_verifier and form["redirect_uri"] == world.redirect_uri
    assert world.sim.seen_headers["token"]["Accept"] == "application/json"
    for endpoint in ("user", "emails"):
        headers = world.sim.seen_headers[endpoint]
        assert headers["Authorization"].startswith("Bearer gho_")
        assert headers["Accept"] == "application/vnd.github+json"
        assert headers["X-GitHub-Api-Version"] == "2022-11-28"


def test_the_subject_is_the_numeric_id_not_the_login(world: GitHubWorld) -> None:
    first = world.login()
    world.sim.users[OCTOCAT.id] = dataclasses.replace(OCTOCAT, login="octocat-renamed")
    renamed = world.login()
    assert renamed.subject == first.subject == "583231"
    assert renamed.claims["preferred_username"] == "octocat-renamed"
    # someone else takes the freed login: a different person, whatever the name says
    squatter = GitHubUser(id=999001, login="octocat")
    world.sim.users[squatter.id] = squatter
    world.sim.signed_in = squatter.id
    taken = world.login()
    assert taken.claims["preferred_username"] == "octocat"
    assert taken.subject == "999001"
    assert "email" not in taken.claims and "name" not in taken.claims


@pytest.mark.parametrize("user_id", ["583231", True, 583231.0, None, 0, -5])
def test_an_id_that_is_not_a_positive_integer_is_refused(world: GitHubWorld, user_id: object) -> None:
    world.sim.mischief = Mischief(user_overrides={"id": user_id})
    refused(world, errors.UpstreamVerificationFailed, "is not a positive integer")


# -- e-mail: only GitHub's primary verified address ------------------------------------------------------------


@pytest.mark.parametrize("emails", [
    pytest.param((GitHubEmail("verified-secondary@example.org", primary=False, verified=True),
                  GitHubEmail("unverified-primary@example.org", primary=True, verified=False)),
                 id="verified-non-primary-and-unverified-primary"),
    pytest.param((), id="no-addresses"),
    pytest.param((GitHubEmail("a@example.org", primary=True, verified=True),
                  GitHubEmail("b@example.org", primary=True, verified=True)), id="two-primaries"),
])
def test_no_primary_verified_email_means_no_email(make_world: Callable[..., GitHubWorld],
                                                  emails: tuple[GitHubEmail, ...]) -> None:
    world = make_world(dataclasses.replace(OCTOCAT, emails=emails))
    identity = world.login()
    assert "email" not in identity.claims and "email_verified" not in identity.claims
    assert identity.email_trust is EmailTrust.UNVERIFIED
    assert identity.linkable_email is None
    assert world.sim.hits("emails") == 1  # asked, and the public profile address was not a fallback


def test_flags_must_be_json_true(make_world: Callable[..., GitHubWorld]) -> None:
    world = make_world(dataclasses.replace(OCTOCAT, emails=(GitHubEmail("x@example.org", primary=True,
                                                                        verified="true"),)))  # type: ignore[arg-type]
    assert "email" not in world.login().claims


def test_without_the_email_scope_there_is_no_email(world: GitHubWorld) -> None:
    identity = world.login(world.upstream(scopes=("read:user",)))
    assert world.sim.seen["authorize"]["scope"] == "read:user"
    assert world.sim.hits("emails") == 0  # it would answer 404 for this token
    assert "email" not in identity.claims and identity.email_trust is EmailTrust.UNVERIFIED


@pytest.mark.parametrize("scope", ["", None])
def test_an_empty_or_missing_granted_scope_is_the_requested_one(world: GitHubWorld, scope: str | None) -> None:
    # RFC 6749 §5.1 (missing); GitHub App user tokens (empty)
    world.sim.mischief = Mischief(token_overrides={"scope": scope})
    assert world.login().claims["email"] == "octocat@example.org"


def test_a_granted_scope_without_email_means_no_email(world: GitHubWorld) -> None:
    world.sim.mischief = Mischief(token_overrides={"scope": "read:user"})  # the person narrowed the grant
    assert "email" not in world.login().claims
    assert world.sim.hits("emails") == 0


# -- the authorization response --------------------------------------------------------------------------------


def test_state_mismatch(world: GitHubWorld) -> None:
    upstream = world.upstream()
    now = utcnow()
    pending, params = world.authorize(upstream, now)
    for forged in ({**params, "state": "forged"}, {k: v for k, v in params.items() if k != "state"}):
        with pytest.raises(errors.UpstreamVerificationFailed) as failure:
            upstream.finish(pending, forged, now)
        assert "state does not match" in (failure.value.detail or "")
    assert world.sim.hits("token") == 0  # refused before the code is spent


def test_access_denied(world: GitHubWorld) -> None:
    world.sim.approve = False
    upstream = world.upstream()
    now = utcnow()
    pending, params = world.authorize(upstream, now)
    assert params["error"] == "access_denied" and params["state"] == pending.state
    params["error_description"] = "<script>alert(1)</script>"
    with pytest.raises(errors.UpstreamError) as failure:
        upstream.finish(pending, params, now)
    assert type(failure.value) is errors.UpstreamError
    assert "cancelled" in failure.value.message and "script" not in failure.value.message
    assert "access_denied" in (failure.value.detail or "")
    assert world.sim.hits("token") == 0


def test_pending_of_another_upstream(world: GitHubWorld) -> None:
    now = utcnow()
    pending, params = world.authorize(world.upstream(), now)
    with pytest.raises(errors.UpstreamVerificationFailed):
        world.upstream(name="other").finish(pending, params, now)


# -- the code exchange -----------------------------------------------------------------------------------------


def test_code_replay(world: GitHubWorld) -> None:
    upstream = world.upstream()
    now = utcnow()
    pending, params = world.authorize(upstream, now)
    assert upstream.finish(pending, params, now).subject == "583231"
    with pytest.raises(errors.UpstreamError) as failure:
        upstream.finish(pending, params, now)
    assert "bad_verification_code" in (failure.value.detail or "")  # GitHub: HTTP 200 with an error member


def test_wrong_pkce_verifier(world: GitHubWorld) -> None:
    upstream = world.upstream()
    now = utcnow()
    pending, params = world.authorize(upstream, now)
    stolen = dataclasses.replace(pending, code_verifier="x" * 64)
    with pytest.raises(errors.UpstreamError) as failure:
        upstream.finish(stolen, params, now)
    assert "bad_verification_code" in (failure.value.detail or "")


def test_bad_client_secret(world: GitHubWorld) -> None:
    refused(world, errors.UpstreamError, "incorrect_client_credentials",
            world.upstream(client_secret="not-the-secret"))


def test_token_type_must_be_bearer(world: GitHubWorld) -> None:
    world.sim.mischief = Mischief(token_overrides={"token_type": "mac"})
    refused(world, errors.UpstreamError, "is not bearer")
    assert world.sim.hits("user") == 0


def test_form_encoded_token_answer_is_refused(world: GitHubWorld) -> None:
    # GitHub's default without Accept: application/json; the simulator really does it:
    raw = requests.post(world.server.url + "/login/oauth/access_token", timeout=5,
                        data={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "code": "nope"})
    assert raw.status_code == 200 and raw.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    assert dict(parse_qsl(raw.text))["error"] == "bad_verification_code"
    world.sim.mischief = Mischief(ignore_accept=True)
    refused(world, errors.UpstreamError, "token endpoint: the answer is not a JSON object")


# -- the API ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("endpoint", "words"), [
    ("token", "token endpoint: the answer is not a JSON object (text/html)"),
    ("user", "API /user: the answer is not a JSON object (text/html)"),
    ("emails", "API /user/emails: the answer is not JSON"),
])
def test_html_answers_are_refused(world: GitHubWorld, endpoint: str, words: str) -> None:
    world.sim.mischief = Mischief(html=frozenset({endpoint}))
    refused(world, errors.UpstreamError, words)


def test_api_refuses_the_token(world: GitHubWorld) -> None:
    world.sim.mischief = Mischief(reject_tokens=True)
    refused(world, errors.UpstreamError, "API /user: HTTP 401")


def test_unreachable_api(world: GitHubWorld) -> None:
    refused(world, errors.UpstreamError, "API /user: could not reach", world.upstream(api_url=closed_port_url()))


def test_unreachable_token_endpoint(world: GitHubWorld) -> None:
    upstream = world.upstream()
    now = utcnow()
    pending, params = world.authorize(upstream, now)
    world.server.stop()
    with pytest.raises(errors.UpstreamError) as failure:
        upstream.finish(pending, params, now)
    assert type(failure.value) is errors.UpstreamError
    assert "token endpoint: could not reach" in (failure.value.detail or "")


# -- settings --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Registration:
    """A stand-in for ``broker.upstream.preset_base.Registration`` (mypy checks it against that Protocol)."""

    name: str = "github"
    preset: str | None = "github"
    display_name: str | None = None
    issuer: str | None = None
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    scopes: tuple[str, ...] | None = None
    authorization_params: tuple[tuple[str, str], ...] = ()
    options: tuple[tuple[str, OptionValue], ...] = ()


def test_settings_from_a_plain_registration() -> None:
    settings = settings_from(Registration(), "https://broker.example/upstream/github/callback")
    assert settings == GitHubSettings(name="github", display_name="GitHub", client_id=CLIENT_ID,
                                      client_secret=CLIENT_SECRET,
                                      redirect_uri="https://broker.example/upstream/github/callback")
    assert (settings.authorize_url, settings.token_url, settings.api_url, settings.issuer) == (
        "https://github.com/login/oauth/authorize", "https://github.com/login/oauth/access_token",
        "https://api.github.com", ISSUER)
    assert settings.scopes == ("read:user", "user:email")
    assert CLIENT_SECRET not in repr(settings)


def test_settings_from_a_github_enterprise_registration() -> None:
    options: tuple[tuple[str, OptionValue], ...] = (
        ("api_url", "https://ghe.example.org/api/v3"),
        ("authorize_url", "https://ghe.example.org/login/oauth/authorize"),
        ("token_url", "https://ghe.example.org/login/oauth/access_token"),
    )
    settings = settings_from(Registration(display_name="City GitHub", scopes=("read:user",), options=options), "")
    assert settings.issuer == "https://ghe.example.org"  # its user ids are not github.com's
    assert (settings.display_name, settings.scopes, settings.api_url) == (
        "City GitHub", ("read:user",), "https://ghe.example.org/api/v3")


@pytest.mark.parametrize(("options", "words"), [
    ((("hd", "example.org"),), "unknown option 'hd'"),
    ((("api_url", ("https://a.example", "https://b.example")),), "must be one URL"),
    ((("token_url", "https://ghe.example.org/login/oauth/access_token"),), "must be on one host"),
    ((("api_url", "http://ghe.example.org/api/v3"),), "must be an https URL"),
    ((("authorize_url", "https://github.com/login/oauth/authorize#x"),), "must be an https URL"),
])
def test_settings_from_refuses_bad_options(options: tuple[tuple[str, OptionValue], ...], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        settings_from(Registration(options=options), "https://broker.example/cb")


@pytest.mark.parametrize("overrides", [
    {"token_url": "http://github.example/login/oauth/access_token"},
    {"api_url": "https://api.github.com?x=1"},
    {"api_url": "https://user:pw@api.github.com"},
    {"scopes": ("read:user,user:email",)},
    {"scopes": ()},
    {"client_secret": ""},
    {"http_timeout_seconds": 0},
])
def test_unusable_settings_are_refused(overrides: dict[str, object]) -> None:
    values: dict[str, object] = {"name": "github", "display_name": "GitHub", "client_id": CLIENT_ID,
                                 "client_secret": CLIENT_SECRET, "redirect_uri": "https://broker.example/cb"}
    with pytest.raises(ValueError):
        GitHubSettings(**{**values, **overrides})  # type: ignore[arg-type]
