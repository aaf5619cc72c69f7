"""Find or create the citizen's account for an upstream identity.

Rule: an account is found only by the exact (issuer, subject) pair an upstream asserted. Nothing else,
least of all an e-mail address, ever attaches an identity to an existing account here; linking a second
identity is an explicit, proven act of the signed-in citizen (see the account-linking work).
"""

from __future__ import annotations

from datetime import datetime

from broker.core.model import Account, UpstreamIdentity
from broker.core.ports import AccountStore


def resolve_account(store: AccountStore, identity: UpstreamIdentity, now: datetime) -> tuple[Account, bool]:
    """The account for ``identity`` and whether it was created by this login."""
    account = store.find_by_identity(identity.issuer, identity.subject)
    if account is None:
        account, created = store.create_with_identity(identity, now)
        if created:
            return account, True
    store.record_use(account.account_id, identity, now)
    return account, False
