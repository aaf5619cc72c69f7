"""Private relay e-mail addresses: deliverable, but made up for one service (Apple's "Hide My Email").

Sign in with Apple may give an app a relay address at ``privaterelay.appleid.com`` instead of the person's own
("Communicating using the private email relay service", developer.apple.com/documentation/signinwithapple) and
says so in its ``is_private_email`` claim. Such an address is unique to the broker's Apple team: it names no
one anywhere else, so it must never be matched to other accounts, by the broker (``EmailTrust.PRIVATE_RELAY``)
or by an app (the ``email_relay`` claim, ``core.claims``).

An address is a relay address when the upstream said so (its adapter stored ``email_relay: true`` with it) or
when its domain is a known relay domain, whoever asserted it: the domain check also covers identities stored
before the claim existed.
"""

from __future__ import annotations

from collections.abc import Mapping

from broker.core.claims import ClaimValue

#: domains whose every address is a private relay address (and their subdomains)
RELAY_DOMAINS = ("privaterelay.appleid.com",)


def is_relay_address(email: str) -> bool:
    """Whether ``email`` is at a relay domain (case-insensitive, a trailing dot ignored)."""
    domain = email.rpartition("@")[2].strip().rstrip(".").lower()
    return any(domain == relay or domain.endswith("." + relay) for relay in RELAY_DOMAINS)


def relay_flag(asserted: Mapping[str, ClaimValue]) -> bool | None:
    """``email_relay`` for the e-mail address among one identity's ``asserted`` claims; None without an address."""
    email = asserted.get("email")
    if not isinstance(email, str):
        return None
    return asserted.get("email_relay") is True or is_relay_address(email)
