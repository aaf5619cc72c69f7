"""One transaction for a step of a journey (issue 21): what the step stores is stored together, or not at all.

The last step of a login writes to several stores (the account, the login history, the SSO session, the grant,
the audit trail). A journey runs such a step inside ``with j.unit_of_work():``; the storage layer makes every
store's write inside it part of one database transaction, committed when the block ends and rolled back when
it raises (``broker.storage.unit_of_work``). Steps do not nest: a step opened inside another joins it.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Protocol as Interface


class UnitOfWork(Interface):
    def __call__(self) -> AbstractContextManager[None]:
        """A block whose store writes are one transaction."""
        ...


def separate_writes() -> AbstractContextManager[None]:
    """No unit of work: each store commits its own writes (stores without a shared database, tests)."""
    return nullcontext()


_check: UnitOfWork = separate_writes
