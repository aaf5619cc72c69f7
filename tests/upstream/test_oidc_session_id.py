"""The provider's session id goes with a verified OpenID Connect answer (issue 18; Back-Channel Logout 1.0 §2.1,
§2.4): the ID token's ``sid`` becomes the ``UPSTREAM_SID`` pair of ``VerifiedAnswer.upstream_state``, which the
login records with the SSO session, so a logout token naming it ends that session only. A ``sid`` the broker would
not keep (no string, empty, too long, control characters) is left out and the sign-in still succeeds.

The provider is the demo provider; ``Mischief(claim_overrides={"sid": ...})`` makes its signed ID tokens carry one.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from broker.core.outcomes import Redirect
from broker.core.protocol_ports import VerifiedAnswer
from broker.core.upstream_logout_tokens import UPSTREAM_SID, upstream_sid
from broker.demo.oidc_provider import Mischief
from broker.upstream.oauth_upstreams import OAuthUpstreams
from broker.upstream.oidc import OidcUpstream
from tests.upstream.conftest import OidcWorld, utcnow


def answer(world: OidcWorld, upstream: OidcUpstream) -> VerifiedAnswer:
    """A sign-in through the adapter the login journey uses (``OAuthUpstreams``), to its verified answer."""
    adapter = OAuthUpstreams(lambda name: upstream if name == upstream.name else None)
    now = utcnow()
    started = adapter.begin(upstream.name, now, None)
    assert isinstance(started.outgoing, Redirect)
    reply = world.browser.get(started.outgoing.url)
    params = dict(parse_qsl(urlsplit(reply.url).query))
    return adapter.finish(started.pending, params, now, arrived_at=upstream.name)


def test_the_id_tokens_sid_goes_with_the_answer(world: OidcWorld) -> None:
    world.provider.mischief = Mischief(claim_overrides={"sid": "op-session-7f3a"})

    verified = answer(world, world.upstream())

    assert verified.identity.subject == "alice-0001"
    assert verified.upstream_state == ((UPSTREAM_SID, "op-session-7f3a"),)
    assert upstream_sid(verified.upstream_state) == "op-session-7f3a"


def test_an_id_token_without_sid_gives_no_upstream_state(world: OidcWorld) -> None:
    verified = answer(world, world.upstream())

    assert verified.identity.subject == "alice-0001"
    assert verified.upstream_state == ()


@pytest.mark.parametrize("sid", [7, "", "x" * 256, "op\x00session", ["op-session"]])
def test_a_sid_the_broker_would_not_keep_is_left_out(world: OidcWorld, sid: object) -> None:
    world.provider.mischief = Mischief(claim_overrides={"sid": sid})

    verified = answer(world, world.upstream())

    assert verified.identity.subject == "alice-0001", "the sign-in itself counts"
    assert verified.upstream_state == ()


def test_the_longest_sid_kept_is_255_characters(world: OidcWorld) -> None:
    world.provider.mischief = Mischief(claim_overrides={"sid": "s" * 255})

    assert upstream_sid(answer(world, world.upstream()).upstream_state) == "s" * 255
