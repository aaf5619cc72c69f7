"""Loaded ``xmlsec`` keys for the in-process signature backend (``broker.saml.xmlsec_backend``), kept in a small LRU.

Loading a PEM key costs more than an RSA signature; the backend keys the cache by file identity (private keys) or by
content (certificates, which pysaml2 writes to a new temporary file for every check).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

import xmlsec
from saml2.sigver import SignatureError


class KeyCache:
    """Thread-safe LRU of loaded keys. Sharing is safe: setting ``ctx.key`` duplicates the native key."""

    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._keys: OrderedDict[tuple[object, ...], xmlsec.Key] = OrderedDict()

    def get(self, cache_key: tuple[object, ...], load: Callable[[], xmlsec.Key]) -> xmlsec.Key:
        with self._lock:
            key = self._keys.get(cache_key)
            if key is not None:
                self._keys.move_to_end(cache_key)
                return key
        key = load()  # outside the lock; two threads loading the same key on a miss is harmless
        with self._lock:
            self._keys[cache_key] = key
            while len(self._keys) > self._size:
                self._keys.popitem(last=False)
        return key


def load_key(source: str, data: bytes, fmt: int) -> xmlsec.Key:
    """``data`` as an xmlsec key; ``SignatureError`` naming ``source`` when it holds none."""
    try:
        return xmlsec.Key.from_memory(data, fmt)
    except xmlsec.Error as exc:
        raise SignatureError(f"{source!r} does not hold a usable key or certificate: {exc}") from exc


def read_file(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise SignatureError(f"cannot read {path!r}: {exc}") from exc
