"""What the broker keeps in a browser's session: the handles of its logins in progress and its SSO session.

Each pending handle is recorded in the browser's session as well as in the pending store, so a handle (or an
OAuth ``state``) taken from another browser is refused (login CSRF, RFC 6749 §10.12).
"""

from __future__ import annotations

from flask import current_app, session

from broker.core.ports import SsoSessionRegistry
from broker.core.sessions import SsoSession

MAX_PENDING_PER_BROWSER = 16


def bind(handle: str) -> None:
    handles = [h for h in session.get("pending", []) if h != handle][-(MAX_PENDING_PER_BROWSER - 1):]
    session["pending"] = [*handles, handle]


def unbind(handle: str) -> bool:
    """Remove ``handle`` from this browser's session; ``False`` when this browser never had it."""
    handles = session.get("pending", [])
    if handle not in handles:
        return False
    session["pending"] = [h for h in handles if h != handle]
    return True


def new_browser_session() -> None:
    """Empty this browser's session and give it a new id (at sign-out: nothing of the old session survives, and
    an id observed before is worthless after)."""
    session.clear()
    regenerate = getattr(current_app.session_interface, "regenerate", None)
    if regenerate is not None:
        regenerate(session)


def current_sso() -> SsoSession | None:
    """This browser's SSO session; None when it has none, or when the session registry does not know it or knows
    it as ended ("sign out everywhere" in another browser, the account deleted): one lookup by primary key."""
    raw = session.get("sso")
    if not raw:
        return None
    try:
        sso = SsoSession.from_json(raw)
    except ValueError:  # damaged or from an older version: this browser simply has no SSO session
        session.pop("sso", None)
        return None
    registry = _registry()
    if registry is not None and not registry.is_live(sso.sid):
        session.pop("sso", None)
        return None
    return sso


def _registry() -> SsoSessionRegistry | None:
    """The broker's SSO session registry; None in an app without the broker's services (tests of the decoding
    alone), where there is nothing to ask."""
    wired = current_app.extensions.get("broker")
    found: SsoSessionRegistry | None = getattr(wired, "sso_sessions", None)
    return found
