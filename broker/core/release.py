"""What a downstream may receive: data minimization.

A downstream receives the intersection of what it requested (SAML RequestedAttribute in its metadata,
OIDC scopes/claims) and what release policy allows; nothing else, in either protocol.
"""

from __future__ import annotations

from collections.abc import Mapping

from broker.core.claims import ClaimValue
from broker.core.model import DownstreamParty, LoginRequest


def releasable_claims(party: DownstreamParty, request: LoginRequest, policy_allows: frozenset[str]) -> frozenset[str]:
    """Claim names this login may release: (registered or requested in this login) and allowed by policy."""
    asked = party.requested_claims | request.requested_claims
    return frozenset(asked & policy_allows)


def release(profile: Mapping[str, ClaimValue], allowed: frozenset[str],
            unverified_email: bool = False) -> Mapping[str, ClaimValue]:
    """The allowed claims of ``profile``.

    An e-mail address goes out only when the upstream verified it (``email_verified`` true), unless
    ``unverified_email``: many apps key accounts on the address, and an unverified or tenant-editable one
    (Microsoft Entra's, the nOAuth attack) would let one person sign in to another's account at the app.
    ``email_relay`` goes out only with the address it describes.
    """
    released = {name: value for name, value in profile.items() if name in allowed}
    if not unverified_email and profile.get("email_verified") is not True:
        released.pop("email", None)
    if "email" not in released:
        released.pop("email_relay", None)  # it describes the released address; without one it says nothing
    return released
