"""One pass of the delivery worker (``broker.delivery.worker.deliver_due``) over the in-memory outbox: each
answer's outcome, the attempt limit, and logs that name the message but never its token."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from broker.core.outbox import MessageState, OutgoingMessage, QueuedMessage
from broker.delivery.http import Unreachable
from broker.delivery.schedule import MAX_ATTEMPTS
from broker.delivery.worker import PassReport, deliver_due
from tests.journeys.fakes_support import FakeOutbox

AT = datetime.now(UTC).replace(microsecond=0)  # the tests' own clock: no test depends on a date
SECRET = "eyJhbGciOiJFUzI1NiJ9.secret-token-body.signature"


def _outbox(*jtis: str) -> FakeOutbox:
    outbox = FakeOutbox()
    for i, jti in enumerate(jtis):  # queued one second apart, in this order, the last at AT
        outbox.enqueue(OutgoingMessage("permits", jti, "backchannel-logout", "https://permits.example.org/bcl",
                                       f"logout_token={SECRET}-{jti}", "application/x-www-form-urlencoded"),
                       AT - timedelta(seconds=len(jtis) - 1 - i))
    return outbox


def _answering(status: int) -> Callable[[str, str, str, str | None], int]:
    def post(url: str, body: str, content_type: str, authorization: str | None) -> int:
        return status

    return post


def _only(outbox: FakeOutbox) -> QueuedMessage:
    (message,) = outbox.messages.values()
    return message


def test_2xx_is_delivered() -> None:
    outbox = _outbox("a", "b")
    sent: list[tuple[str, str, str]] = []

    def post(url: str, body: str, content_type: str, authorization: str | None) -> int:
        sent.append((url, body, content_type))
        return 200

    assert deliver_due(outbox, post, AT) == PassReport(claimed=2, delivered=2)
    assert sent[0] == ("https://permits.example.org/bcl", f"logout_token={SECRET}-a",
                       "application/x-www-form-urlencoded")
    assert {m.state for m in outbox.messages.values()} == {MessageState.DELIVERED}
    assert deliver_due(outbox, post, AT + timedelta(days=1)) == PassReport()


@pytest.mark.parametrize("status", [400, 401, 404])
def test_a_refusal_is_a_dead_letter_at_once(status: int) -> None:
    outbox = _outbox("a")
    assert deliver_due(outbox, _answering(status), AT) == PassReport(claimed=1, dead=1)
    message = _only(outbox)
    assert message.state is MessageState.DEAD and message.attempts == 1
    assert message.last_error == f"HTTP {status}: refused by the receiver"


@pytest.mark.parametrize("status", [408, 429, 500, 503])
def test_a_passing_failure_is_retried_after_the_back_off(status: int) -> None:
    outbox = _outbox("a")
    assert deliver_due(outbox, _answering(status), AT, rand=lambda: 0.0) == PassReport(claimed=1, retried=1)
    message = _only(outbox)
    assert (message.state, message.next_attempt_at, message.last_error) == (
        MessageState.PENDING, AT + timedelta(seconds=30), f"HTTP {status}")
    assert deliver_due(outbox, _answering(200), AT + timedelta(seconds=29), rand=lambda: 0.0) == PassReport()
    assert deliver_due(outbox, _answering(200), AT + timedelta(seconds=30)) == PassReport(claimed=1, delivered=1)


def test_no_connection_is_retried_and_a_bug_does_not_stop_the_batch() -> None:
    outbox = _outbox("a", "b")

    def post(url: str, body: str, content_type: str, authorization: str | None) -> int:
        if body.endswith("-a"):
            raise Unreachable("connection failed (ConnectionError)")
        raise KeyError(body)  # a bug: its message (here the body) must not be logged or stored

    assert deliver_due(outbox, post, AT) == PassReport(claimed=2, retried=2)
    errors = sorted(m.last_error or "" for m in outbox.messages.values())
    assert errors == ["connection failed (ConnectionError)", "internal error (KeyError)"]


def test_a_message_that_keeps_failing_ends_dead_after_max_attempts() -> None:
    outbox = _outbox("a")
    now, reports = AT, []
    for _ in range(MAX_ATTEMPTS + 5):  # bounded: it must be dead after MAX_ATTEMPTS passes
        reports.append(deliver_due(outbox, _answering(503), now))
        now += timedelta(hours=2)
    message = _only(outbox)
    assert message.state is MessageState.DEAD and message.attempts == MAX_ATTEMPTS
    assert sum(r.retried for r in reports) == MAX_ATTEMPTS - 1 and sum(r.dead for r in reports) == 1
    assert outbox.retry_dead(message.message_id, now)
    assert deliver_due(outbox, _answering(204), now) == PassReport(claimed=1, delivered=1)


def test_logs_name_the_message_but_never_its_token(caplog: pytest.LogCaptureFixture) -> None:
    outbox = _outbox("a", "b", "c")
    answers = iter([200, 400, 503])

    def post(url: str, body: str, content_type: str, authorization: str | None) -> int:
        return next(answers)

    with caplog.at_level(logging.INFO, logger="broker.delivery"):
        deliver_due(outbox, post, AT, rand=lambda: 0.0)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "outbox: backchannel-logout jti=a to permits: delivered",
        "outbox: backchannel-logout jti=b to permits: refused by the receiver: dead letter",
        f"outbox: backchannel-logout jti=c to permits: HTTP 503; attempt 1, next at "
        f"{(AT + timedelta(seconds=30)).isoformat()}",
    ]
    assert [(r.outcome, r.status, r.downstream) for r in caplog.records] == [  # type: ignore[attr-defined]
        ("delivered", 200, "permits"), ("dead", 400, "permits"), ("retried", 503, "permits")]
    assert SECRET not in caplog.text and "permits.example.org" not in caplog.text
