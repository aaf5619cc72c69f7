"""The ways into an account, and the rule that a citizen can never remove the last one (issue 5, issue 17).

A way in is something that signs the account in by itself: each linked identity of an upstream (the citizen
signs in there), and the account's passkeys, together one way (any of them signs in on the discovery page's "Sign
in with a passkey", ``broker.journeys.passwordless``; WebAuthn Level 3 §6.1, a discoverable credential names its
account). The broker-local identity an account created with a passkey alone holds (``broker.journeys.
passkey_signup``; upstream ``passkey``) is not a way in: it only records how the account began, and signs nothing
in without a passkey. A second factor (an authenticator app, recovery or e-mail codes) is not a way in either.

Hence: unlinking an upstream identity is refused when it would leave no upstream identity and no passkey; the
passkey identity is not unlinked from the identities page (the passkeys are managed on the "Sign-in security"
page); removing a passkey is refused when it is the last passkey of an account with no upstream identity.
The stores add their own floor (``IdentityLinks.unlink_identity`` never removes the last identity).
"""

from __future__ import annotations

from collections.abc import Sequence

from broker.core.factors import PASSKEY_UPSTREAM, FactorKind
from broker.core.model import LinkedIdentity
from broker.journeys.context import Journeys

#: the page that says a sign-in method cannot be removed (HTTP 409)
LAST = "link_last.html"


def is_passkey_identity(identity: LinkedIdentity) -> bool:
    """Whether ``identity`` is the broker-local one of an account created with a passkey alone."""
    return identity.upstream == PASSKEY_UPSTREAM


def upstream_identities(identities: Sequence[LinkedIdentity]) -> list[LinkedIdentity]:
    """The identities that sign in at an upstream (each one a way in)."""
    return [i for i in identities if not is_passkey_identity(i)]


def passkeys_of(j: Journeys, account_id: str) -> list[str]:
    """The ids of the account's passkeys (none when passkeys are not wired)."""
    if j.passkeys is None or j.authenticators is None:
        return []
    return [f.authenticator_id for f in j.authenticators.of(account_id) if f.kind is FactorKind.PASSKEY]


def may_unlink(j: Journeys, account_id: str, issuer: str, subject: str) -> bool:
    """Whether the identity (``issuer``, ``subject``) of the account may be unlinked: an upstream identity, and
    some way in stays (another upstream identity, or a passkey)."""
    identities = j.accounts.identities(account_id)
    target = next((i for i in identities if (i.issuer, i.subject) == (issuer, subject)), None)
    if target is None or is_passkey_identity(target) or len(identities) < 2:
        return False
    others = [i for i in upstream_identities(identities) if i is not target]
    return bool(others) or bool(passkeys_of(j, account_id))


def may_remove_factor(j: Journeys, account_id: str, authenticator_id: str) -> bool:
    """Whether the account's factor ``authenticator_id`` may be removed as far as the ways in go: anything but
    the last passkey of an account without an upstream identity."""
    passkeys = passkeys_of(j, account_id)
    if authenticator_id not in passkeys or len(passkeys) > 1:
        return True
    return bool(upstream_identities(j.accounts.identities(account_id)))

