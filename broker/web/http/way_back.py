"""Which app an error page leads back to (issue 20, "Dead ends"): the app of this request's login, if known.

While a login waits, its record names the app (``broker.journeys.way_back.waiting``). Once the login is done its
record is gone, yet the browser may come back to the same address: Back to the consent page, or to the upstream's
callback, which is refused as a replay. So the views that carry a login's handle remember, in this browser's own
server-side session, which app that handle belonged to (its name and registered origin, never anything the
request said). A later request that carries the same handle (in the path, ``state`` or ``RelayState``) finds it
there. A handle this browser never held finds nothing, so a tampered ``RelayState`` or ``state`` can never choose
the link: the page then offers the citizen's account and the home page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping

from flask import g, request, session
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from broker.journeys import way_back
from broker.journeys.way_back import WayBack
from broker.web.http.journey_context import FlaskBrowser
from broker.web.services import services

log = logging.getLogger(__name__)
#: the browser's session key of the handles it remembers, newest last
MEMORY_KEY = "way_back"
REMEMBERED = 8


def note(handle: str) -> WayBack | None:
    """The app of the login under ``handle`` (still waiting, or remembered), kept for this request's error page
    and remembered for later requests with the same handle."""
    found = _waiting_or_remembered(handle)
    if found is not None:
        g.way_back = found
        remember(handle, found)
    return found


def through(handle: str, respond: Callable[[], Response]) -> Response:
    """``respond()`` for a request that carries ``handle`` (an upstream's callback): its app noted before, and
    remembered again after, since a sign-in gives the browser a new session (``Browser.renew``), error or not."""
    found = note(handle)
    try:
        return respond()
    finally:
        if found is not None:
            remember(handle, found)


def remember(handle: str, found: WayBack) -> None:
    """Remember ``handle``'s app in this browser's session (after a sign-in gave the session a new id, too)."""
    kept = [entry for entry in _entries() if entry[0] != handle][-(REMEMBERED - 1):]
    session[MEMORY_KEY] = [*kept, [handle, found.app_name, found.url]]


def remembered(handle: str) -> WayBack | None:
    return next((WayBack(name, url) for key, name, url in _entries() if key == handle), None)


def current() -> WayBack | None:
    """The app of this request's login: noted by its view, else found for a handle the request carries."""
    noted = g.get("way_back")
    if isinstance(noted, WayBack):
        return noted
    return next((found for handle in _request_handles() if (found := _waiting_or_remembered(handle)) is not None),
                None)


def _waiting_or_remembered(handle: str) -> WayBack | None:
    """A login still waiting under ``handle`` (looked up only when this browser holds it), else the memory. An
    error page must render even when the pending store is what failed: then the memory alone answers."""
    try:
        found = way_back.waiting(services().journeys, FlaskBrowser(), handle)
    except Exception:  # the page that reports a failure must not fail on it again
        log.warning("way back: the pending store could not be read", exc_info=True)
        found = None
    return found or remembered(handle)


def _request_handles() -> Iterator[str]:
    """The handles a request may carry: a path's ``<handle>``, an OAuth ``state``, a SAML ``RelayState``; used only
    as keys into this browser's own memory. A body the request may not be read for (too large, malformed: the very
    error this page reports) is left unread, so only the path and the query are looked at then."""
    values: Mapping[str, str]
    try:
        values = request.values
    except HTTPException:
        values = request.args
    for value in ((request.view_args or {}).get("handle"), values.get("state"), values.get("RelayState")):
        if isinstance(value, str) and value:
            yield value


def _entries() -> list[tuple[str, str, str]]:
    raw = session.get(MEMORY_KEY, [])
    if not isinstance(raw, list):
        return []
    return [(e[0], e[1], e[2]) for e in raw
            if isinstance(e, list) and len(e) == 3 and all(isinstance(part, str) for part in e)]
