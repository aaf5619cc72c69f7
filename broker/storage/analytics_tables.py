"""The aggregates kept beside the audit trail for the operator's analytics (issue 19; ``broker.analytics``).

The audit trail itself is never changed: these tables are derived from it by ``broker.analytics.rollup`` and can be
dropped and rebuilt from it at any time (set the watermark back to 0 and empty them). Same declarative ``Base`` as
``broker.storage.tables``; the package (``broker.storage``) imports this module, so the metadata migrations compare
against has them too. Each table grows with days x dimensions, with accounts, or with the days each account signed in
on (at most one row per account and day), never with the number of audit records.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Date, Index, Integer, PrimaryKeyConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from broker.storage.tables import Base, UTCDateTime


class AnalyticsWatermarkRow(Base):
    """One row per audit chain (``id`` is the chain, 1..8) naming its last record rolled up (its ``seq``). Each
    rollup batch locks them first and moves them in the transaction that adds the batch's counts, so a record is
    counted exactly once."""

    __tablename__ = "analytics_watermark"
    __table_args__ = (CheckConstraint("id BETWEEN 1 AND 8", name="ck_analytics_watermark_chains"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    #: when a rollup last moved it
    rolled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class AnalyticsDailyRow(Base):
    """A count per UTC day, metric (``broker.analytics.model.Metric``) and dimensions; "" where a dimension does not
    apply (so the key is unique without NULLs). Rows: days x metrics x the upstreams, apps and reasons seen."""

    __tablename__ = "analytics_daily"
    __table_args__ = (
        PrimaryKeyConstraint("metric", "day", "upstream", "downstream", "detail", name="pk_analytics_daily"),
    )

    metric: Mapped[str] = mapped_column(String(32), nullable=False)
    day: Mapped[date] = mapped_column(Date, nullable=False)
    upstream: Mapped[str] = mapped_column(String(255), nullable=False)
    downstream: Mapped[str] = mapped_column(String(1024), nullable=False)
    #: the metric's own dimension: a failure's reason, a second factor's outcome, how a sign-in was answered
    detail: Mapped[str] = mapped_column(String(255), nullable=False)
    count: Mapped[int] = mapped_column(BigInteger, nullable=False)


class AnalyticsAccountRow(Base):
    """What the audit trail says about one (pseudonymous) account, for the figures that count citizens rather
    than events: when it was first seen, when it last signed in, how many upstreams and apps it used, whether it
    has a second factor. One row per account that ever appeared in the audit trail."""

    __tablename__ = "analytics_accounts"
    __table_args__ = (Index("ix_analytics_accounts_last_sign_in", "last_sign_in"),)

    account_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    #: the day of its first audit record: the day it was created (module docstring of ``broker.analytics.rollup``)
    first_day: Mapped[date] = mapped_column(Date, nullable=False)
    last_sign_in: Mapped[date | None] = mapped_column(Date, nullable=True)
    #: distinct upstreams it signed in with or linked; distinct apps (the portal apart) it signed in to
    upstreams: Mapped[int] = mapped_column(Integer, nullable=False)
    apps: Mapped[int] = mapped_column(Integer, nullable=False)
    #: second factors enrolled less those removed (recovery codes apart)
    authenticators: Mapped[int] = mapped_column(Integer, nullable=False)
    #: a second factor was verified at least once (the step-up level was reached)
    second_factor: Mapped[bool] = mapped_column(Boolean, nullable=False)
    deleted: Mapped[bool] = mapped_column(Boolean, nullable=False)


class AnalyticsAccountDayRow(Base):
    """A day on which an account signed in (one row however many times it did): what distinct counts over any
    range of days are made of (returning citizens, MFA adoption, segments)."""

    __tablename__ = "analytics_account_days"
    __table_args__ = (PrimaryKeyConstraint("day", "account_id", name="pk_analytics_account_days"),)

    day: Mapped[date] = mapped_column(Date, nullable=False)
    account_id: Mapped[str] = mapped_column(String(36), nullable=False)


class AnalyticsAccountUpstreamRow(Base):
    """An upstream an account used (signed in with, or linked): ``AnalyticsAccountRow.upstreams`` counts them."""

    __tablename__ = "analytics_account_upstreams"
    __table_args__ = (PrimaryKeyConstraint("account_id", "upstream", name="pk_analytics_account_upstreams"),)

    account_id: Mapped[str] = mapped_column(String(36), nullable=False)
    upstream: Mapped[str] = mapped_column(String(255), nullable=False)


class AnalyticsAccountAppRow(Base):
    """An app an account signed in to: ``AnalyticsAccountRow.apps`` counts them."""

    __tablename__ = "analytics_account_apps"
    __table_args__ = (PrimaryKeyConstraint("account_id", "downstream", name="pk_analytics_account_apps"),)

    account_id: Mapped[str] = mapped_column(String(36), nullable=False)
    downstream: Mapped[str] = mapped_column(String(1024), nullable=False)
