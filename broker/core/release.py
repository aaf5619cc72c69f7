"""What a downstream may receive: data minimization.

A downstream receives the intersection of what it requested (SAML RequestedAttribute in its metadata,
OIDC scopes/claims) and what release policy allows; nothing else, in either protocol.

Every released text is clean (``broker.core.unsafe_text``): an upstream (or a person editing a profile there)
can put a CR/LF or a bidirectional control (Unicode TR#9 §2: U+202E RIGHT-TO-LEFT OVERRIDE) in a name, to forge
a line in an app's log or CSV export, or to make ``Eve\u202eeci\u0142A`` display as someone else. Names and
other texts are normalised (``normalized_claim``); an e-mail address carrying one is refused, not repaired:
an identifier is matched by apps, and a repaired one could equal somebody else's.
"""

from __future__ import annotations

from collections.abc import Mapping

from broker.core.claims import DESCRIBES, ClaimValue
from broker.core.model import DownstreamParty, LoginRequest
from broker.core.unsafe_text import has_unsafe, normalized_claim

#: identifiers: refused when they carry a control or bidirectional character, never normalised
REFUSED_WHEN_UNSAFE = frozenset({"email", "phone_number"})


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
    released = {name: clean for name, value in profile.items()
                if name in allowed and (clean := releasable_value(name, value)) is not None}
    for flag, described in DESCRIBES.items():
        if described in allowed and described in profile and described not in released:
            released.pop(flag, None)  # refused as unsafe: its verification or relay flag goes with it
    if not unverified_email and profile.get("email_verified") is not True:
        released.pop("email", None)
    if "email" not in released:
        released.pop("email_relay", None)  # it describes the released address; without one it says nothing
    return released


def releasable_value(name: str, value: ClaimValue) -> ClaimValue | None:
    """``value`` fit for release, or None: identifiers (``REFUSED_WHEN_UNSAFE``) with a control or bidirectional
    character are refused; other texts, and each value of a list, are normalised, the address's ``formatted``
    keeping its line breaks (OIDC Core 1.0 §5.1.1); a text left empty is not released."""
    if isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        if name in REFUSED_WHEN_UNSAFE:
            return None if has_unsafe(value) else value
        return normalized_claim(value) or None
    if isinstance(value, tuple):  # a list (groups, roles): each value normalised, empty ones dropped
        return tuple(dict.fromkeys(clean for item in value if (clean := normalized_claim(item)))) or None
    parts = {key: normalized_claim(part, multiline=key == "formatted") for key, part in value.items()}
    return {key: part for key, part in parts.items() if part} or None
