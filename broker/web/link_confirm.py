"""The confirmation after every link proof (issue 15, points 1 and 6): before a second sign-in method joins an
account, the person sees both methods named, and which account of the new method answered, and chooses. "Keep
separate" (or "cancel" in the portal) comes first and has the focus, so a person who did not start this (an
attacker's journey tossed into their browser, an offer left open on a shared computer) does not link by
pressing Enter or the first button.

The page is a pair of CSRF-protected forms posting to single-use handles bound to this browser; the journeys
(``broker.web.link_offer``, ``broker.web.linking``) keep what is to be linked server-side until then.
"""

from __future__ import annotations

from flask import render_template
from werkzeug.wrappers import Response

from broker.core.model import UpstreamIdentity, UpstreamParty


def shown_as(identity: UpstreamIdentity) -> str | None:
    """How the provider's account that answered is named to the person: its name and e-mail address (or user
    name), as the provider asserted them, so that an account that is not theirs stands out."""
    def claim(name: str) -> str:
        value = identity.claims.get(name)
        return value.strip()[:120] if isinstance(value, str) else ""

    name = claim("name") or " ".join(p for p in (claim("given_name"), claim("family_name")) if p)
    address = claim("email") or claim("preferred_username")
    if name and address:
        return f"{name} ({address})"
    return name or address or None


def _name(party: UpstreamParty | str) -> str:
    return party.display_name if isinstance(party, UpstreamParty) else party


def page(*, new: UpstreamParty | str, existing: UpstreamParty | str | None, shown_as: str | None, link_url: str,
         keep_url: str, offer: bool) -> Response:
    """The confirmation page: ``new`` is the method about to be linked (its account ``shown_as``), ``existing``
    the one the person proved (None in the portal, where they are signed in already)."""
    html = render_template("link_confirm.html", new=_name(new), existing=_name(existing) if existing else None,
                           shown_as=shown_as, link_url=link_url, keep_url=keep_url, offer=offer)
    return Response(html, mimetype="text/html", headers={"Cache-Control": "no-store"})
