"""The figures of the operator's analytics (issue 19), as frozen dataclasses: what the queries return and the
console and ``broker analytics report`` show. Standard library only.

Counts of events (sign-ins, failures, declines, second factors) are sums of daily counts; counts of citizens
(active, returning, adoption, segments) are distinct accounts, exact for any range of days
(``broker.analytics.queries``). Accounts are named by their pseudonymous ids only, as in the audit trail.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from broker.analytics.login_times import LoginTimes


class Metric(StrEnum):
    """What a daily count counts (``analytics_daily.metric``); the values are stored."""

    #: a login answered to an app (audit ``login-succeeded``): upstream, app, and how (sso, upstream, consent, ...)
    SIGN_IN = "sign-in"
    #: distinct accounts that signed in that day; those of them first seen on an earlier day
    ACTIVE = "active"
    RETURNING = "returning"
    #: an account seen for the first time (its first audit record), by the upstream of that record
    NEW_ACCOUNT = "new-account"
    #: an upstream identity linked to an account, by upstream
    LINKED = "linked"
    #: a failed login (audit ``login-failed``), by app and reason (the error's class name)
    LOGIN_FAILED = "login-failed"
    #: a consent page declined, by app
    CONSENT_DECLINED = "consent-declined"
    #: a claim declined, by app and claim: on a declined consent page, or left unticked when agreeing
    CLAIM_DECLINED = "claim-declined"
    #: a login the citizen waited through, by upstream, app and the bucket of its duration
    #: (``broker.analytics.login_times``)
    LOGIN_TIME = "login-time"
    #: a second-factor event, by app and outcome ("verified: totp", "wrong code", "locked", ...)
    SECOND_FACTOR = "second-factor"
    #: a second factor enrolled or removed, by kind (totp, passkey, email-code, recovery-code)
    AUTHENTICATOR_ADDED = "authenticator-added"
    AUTHENTICATOR_REMOVED = "authenticator-removed"
    ACCOUNT_DELETED = "account-deleted"


class Dimension(StrEnum):
    """What a daily count can be broken down by (a column of ``analytics_daily``)."""

    UPSTREAM = "upstream"
    DOWNSTREAM = "downstream"
    DETAIL = "detail"


@dataclass(frozen=True)
class DailyKey:
    """One row's key in ``analytics_daily``: "" where a dimension does not apply."""

    metric: Metric
    day: date
    upstream: str = ""
    downstream: str = ""
    detail: str = ""


@dataclass(frozen=True)
class DayCount:
    """One point of a daily series: ``count`` on ``day`` for ``key`` (a dimension's value; "" for none)."""

    day: date
    key: str
    count: int


@dataclass(frozen=True)
class Series:
    """A metric per day from ``first`` to ``last`` (inclusive), broken down by ``by`` (None: one total per day).
    Days without any count have no point."""

    metric: Metric
    by: Dimension | None
    first: date
    last: date
    points: tuple[DayCount, ...]

    def keys(self) -> tuple[str, ...]:
        """The dimension's values, largest total first (ties by name)."""
        totals = self.totals()
        return tuple(sorted(totals, key=lambda k: (-totals[k], k)))

    def totals(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for point in self.points:
            found[point.key] = found.get(point.key, 0) + point.count
        return found

    def total(self) -> int:
        return sum(p.count for p in self.points)


@dataclass(frozen=True)
class Total:
    """A count over the whole range for one value of a dimension."""

    key: str
    count: int


@dataclass(frozen=True)
class AppClaim:
    """A claim declined ``count`` times at one app."""

    app: str
    claim: str
    count: int


@dataclass(frozen=True)
class Share:
    """``part`` of ``whole``; ``ratio`` is None when ``whole`` is 0."""

    part: int
    whole: int

    @property
    def ratio(self) -> float | None:
        return self.part / self.whole if self.whole else None


@dataclass(frozen=True)
class Citizens:
    """Distinct accounts over a range: ``active`` signed in during it, ``returning`` of them were first seen
    before it; ``new`` accounts were first seen during it (signed in or not)."""

    active: int
    returning: int
    new: int


@dataclass(frozen=True)
class Segment:
    """``citizens`` of the active ones fall in the segment named ``label``."""

    label: str
    citizens: int


@dataclass(frozen=True)
class Segments:
    """The citizens active in the range (accounts not deleted since), by what they did up to the last rollup:
    how many upstreams they used, how many apps they signed in to, the assurance they reached."""

    upstream_mix: tuple[Segment, ...]
    apps_used: tuple[Segment, ...]
    assurance: tuple[Segment, ...]


@dataclass(frozen=True)
class Rollup:
    """How far the aggregates reach: audit records rolled up, and audit records there are (over all chains)."""

    watermark: int
    audit_head: int

    @property
    def behind(self) -> int:
        return max(self.audit_head - self.watermark, 0)


@dataclass(frozen=True)
class Report:
    """Every figure of the analytics for the days ``first`` to ``last`` (inclusive, UTC)."""

    first: date
    last: date
    rollup: Rollup
    sign_ins_by_upstream: Series
    sign_ins_by_app: Series
    new_accounts: Series
    active_per_day: Series
    returning_per_day: Series
    citizens: Citizens
    #: identities linked per new account
    linking: Share
    failures_by_reason: tuple[Total, ...]
    consent_declines_by_app: tuple[Total, ...]
    #: claims declined (a declined page's items, and optional items left unticked), by claim; and by app and claim
    claim_declines: tuple[Total, ...]
    claim_declines_by_app: tuple[AppClaim, ...]
    second_factor_outcomes: tuple[Total, ...]
    #: second factors verified per sign-in
    step_up: Share
    #: active citizens (not deleted) with a second factor enrolled, of all of them
    mfa_adoption: Share
    segments: Segments
    #: logins the citizen waited through (not answered from the SSO session): their time, overall and by upstream
    login_times: LoginTimes
    login_times_by_upstream: tuple[tuple[str, LoginTimes], ...]
    #: how many of them fell in each bucket (its upper bound in milliseconds, ``broker.analytics.login_times``)
    login_time_buckets: tuple[Total, ...]
