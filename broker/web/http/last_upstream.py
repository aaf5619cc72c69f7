"""The discovery page remembers the citizen's last choice on this device and lists it first (issue 20).

A cookie holds only the chosen upstream's public name (the one in the page's own URLs, e.g. ``google``): no
account, no identifier, nothing personal. ``SameSite=Lax`` (RFC 6265bis §5.4.7), ``Secure`` over https,
``HttpOnly``. What the cookie says is untrusted: it only reorders the upstreams the app may use anyway, and a
value naming none of them is ignored.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol, TypeVar

from flask import current_app, request
from werkzeug.wrappers import Response

COOKIE = "broker_last_upstream"
MAX_AGE = 180 * 24 * 3600
_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


class Named(Protocol):
    @property
    def name(self) -> str: ...


T = TypeVar("T", bound=Named)


def remember(response: Response, name: str) -> Response:
    """Set the cookie to ``name`` on ``response`` (the redirect upstream after the citizen chose it)."""
    if _NAME.fullmatch(name):
        response.set_cookie(COOKIE, name, max_age=MAX_AGE, path="/", samesite="Lax", httponly=True,
                            secure=bool(current_app.config.get("BROKER_HTTPS")))
    return response


def last_used() -> str | None:
    """The name the cookie holds, if it looks like an upstream's name."""
    value = request.cookies.get(COOKIE, "")
    return value if _NAME.fullmatch(value) else None


def first_last_used(upstreams: Sequence[T]) -> tuple[tuple[T, ...], str | None]:
    """``upstreams`` with the last used one first, and its name; unchanged (and None) when the cookie names
    none of them."""
    name = last_used()
    chosen = [u for u in upstreams if u.name == name]
    if not chosen:
        return tuple(upstreams), None
    return (chosen[0], *(u for u in upstreams if u.name != name)), name
