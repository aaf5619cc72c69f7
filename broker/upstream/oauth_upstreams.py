"""The OpenID Connect and OAuth 2.0 upstreams as one ``UpstreamAdapter`` (``broker.core.protocol_ports``).

Each registered provider has its own client (``OidcUpstream`` with a preset's quirks, or ``GitHubUpstream``);
this adapter finds it by name, keeps its pending authorization as JSON for the journey, and does the checks
that belong to the protocol rather than to one provider: the answer must arrive at the callback of the
provider it was sent to (IdP mix-up, RFC 9700 §4.4), and a link proof must have been asked as a fresh
sign-in (``max_age=0``, OIDC Core §3.1.2.1). An OpenID Connect provider's answer carries its session id
(``OidcUpstream.verify_answer``), which its back-channel logout tokens name (Back-Channel Logout 1.0 §2.4).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from broker.core import errors
from broker.core.model import LoginRequest, Protocol
from broker.core.outcomes import Redirect
from broker.core.protocol_ports import UpstreamAdapter, UpstreamStart, VerifiedAnswer
from broker.upstream.factory import ProviderAdapter
from broker.upstream.oidc import OidcUpstream
from broker.upstream.oidc_settings import PendingAuthorization


class OAuthUpstreams:
    """``provider(name)``: the client of a registered OIDC or OAuth 2.0 upstream, None for any other name."""

    def __init__(self, provider: Callable[[str], ProviderAdapter | None]) -> None:
        self._provider = provider

    @property
    def protocol(self) -> Protocol:
        return Protocol.OIDC

    def knows(self, name: str) -> bool:
        return self._provider(name) is not None

    def proves_fresh_sign_in(self, name: str) -> bool:
        found = self._provider(name)
        return found is not None and found.proves_fresh_sign_in

    def begin(self, name: str, now: datetime, login: LoginRequest | None,
              reauthenticate: bool = False) -> UpstreamStart:
        found = self._provider(name)
        if found is None:
            raise errors.UnknownUpstream(detail=f"upstream {name!r:.200} has no adapter")
        url, pending = found.start(now, login, reauthenticate=reauthenticate)
        return UpstreamStart(Redirect(url), pending.state, pending.to_json())

    def finish(self, pending: str, answer: Mapping[str, str], now: datetime, *, arrived_at: str | None = None,
               fresh_required: bool = False) -> VerifiedAnswer:
        """``LoginStateInvalid`` for a damaged ``pending``; ``UpstreamVerificationFailed`` for an answer at
        another provider's callback (mix-up), whatever the answer says."""
        authorization = PendingAuthorization.from_json(pending)
        found = self._provider(authorization.upstream)
        if found is None or arrived_at != authorization.upstream:
            raise errors.UpstreamVerificationFailed(
                detail=f"state for {authorization.upstream!r} arrived at {arrived_at!r:.200}")
        if fresh_required and authorization.max_age != 0:
            raise errors.LoginStateInvalid(detail="link proof was not asked as a fresh sign-in")
        if isinstance(found, OidcUpstream):  # an OpenID provider's session (its ``sid``) goes with the answer
            return found.verify_answer(authorization, answer, now)
        return VerifiedAnswer(found.finish(authorization, answer, now))  # plain OAuth 2.0 has no session to name

    def finish_unsolicited(self, answer: Mapping[str, str], now: datetime) -> VerifiedAnswer:
        """OAuth 2.0 has no unsolicited answer: a callback without a waiting request is refused (RFC 6749
        §10.12, login CSRF)."""
        raise errors.LoginStateInvalid(detail="callback state expired or already used")


_check: type[UpstreamAdapter] = OAuthUpstreams
