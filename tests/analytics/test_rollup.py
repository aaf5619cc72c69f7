"""The rollup counts every audit record exactly once: in one go or many, in batches of any size, run twice, or by two
workers at once; it leaves the audit chain as it was; the worker runs it when due and survives its failures."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, delete, select, update

from broker.analytics import PeriodicRollup, RollupReport, rollup
from broker.storage import SqlAuditLog, create_engine_for
from broker.storage.analytics_tables import (
    AnalyticsAccountAppRow,
    AnalyticsAccountDayRow,
    AnalyticsAccountRow,
    AnalyticsAccountUpstreamRow,
    AnalyticsDailyRow,
    AnalyticsWatermarkRow,
)
from broker.storage.tables import AuditChainHeadRow, AuditEventRow
from tests.analytics.analytics_support import STORY, now_utc, tell

AGGREGATES = (AnalyticsDailyRow, AnalyticsAccountRow, AnalyticsAccountDayRow, AnalyticsAccountUpstreamRow,
              AnalyticsAccountAppRow)


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every aggregate row, in a fixed order."""
    with engine.connect() as connection:
        return {table.__tablename__: sorted(tuple(r) for r in connection.execute(select(table.__table__)))
                for table in AGGREGATES}


def rebuilt(engine: Engine, now: datetime) -> dict[str, list[tuple[Any, ...]]]:
    """The aggregates rebuilt from the whole audit trail in one go (the operator's way to rebuild them too)."""
    with engine.begin() as connection:
        for table in AGGREGATES:
            connection.execute(delete(table))
        connection.execute(update(AnalyticsWatermarkRow).values(seq=0))
    rollup(engine, now)
    return snapshot(engine)


@pytest.fixture
def now() -> datetime:
    return now_utc()


def test_rolling_up_in_two_goes_counts_each_record_once(engine: Engine, now: datetime) -> None:
    tell(engine, now, STORY[:12])
    assert rollup(engine, now) == RollupReport(records=12, batches=1, watermark=12, caught_up=True)
    tell(engine, now, STORY[12:])
    assert rollup(engine, now) == RollupReport(records=14, batches=1, watermark=26, caught_up=True)
    assert rollup(engine, now) == RollupReport(records=0, batches=0, watermark=26, caught_up=True)
    in_two_goes = snapshot(engine)
    assert in_two_goes == rebuilt(engine, now)
    with engine.connect() as connection:
        assert connection.execute(select(AnalyticsWatermarkRow.seq, AnalyticsWatermarkRow.rolled_at)
                                  .where(AnalyticsWatermarkRow.id == 1)).one() == (26, now)


@pytest.mark.parametrize("batch", [2, 5000])
def test_records_spread_over_the_audit_chains_are_counted_as_in_one(engine: Engine, now: datetime,
                                                                    batch: int) -> None:
    """Each chain has its own watermark (its own ``seq``): every record counted once, as if they were one chain."""
    tell(engine, now)
    one_chain = rebuilt(engine, now)
    with engine.begin() as connection:
        connection.execute(delete(AuditEventRow))
        connection.execute(update(AuditChainHeadRow).values(seq=0))  # hashes need not verify for the rollup
        connection.execute(update(AnalyticsWatermarkRow).values(seq=0))
        for table in AGGREGATES:
            connection.execute(delete(table))
    tell(engine, now, STORY[:10], chains=(3, 1, 8))
    first = rollup(engine, now, batch=batch)
    assert (first.records, first.watermark, first.caught_up) == (10, 10, True)
    tell(engine, now, STORY[10:], chains=(2, 5, 3, 7))
    assert rollup(engine, now, batch=batch).watermark == 26
    assert snapshot(engine) == one_chain
    with engine.connect() as connection:
        watermarks = dict(connection.execute(select(AnalyticsWatermarkRow.id, AnalyticsWatermarkRow.seq)).all())
    assert watermarks == {1: 3, 2: 4, 3: 8, 4: 0, 5: 4, 6: 0, 7: 4, 8: 3}


@pytest.mark.parametrize("batch", [1, 3, 25])
def test_any_batch_size_gives_the_same_aggregates(engine: Engine, now: datetime, batch: int) -> None:
    tell(engine, now)
    report = rollup(engine, now, batch=batch)
    assert (report.records, report.batches, report.caught_up) == (26, -(-26 // batch), True)
    assert snapshot(engine) == rebuilt(engine, now)


def test_a_run_stops_after_its_batches_and_the_next_goes_on(engine: Engine, now: datetime) -> None:
    tell(engine, now)
    assert rollup(engine, now, batch=10, max_batches=2) == RollupReport(20, 2, 20, caught_up=False)
    assert rollup(engine, now, batch=10, budget=timedelta(0)) == RollupReport(6, 1, 26, caught_up=True)


def test_two_rollups_at_once_count_each_record_once(engine: Engine, now: datetime) -> None:
    story = STORY * 6
    tell(engine, now, story)
    start, reports = threading.Barrier(2), list[RollupReport]()

    def run() -> None:
        start.wait()
        reports.append(rollup(engine, now, batch=7))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sum(r.records for r in reports) == len(story) and {r.watermark for r in reports} == {len(story)}
    assert snapshot(engine) == rebuilt(engine, now)


def test_the_audit_chain_still_verifies(engine: Engine, now: datetime) -> None:
    tell(engine, now)
    rollup(engine, now, batch=4)
    assert SqlAuditLog(engine).verify() is None


def test_the_worker_rolls_up_when_due_and_works_off_a_backlog(engine: Engine, now: datetime) -> None:
    periodic = PeriodicRollup(every=timedelta(minutes=5), budget=timedelta(0), batch=10)
    tell(engine, now)
    passes = [periodic.run_if_due(engine, now + timedelta(seconds=n)) for n in range(4)]
    # a backlog: one batch per pass (the budget is spent) until the end is reached, then nothing until due
    assert [p.records if p else None for p in passes] == [10, 10, 6, None]
    tell(engine, now, STORY[:2])
    assert periodic.run_if_due(engine, now + timedelta(minutes=4)) is None
    later = periodic.run_if_due(engine, now + timedelta(minutes=6))
    assert later is not None and later.records == 2


def test_a_failing_rollup_is_logged_and_tried_again_later(database_url: str, now: datetime,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    unmigrated = create_engine_for(database_url)
    periodic = PeriodicRollup(every=timedelta(minutes=5))
    try:
        with caplog.at_level(logging.WARNING, logger="broker.analytics"):
            assert periodic.run_if_due(unmigrated, now) is None
        assert any(m.startswith("analytics: rollup failed (") for m in caplog.messages)
        assert periodic.run_if_due(unmigrated, now + timedelta(minutes=1)) is None  # not due: not even tried
        assert len([m for m in caplog.messages if "rollup failed" in m]) == 1
    finally:
        unmigrated.dispose()
