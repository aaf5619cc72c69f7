"""Google: the hosted domain is requested with hd= and enforced on the signed hd claim; options are checked.

The provider is the demo provider; ``Mischief(claim_overrides={"hd": ...})`` makes its ID tokens carry
Google's ``hd`` claim. Every refusal checks the operator detail, so it cannot pass because another check
happened to fail first.
"""

from __future__ import annotations

from urllib.parse import parse_qs, parse_qsl, urlsplit

import pytest

from broker.core import errors
from broker.core.model import EmailTrust
from broker.demo.oidc_provider import Mischief
from broker.upstream.google import GOOGLE, GoogleQuirks, build_google_quirks
from broker.upstream.presets import OptionValue
from tests.upstream.conftest import OidcWorld, utcnow
from tests.upstream.support import Registration


def hd_requested(world: OidcWorld, quirks: GoogleQuirks) -> tuple[str, ...]:
    url, _ = world.upstream(quirks=quirks).start(utcnow())
    return tuple(parse_qs(urlsplit(url).query).get("hd", ()))


def test_matching_hd_claim_is_accepted(world: OidcWorld) -> None:
    quirks = GoogleQuirks("example.org")
    assert hd_requested(world, quirks) == ("example.org",)
    world.provider.mischief = Mischief(claim_overrides={"hd": "example.org"})

    identity = world.login(world.upstream(quirks=quirks))

    assert identity.subject == "alice-0001"
    assert identity.email_trust is EmailTrust.VERIFIED


def test_hd_claim_compares_as_a_domain_name(world: OidcWorld) -> None:
    world.provider.mischief = Mischief(claim_overrides={"hd": "Example.ORG"})
    assert world.login(world.upstream(quirks=GoogleQuirks("example.org"))).subject == "alice-0001"


@pytest.mark.parametrize(("mischief", "words"), [
    (Mischief(), "no hd claim"),  # a consumer account, or someone removed hd= from the request
    (Mischief(claim_overrides={"hd": "evil.example"}), "is not the hosted domain"),
    (Mischief(claim_overrides={"hd": "example.org.evil.example"}), "is not the hosted domain"),
    (Mischief(claim_overrides={"hd": ["example.org"]}), "no hd claim"),
])
def test_wrong_or_missing_hd_claim_is_refused_although_hd_was_requested(
        world: OidcWorld, mischief: Mischief, words: str) -> None:
    upstream = world.upstream(quirks=GoogleQuirks("example.org"))
    world.provider.mischief = mischief
    url, pending = upstream.start(utcnow())
    assert parse_qs(urlsplit(url).query)["hd"] == ["example.org"]  # the request the browser carries
    params = dict(parse_qsl(urlsplit(world.browser.get(url).url).query))

    with pytest.raises(errors.UpstreamVerificationFailed) as failure:
        upstream.finish(pending, params, utcnow())
    assert words in (failure.value.detail or ""), failure.value.detail


def test_without_hosted_domain_google_is_plain_openid_connect(world: OidcWorld) -> None:
    quirks = GoogleQuirks()
    assert hd_requested(world, quirks) == ()
    world.provider.mischief = Mischief(claim_overrides={"email_verified": False})

    identity = world.login(world.upstream(quirks=quirks))

    assert identity.email_trust is EmailTrust.UNVERIFIED  # email_verified honoured (OIDC Core 1.0 §5.1)
    assert identity.claims["email_verified"] is False


# -- the preset ------------------------------------------------------------------------------------------


def test_preset_builds_quirks_from_options() -> None:
    assert (GOOGLE.name, GOOGLE.display_name, GOOGLE.issuer) == ("google", "Google", "https://accounts.google.com")
    assert GOOGLE.allowed_algs == ("RS256",)
    assert "hosted_domain" in GOOGLE.options_help
    assert GOOGLE.build_quirks is build_google_quirks

    plain = build_google_quirks({}, Registration())
    assert plain.hosted_domain is None and dict(plain.authorization_params()) == {}
    restricted = build_google_quirks({"hosted_domain": "Example.org"}, Registration())
    assert restricted.hosted_domain == "example.org"
    assert dict(restricted.authorization_params()) == {"hd": "example.org"}
    same_hint = Registration(authorization_params=(("hd", "example.org"),))
    assert build_google_quirks({"hosted_domain": "example.org"}, same_hint).hosted_domain == "example.org"


@pytest.mark.parametrize(("options", "params", "words"), [
    ({"hosted_domain": "example.org", "tenant": "x"}, (), "unknown option"),
    ({"hosted_domain": ("a.example", "b.example")}, (), "takes one domain"),
    ({"hosted_domain": "*"}, (), "not a domain name"),
    ({"hosted_domain": "localhost"}, (), "not a domain name"),
    ({"hosted_domain": "exa mple.org"}, (), "not a domain name"),
    ({"hosted_domain": "-example.org"}, (), "not a domain name"),
    ({"hosted_domain": "example.org"}, (("hd", "other.example"),), "contradicts"),
])
def test_preset_options_are_checked(options: dict[str, OptionValue], params: tuple[tuple[str, str], ...],
                                    words: str) -> None:
    with pytest.raises(ValueError, match=words):
        build_google_quirks(options, Registration(authorization_params=params))
