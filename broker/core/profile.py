"""The claims the broker knows of an account for this login.

The unified profile across several linked identities (with provenance and merge rules) belongs to the
account-linking work; until then the profile of a login is what the upstream asserted now, normalized.
"""

from __future__ import annotations

from collections.abc import Mapping

from broker.core.claims import BY_NAME, ClaimValue
from broker.core.model import UpstreamIdentity


def profile_for_login(identity: UpstreamIdentity) -> Mapping[str, ClaimValue]:
    """Vocabulary claims of ``identity``; unknown names are dropped, never passed on."""
    return {name: value for name, value in identity.claims.items() if name in BY_NAME}
