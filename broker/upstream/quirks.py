"""Where a provider departs from plain OpenID Connect, in one place per provider.

``OidcUpstream`` runs the standard flow and asks its ``ProviderQuirks`` at each point where real providers
differ: extra authorization parameters (Google ``hd``, Apple ``response_mode=form_post``), the client
secret (Apple's is a JWT the broker signs), the issuer a token must carry (Microsoft's multi-tenant
``{tenantid}`` template), provider-specific claim checks (Google hosted domain, Microsoft allowed
tenants), the identity key (Microsoft ``tid`` + ``oid``), the profile (Apple's one-time ``user`` field and
string booleans) and how far the ``email`` claim can be trusted (``core.model.EmailTrust``).

``StandardQuirks`` is plain OpenID Connect; a preset subclasses it and overrides only what differs.
Every check raises ``UpstreamVerificationFailed``; nothing here talks to the network.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from broker.core import errors
from broker.core.model import EmailTrust


class StandardQuirks:
    """Plain OpenID Connect (OIDC Core 1.0): nothing is different."""

    def authorization_params(self) -> Mapping[str, str]:
        """Added to the authorization request (after the settings' own extra parameters)."""
        return {}

    def client_secret(self, configured: str, now: datetime) -> str:
        """The secret to authenticate at the token endpoint with."""
        return configured

    def expected_issuer(self, configured: str, claims: Mapping[str, Any]) -> str:
        """The ``iss`` the verified ID token must carry (OIDC Core 1.0 §3.1.3.7 step 2)."""
        return configured

    def iss_parameter_ok(self, configured: str, iss: str) -> bool:
        """Whether the RFC 9207 ``iss`` authorization-response parameter names this provider."""
        return iss == configured

    def check_claims(self, claims: Mapping[str, Any]) -> None:
        """Provider-specific checks of the verified ID token claims; raise to refuse."""

    def identity_key(self, configured_issuer: str, claims: Mapping[str, Any]) -> tuple[str, str]:
        """(issuer, subject) that identify this person at this provider for good."""
        return configured_issuer, str(claims["sub"])

    def profile(self, id_claims: Mapping[str, Any], userinfo: Mapping[str, Any],
                params: Mapping[str, str]) -> dict[str, Any]:
        """The raw claims to map to the vocabulary: ID token claims win, UserInfo adds what they lack."""
        return {**userinfo, **id_claims}

    def sent_once(self) -> frozenset[str]:
        """Vocabulary claims this provider sends only once; a later omission keeps the earlier value."""
        return frozenset()

    def email_trust(self, raw: Mapping[str, Any]) -> EmailTrust:
        """OIDC Core 1.0 §5.1: an address is only as good as the provider's ``email_verified``."""
        verified = raw.get("email_verified")
        return EmailTrust.VERIFIED if verified is True or verified == "true" else EmailTrust.UNVERIFIED


STANDARD = StandardQuirks()


def refuse(reason: str) -> errors.UpstreamVerificationFailed:
    return errors.UpstreamVerificationFailed(detail=reason)
