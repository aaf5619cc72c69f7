"""Pending records bound to the browser that started them (login CSRF, RFC 6749 §10.12)."""

from __future__ import annotations

from broker.core import errors
from broker.core.pending_records import R, take_record
from broker.journeys.context import Browser, Journeys


def take_bound(j: Journeys, browser: Browser, cls: type[R], handle: str, what: str) -> R:
    """The record ``cls`` under ``handle``, taken once, when this browser was given the handle; otherwise
    ``LoginStateInvalid`` naming ``what`` (a handle from another browser is never even looked up)."""
    record = take_record(j.pending, cls, handle, j.now()) if browser.unbind(handle) else None
    if record is None:
        raise errors.LoginStateInvalid(detail=f"{what} unknown, expired, used or from another browser")
    return record
