"""Several rate-limit counters of one request in one Redis round trip (issue 21).

``broker.web.ops.limits`` checks some requests against more than one counter: an address's share of a shared
budget, then the budget (``_spend_shared``); a client's failed authentications, then its budget
(``check_client``). The ``limits`` library checks one counter per call, each a round trip to Redis; here the
counters of one check go together:

- spending (``hit``) is one Lua script that does for each counter in order what the library's fixed window does
  for one (``limits/resources/redis/lua_scripts/incr_expire.lua``: INCRBY, and EXPIRE when the counter was just
  created), and stops at the first counter over its amount, so a refusal by an address's share spends nothing
  of the budget after it, as before;
- looking (``hit=False``) is one MGET, compared as the library's ``FixedWindowRateLimiter.test`` does.

The script object (its SHA-1, for ``EVALSHA``) is made once per Redis client and kept (``_spender``), not again for
every check.

With any other store (memory, a Redis cluster whose keys may live on different nodes) or strategy, the counters
are checked one by one through the library, with the same result.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

from flask_limiter import Limiter
from limits import RateLimitItem
from limits.storage import RedisClusterStorage, RedisStorage
from limits.strategies import FixedWindowRateLimiter
from redis.commands.core import Script

#: one counter of a check: its limit and the identifiers of its key (``RateLimitItem.key_for``)
Counter = tuple[RateLimitItem, tuple[str, ...]]

#: KEYS: the counters, in order. ARGV[1]: 1 to stop at the first counter over its amount, 0 to spend them all;
#: then each counter's expiry (seconds) and amount. Returns the 1-based index of the first counter over its
#: amount, 0 when none is.
SPEND_IN_ORDER = """
local refused = 0
for i, key in ipairs(KEYS) do
    local current = redis.call("incrby", key, 1)
    if current == 1 then
        redis.call("expire", key, ARGV[2 * i])
    end
    if refused == 0 and current > tonumber(ARGV[2 * i + 1]) then
        refused = i
        if ARGV[1] == "1" then
            return refused
        end
    end
end
return refused
"""

#: ``SPEND_IN_ORDER`` registered with each Redis client the limiter writes through (one per store), kept while the
#: client lives; two threads racing to make the first only make two equal scripts
_SPENDERS: weakref.WeakKeyDictionary[Any, Script] = weakref.WeakKeyDictionary()


def _redis(limiter: Limiter) -> RedisStorage | None:
    """The limiter's store when its counters can be handled here: plain (or Sentinel) Redis, fixed windows."""
    strategy: Any = limiter.limiter
    storage = strategy.storage
    if (isinstance(storage, RedisStorage) and not isinstance(storage, RedisClusterStorage)
            and isinstance(strategy, FixedWindowRateLimiter)):
        return storage
    return None


def first_refused(limiter: Limiter, prefix: str, counters: Sequence[Counter], *, hit: bool = True,
                  until_refused: bool = True) -> int | None:
    """Spend one of each counter in order (``hit=False``: only look), stopping at the first one over its amount
    unless ``until_refused`` is False; the index of the first refused counter, None when all allowed it."""
    if not counters:
        return None
    storage = _redis(limiter)
    if storage is None:
        return _one_by_one(limiter, prefix, counters, hit, until_refused)
    keys = [storage.prefixed_key(item.key_for(prefix, *ids)) for item, ids in counters]
    if not hit:
        reader: Any = storage.get_connection(True)  # a redis.Redis; limits types it by a narrower protocol
        values = reader.mget(keys)
        found = [i for i, ((item, _), value) in enumerate(zip(counters, values, strict=True))
                 if int(value or 0) >= item.amount]
        return found[0] if found else None
    args: list[int | str] = ["1" if until_refused else "0"]
    for item, _ in counters:
        args += [item.get_expiry(), item.amount]
    index = int(_spender(storage.get_connection())(keys, args))
    return index - 1 if index else None


def _spender(writer: Any) -> Script:
    """``SPEND_IN_ORDER`` as a script of ``writer`` (a ``redis.Redis``; ``limits`` types it by a narrower
    protocol): made the first time, then the same one. It runs by ``EVALSHA`` and loads itself on ``NOSCRIPT``."""
    script = _SPENDERS.get(writer)
    if script is None:
        script = _SPENDERS[writer] = writer.register_script(SPEND_IN_ORDER)
    return script


def _one_by_one(limiter: Limiter, prefix: str, counters: Sequence[Counter], hit: bool,
                until_refused: bool) -> int | None:
    strategy: Any = limiter.limiter
    refused: int | None = None
    for index, (item, ids) in enumerate(counters):
        allowed = bool((strategy.hit if hit else strategy.test)(item, prefix, *ids))
        if not allowed and refused is None:
            refused = index
            if until_refused:
                break
    return refused
