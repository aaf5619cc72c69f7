"""The back-off after wrong code answers (``broker.core.backoff``; issue 17): free answers, doubling waits, the cap,
the window, account and address limits, and the wait in words. Times are relative to an arbitrary instant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from broker.core.backoff import ACCOUNT, ADDRESS, Backoff, Failures, Refusal, in_words, refusal

NOW = datetime.now(UTC).replace(microsecond=0)
WINDOW = timedelta(minutes=60)
S, M, H = timedelta(seconds=1), timedelta(minutes=1), timedelta(hours=1)


@pytest.mark.parametrize(("policy", "failures", "wait"), [
    (ACCOUNT, 0, 0 * S), (ACCOUNT, 4, 0 * S), (ACCOUNT, 5, 30 * S), (ACCOUNT, 6, 1 * M), (ACCOUNT, 7, 2 * M),
    (ACCOUNT, 11, 32 * M), (ACCOUNT, 12, 1 * H), (ACCOUNT, 13, 1 * H), (ACCOUNT, 10**6, 1 * H),
    (ADDRESS, 19, 0 * S), (ADDRESS, 20, 30 * S), (ADDRESS, 21, 1 * M), (ADDRESS, 27, 1 * H),
    (Backoff(free=0, first=10 * S, cap=15 * S), 0, 10 * S), (Backoff(free=0, first=10 * S, cap=15 * S), 1, 15 * S),
])
def test_the_wait_doubles_after_the_free_answers_up_to_the_cap(policy: Backoff, failures: int,
                                                                wait: timedelta) -> None:
    assert policy.wait(failures) == wait


@pytest.mark.parametrize(("failures", "until"), [
    (Failures(), None),
    (Failures(4, NOW), None),
    (Failures(5, NOW - 10 * S), NOW + 20 * S),  # counted from the latest wrong answer
    (Failures(7, NOW - 5 * M), NOW - 3 * M),  # a wait already over
])
def test_refused_until_counts_from_the_latest(failures: Failures, until: datetime | None) -> None:
    assert ACCOUNT.refused_until(failures) == until


@pytest.mark.parametrize(("times", "expected"), [
    ([], Failures()),
    ([NOW - 1 * M, NOW - 30 * M, NOW - 59 * M], Failures(3, NOW - 1 * M)),
    ([NOW - 61 * M, NOW - 2 * H, NOW - 5 * M], Failures(1, NOW - 5 * M)),  # only the window counts
    ([NOW - 60 * M], Failures(1, NOW - 60 * M)),  # its edge included
])
def test_failures_count_only_the_window(times: list[datetime], expected: Failures) -> None:
    assert Failures.of(times, NOW, WINDOW) == expected


@pytest.mark.parametrize(("account", "address", "expected"), [
    (Failures(), Failures(), None),
    (Failures(4, NOW), Failures(19, NOW), None),  # both under their free answers
    (Failures(5, NOW), Failures(5, NOW), Refusal("account", NOW + 30 * S)),
    (Failures(1, NOW), Failures(20, NOW), Refusal("address", NOW + 30 * S)),  # one guess over many accounts
    (Failures(6, NOW), Failures(22, NOW), Refusal("address", NOW + 2 * M)),  # the later of the two
    (Failures(6, NOW - 2 * M), Failures(0), None),  # the minute is over
])
def test_an_answer_is_refused_by_the_account_or_the_address(account: Failures, address: Failures,
                                                            expected: Refusal | None) -> None:
    assert refusal(account, address, NOW) == expected


@pytest.mark.parametrize(("wait", "words"), [
    (timedelta(milliseconds=10), "in 1 second"), (29.2 * S, "in 30 seconds"), (59 * S, "in 59 seconds"),
    (60 * S, "in 1 minute"), (61 * S, "in 2 minutes"), (2 * M, "in 2 minutes"), (59 * M, "in 59 minutes"),
    (1 * H, "in 1 hour"), (90 * M, "in 90 minutes"), (2 * H, "in 2 hours"),
])
def test_the_wait_in_words(wait: timedelta, words: str) -> None:
    assert in_words(wait) == words


@pytest.mark.parametrize(("policy", "first_hour", "per_hour"), [(ACCOUNT, 11, (7, 8)), (ADDRESS, 26, (17, 19))])
def test_a_script_guessing_as_fast_as_allowed(policy: Backoff, first_hour: int, per_hour: tuple[int, int]) -> None:
    """The numbers the module docstring gives: guesses in the first hour, then per hour over a day."""
    at, times = NOW, list[datetime]()
    while at < NOW + 25 * H:
        until = policy.refused_until(Failures.of(times, at, WINDOW))
        if until is None or until <= at:
            times.append(at)
            at += S
        else:
            at = until
    assert sum(1 for t in times if t < NOW + H) == first_hour
    later = sum(1 for t in times if NOW + H <= t < NOW + 25 * H) / 24
    assert per_hour[0] <= later <= per_hour[1]
