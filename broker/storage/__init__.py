"""SQL storage of the broker: accounts and linked identities, pending login state, the OpenID provider's grants,
tokens and registered clients, the outbox of messages owed to other parties, schema migrations."""

from broker.storage import analytics_tables  # noqa: F401 - the analytics aggregates, for the metadata
from broker.storage.accounts import SqlAccountStore
from broker.storage.app_roles import SqlAppRoles
from broker.storage.audit import SqlAuditLog
from broker.storage.authenticators import SqlAuthenticators
from broker.storage.clients import SqlClientStore
from broker.storage.consents import SqlConsentStore
from broker.storage.db import create_engine_for, session_factory
from broker.storage.grants import SqlGrantStore
from broker.storage.login_history import SqlLoginHistory
from broker.storage.migrate import current_revision, upgrade
from broker.storage.operators import SqlOperatorGrants
from broker.storage.outbox import SqlOutbox
from broker.storage.passkeys import SqlPasskeys
from broker.storage.pending import SqlPendingStore

__all__ = [
    "SqlAccountStore",
    "SqlAppRoles",
    "SqlAuditLog",
    "SqlAuthenticators",
    "SqlClientStore",
    "SqlConsentStore",
    "SqlGrantStore",
    "SqlLoginHistory",
    "SqlOperatorGrants",
    "SqlOutbox",
    "SqlPasskeys",
    "SqlPendingStore",
    "create_engine_for",
    "current_revision",
    "session_factory",
    "upgrade",
]
