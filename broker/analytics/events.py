"""What one audit record (``broker.core.audit``) contributes to the analytics: the daily counts it adds to, and
what it says about its account. Pure functions; ``broker.analytics.batch`` applies them in ``seq`` order.

Which records say what (``broker.journeys``):

- ``login-succeeded``: an app was answered; ``upstream`` is the session's upstream, ``downstream`` the app,
  ``reason`` how (``sso``, ``upstream``, ``consent``, ``step-up``), with the login's duration after it
  (``upstream; 5230 ms``, ``broker.core.login_time``). The account signed in that day.
- ``login-failed``: ``reason`` is the error's class name (``LoginStateInvalid``), ``logout: ...`` or a passkey's
  refusal; ``downstream`` the app when it was known.
- ``consent-declined``: the account, the app and (since issue 19) ``declined: <claims>``, every item the page
  asked for; ``consent-given``: ``page; declined: <claims>`` names the optional items left unticked.
- ``identity-linked``: the upstream of the identity linked.
- ``second-factor``: ``verified: <kind>``, ``wrong code (n of m)``, ``locked: ...``, ``email-code sent``,
  ``email-code enrolment started``.
- ``authenticator-added`` / ``-removed``: ``reason`` starts with the factor's kind (``totp <id>``,
  ``recovery-code: first set``); recovery codes are not counted as a second factor of their own.
- ``account-deleted``: the account is gone (its pseudonymous id stays, as in the audit trail).

Dimension values are cut to their column's size in UTF-8 bytes, so any key fits a PostgreSQL index entry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from broker.analytics.login_times import UNTIMED, bucket_of
from broker.analytics.model import DailyKey, Metric
from broker.core import login_time
from broker.core.audit import AuditKind
from broker.core.consent import declined_in
from broker.core.factors import FactorKind
from broker.core.model import PORTAL_PARTY
from broker.core.operators import CONSOLE_PARTY_ID

UPSTREAM_BYTES = 255
DOWNSTREAM_BYTES = 1024
DETAIL_BYTES = 255
_FACTOR_KINDS = frozenset(k.value for k in FactorKind)
_FIRST_WORD = re.compile(r"[^\s:;]+")


@dataclass(frozen=True)
class Facts:
    """What one audit record contributes: daily counts to add 1 to, and what it says about its account."""

    counts: tuple[DailyKey, ...] = ()
    #: the account signed in (to ``app_used``, with ``upstream_used``)
    signed_in: bool = False
    upstream_used: str = ""
    app_used: str = ""
    #: second factors enrolled (+1) or removed (-1)
    authenticators: int = 0
    #: a second factor was verified
    second_factor: bool = False
    deleted: bool = False


def cut(text: str | None, limit: int) -> str:
    """``text`` ("" for None) cut to at most ``limit`` bytes of UTF-8, never inside a character."""
    if not text:
        return ""
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", errors="ignore")


def factor_kind(reason: str | None) -> str:
    """The kind of second factor an ``authenticator-added``/``-removed`` record names; "other" if none."""
    found = _FIRST_WORD.match(reason or "")
    return found.group(0) if found is not None and found.group(0) in _FACTOR_KINDS else "other"


def second_factor_outcome(reason: str | None) -> str:
    """A ``second-factor`` record's outcome, from a short fixed list (its reason holds counts and waits)."""
    text = reason or ""
    if text.startswith("verified:"):
        kind = text.removeprefix("verified:").strip()
        return f"verified: {kind if kind in _FACTOR_KINDS else 'other'}"
    if text.startswith("wrong code"):
        return "wrong code"
    if text.startswith("locked:"):
        return "locked"
    if text in ("email-code sent", "email-code enrolment started"):
        return text
    return "other"


def facts_of(kind: str, day: date, upstream: str | None, downstream: str | None, reason: str | None) -> Facts:
    """What a record of ``kind`` on ``day`` contributes (module docstring); nothing for the other kinds."""
    up, down = cut(upstream, UPSTREAM_BYTES), cut(downstream, DOWNSTREAM_BYTES)
    if kind == AuditKind.LOGIN_SUCCEEDED.value:
        how, ms = login_time.read(reason)
        keys = [DailyKey(Metric.SIGN_IN, day, up, down, cut(how, DETAIL_BYTES))]
        if ms is not None and how not in UNTIMED:
            keys.append(DailyKey(Metric.LOGIN_TIME, day, up, down, bucket_of(ms)))
        return Facts(tuple(keys), signed_in=True, upstream_used=up,
                     app_used="" if down in (PORTAL_PARTY.party_id, CONSOLE_PARTY_ID) else down)
    if kind == AuditKind.LOGIN_FAILED.value:
        return Facts((DailyKey(Metric.LOGIN_FAILED, day, "", down, cut(reason, DETAIL_BYTES) or "unknown"),))
    if kind in (AuditKind.CONSENT_DECLINED.value, AuditKind.CONSENT_GIVEN.value):
        claims = tuple(DailyKey(Metric.CLAIM_DECLINED, day, "", down, cut(c, DETAIL_BYTES))
                       for c in declined_in(reason))
        page = (DailyKey(Metric.CONSENT_DECLINED, day, "", down),) if kind == AuditKind.CONSENT_DECLINED.value else ()
        return Facts(page + claims)
    if kind == AuditKind.LINKED.value:
        return Facts((DailyKey(Metric.LINKED, day, up),), upstream_used=up)
    if kind == AuditKind.SECOND_FACTOR.value:
        outcome = second_factor_outcome(reason)
        return Facts((DailyKey(Metric.SECOND_FACTOR, day, "", down, outcome),),
                     second_factor=outcome.startswith("verified"))
    if kind in (AuditKind.AUTHENTICATOR_ADDED.value, AuditKind.AUTHENTICATOR_REMOVED.value):
        added = kind == AuditKind.AUTHENTICATOR_ADDED.value
        factor = factor_kind(reason)
        metric = Metric.AUTHENTICATOR_ADDED if added else Metric.AUTHENTICATOR_REMOVED
        counted = 0 if factor == FactorKind.RECOVERY.value else 1 if added else -1
        return Facts((DailyKey(metric, day, detail=factor),), authenticators=counted)
    if kind == AuditKind.ACCOUNT_DELETED.value:
        return Facts((DailyKey(Metric.ACCOUNT_DELETED, day),), deleted=True)
    return Facts()
