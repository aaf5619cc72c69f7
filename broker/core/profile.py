"""The claims the broker knows of an account for this login.

The unified profile across several linked identities (with provenance and merge rules) belongs to the
account-linking work; until then the profile of a login is what the identity used has asserted, its
latest values over its earlier ones (the account store keeps that merge).
"""

from __future__ import annotations

from collections.abc import Mapping

from broker.core.claims import BY_NAME, ClaimValue


def profile_for_login(claims: Mapping[str, ClaimValue]) -> Mapping[str, ClaimValue]:
    """Vocabulary claims only; unknown names are dropped, never passed on."""
    return {name: value for name, value in claims.items() if name in BY_NAME}
