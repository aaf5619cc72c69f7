"""Several counters of one rate-limit check (``broker.web.ops.limit_counters``, issue 21): in Redis one round
trip for them all, with the results the ``limits`` library gives counter by counter (in memory, and in Redis
when ``BROKER_TEST_REDIS_URL`` is set, in the logical database ``REDIS_DB``)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import RateLimitItem, parse
from limits.storage import RedisStorage

from broker.web.ops.limit_counters import SPEND_IN_ORDER, Counter, first_refused
from tests.web.redis_counting import counting_redis

REDIS_ENV = "BROKER_TEST_REDIS_URL"
REDIS_DB = 14
SHARE, BUDGET = parse("1/hour"), parse("5/hour")


def _redis_url() -> str:
    return os.environ[REDIS_ENV].rsplit("/", 1)[0] + f"/{REDIS_DB}"


@pytest.fixture(params=["memory", *(["redis"] if os.environ.get(REDIS_ENV) else [])])
def limiter(request: pytest.FixtureRequest) -> Iterator[Limiter]:
    url = "memory://"
    if request.param == "redis":
        url = _redis_url()
        try:
            redis.Redis.from_url(url, socket_connect_timeout=3).ping()
        except redis.exceptions.ConnectionError as exc:
            pytest.fail(f"{REDIS_ENV} is set but Redis is unreachable: {exc}", pytrace=False)
    yield Limiter(get_remote_address, app=Flask(__name__), storage_uri=url)


@pytest.fixture
def prefix() -> str:
    return "test-" + secrets.token_hex(8)  # keeps each test's counters apart in a shared Redis


def _remaining(limiter: Limiter, item: RateLimitItem, prefix: str, *ids: str) -> int:
    return int(limiter.limiter.get_window_stats(item, prefix, *ids).remaining)


def test_a_refusal_by_the_first_counter_spends_nothing_of_the_next(limiter: Limiter, prefix: str) -> None:
    counters: list[Counter] = [(SHARE, ("share", "a")), (BUDGET, ("budget",))]

    assert first_refused(limiter, prefix, counters) is None
    assert first_refused(limiter, prefix, counters) == 0

    assert _remaining(limiter, BUDGET, prefix, "budget") == 4  # spent by the first request alone


def test_the_second_counter_can_refuse(limiter: Limiter, prefix: str) -> None:
    counters: list[Counter] = [(BUDGET, ("share", "a")), (SHARE, ("budget",))]

    assert [first_refused(limiter, prefix, counters) for _ in range(3)] == [None, 1, 1]
    assert _remaining(limiter, BUDGET, prefix, "share", "a") == 2  # the first counter was spent each time


def test_counting_on_after_a_refusal_spends_every_counter(limiter: Limiter, prefix: str) -> None:
    counters: list[Counter] = [(SHARE, ("failed",)), (BUDGET, ("other",))]

    assert [first_refused(limiter, prefix, counters, until_refused=False) for _ in range(2)] == [None, 0]
    assert _remaining(limiter, BUDGET, prefix, "other") == 3


def test_looking_spends_nothing(limiter: Limiter, prefix: str) -> None:
    counters: list[Counter] = [(BUDGET, ("a",)), (SHARE, ("b",))]
    assert first_refused(limiter, prefix, counters, hit=False) is None
    first_refused(limiter, prefix, [(SHARE, ("b",))])

    assert [first_refused(limiter, prefix, counters, hit=False) for _ in range(2)] == [1, 1]
    assert _remaining(limiter, BUDGET, prefix, "a") == 5


@pytest.mark.skipif(not os.environ.get(REDIS_ENV), reason=f"needs {REDIS_ENV}")
@pytest.mark.parametrize("hit", [True, False])
def test_in_redis_the_counters_of_a_check_are_one_round_trip(limiter: Limiter, prefix: str, hit: bool,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    if not isinstance(limiter.storage, RedisStorage):
        pytest.skip("the memory store makes no round trips")
    counters: list[Counter] = [(SHARE, ("share", "a")), (BUDGET, ("budget",)), (BUDGET, ("another",))]
    first_refused(limiter, prefix, counters)  # loads the script

    with counting_redis(monkeypatch) as calls:
        first_refused(limiter, prefix, counters, hit=hit)

    assert [t.commands for t in calls.trips] == [("EVALSHA",) if hit else ("MGET",)]


@pytest.mark.skipif(not os.environ.get(REDIS_ENV), reason=f"needs {REDIS_ENV}")
def test_the_script_is_made_once_per_redis_client(limiter: Limiter, prefix: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Every check used to build the script object again (hashing its text); now the client's first check does."""
    if not isinstance(limiter.storage, RedisStorage):
        pytest.skip("the memory store runs no script")
    made: list[str] = []
    register = redis.Redis.register_script

    def counted(self: redis.Redis, script: str) -> Any:
        if script == SPEND_IN_ORDER:  # the library registers its own scripts too
            made.append(script)
        return register(self, script)

    monkeypatch.setattr(redis.Redis, "register_script", counted)
    counters: list[Counter] = [(BUDGET, ("a",)), (BUDGET, ("b",))]

    answers = [first_refused(limiter, prefix, counters) for _ in range(4)]

    assert answers == [None] * 4
    assert len(made) == 1
    other = Limiter(get_remote_address, app=Flask(__name__), storage_uri=_redis_url())
    assert first_refused(other, prefix, counters) is None
    assert len(made) == 2  # another store's client gets its own
