"""One batch of the rollup in memory: audit records in ``seq`` order in, the rows to write out
(``broker.analytics.rollup`` loads what the tables already hold about the batch's accounts and writes the result).

Distinct counts are decided here, against what is stored plus what the batch added: an account is new on the day
of its first record; it is active on a day once, however often it signs in; it is returning on a day when it was
first seen on an earlier one; an upstream or app counts once per account.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from broker.analytics.events import UPSTREAM_BYTES, cut, facts_of
from broker.analytics.model import DailyKey, Metric


@dataclass(frozen=True)
class AuditRecord:
    """The columns of an audit record the rollup reads (never its hashes or support reference)."""

    seq: int
    at: datetime
    kind: str
    account_id: str | None
    upstream: str | None
    downstream: str | None
    reason: str | None

    @property
    def day(self) -> date:
        return self.at.astimezone(UTC).date()


@dataclass
class AccountState:
    """``analytics_accounts`` for one account while a batch changes it (not shared outside the rollup)."""

    account_id: str
    first_day: date
    last_sign_in: date | None = None
    upstreams: int = 0
    apps: int = 0
    authenticators: int = 0
    second_factor: bool = False
    deleted: bool = False


@dataclass
class Batch:
    """The stored facts about the batch's accounts (``accounts``, ``days``, ``upstreams``, ``apps``), grown by
    ``add``; the ``new_*`` lists and ``counts`` are what to write."""

    accounts: dict[str, AccountState]
    days: set[tuple[date, str]]
    upstreams: set[tuple[str, str]]
    apps: set[tuple[str, str]]
    counts: Counter[DailyKey] = field(default_factory=Counter)
    touched: set[str] = field(default_factory=set)
    new_accounts: set[str] = field(default_factory=set)
    new_days: list[tuple[date, str]] = field(default_factory=list)
    new_upstreams: list[tuple[str, str]] = field(default_factory=list)
    new_apps: list[tuple[str, str]] = field(default_factory=list)

    def add(self, record: AuditRecord) -> None:
        """Count ``record`` (the next in ``seq`` order)."""
        day = record.day
        facts = facts_of(record.kind, day, record.upstream, record.downstream, record.reason)
        self.counts.update(facts.counts)
        account_id = record.account_id
        if not account_id:
            return
        state = self.accounts.get(account_id)
        if state is None:
            if facts.deleted:
                return  # never seen before its deletion: a sign-up undone (``passkey_signup``), no new account
            state = self.accounts[account_id] = AccountState(account_id, day)
            self.new_accounts.add(account_id)
            self.counts[DailyKey(Metric.NEW_ACCOUNT, day, cut(record.upstream, UPSTREAM_BYTES))] += 1
        self.touched.add(account_id)
        if facts.signed_in:
            if (day, account_id) not in self.days:
                self.days.add((day, account_id))
                self.new_days.append((day, account_id))
                self.counts[DailyKey(Metric.ACTIVE, day)] += 1
                if state.first_day < day:
                    self.counts[DailyKey(Metric.RETURNING, day)] += 1
            state.last_sign_in = day if state.last_sign_in is None else max(state.last_sign_in, day)
        if facts.upstream_used and (account_id, facts.upstream_used) not in self.upstreams:
            self.upstreams.add((account_id, facts.upstream_used))
            self.new_upstreams.append((account_id, facts.upstream_used))
            state.upstreams += 1
        if facts.app_used and (account_id, facts.app_used) not in self.apps:
            self.apps.add((account_id, facts.app_used))
            self.new_apps.append((account_id, facts.app_used))
            state.apps += 1
        state.authenticators = max(state.authenticators + facts.authenticators, 0)
        state.second_factor = state.second_factor or facts.second_factor
        state.deleted = state.deleted or facts.deleted
