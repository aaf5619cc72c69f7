"""The way back to the app that sent the citizen, for pages that end or interrupt a login (issue 20, "Dead ends").

An error page, the "already answered" page and the "you declined" page offer a link back to the app. Its address is
never taken from the request: it is the origin of the login's return address (``LoginRequest.return_to``), which
the downstream adapter already checked against the app's registration (the SAML AssertionConsumerService URL from
its metadata, the OIDC ``redirect_uri`` registered for the client, RFC 6749 §3.1.2.2), and its name is the one
the registry shows. Only http and https origins are offered: a native app's private-use scheme
(RFC 8252 §7.1) is not a page a browser can go back to.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from broker.core import errors, flow
from broker.core.factor_records import StepUp
from broker.core.model import LoginRequest, Protocol
from broker.core.pending_records import (
    LinkOffer,
    LinkOfferOidc,
    LinkOfferSaml,
    LoginAtConsent,
    LoginAtDiscovery,
    LoginAtOidcUpstream,
    LoginAtSamlUpstream,
    PendingRecord,
    decode,
)
from broker.journeys.context import Browser, Journeys

#: the records a login waits in while this browser holds their handle: discovery, upstream, consent, a second
#: factor, a link offer (at its page, or proving at an upstream)
_WAITING: tuple[type[PendingRecord], ...] = (
    LoginAtConsent, LoginAtDiscovery, LoginAtOidcUpstream, LoginAtSamlUpstream, StepUp, LinkOffer, LinkOfferOidc,
    LinkOfferSaml)


@dataclass(frozen=True)
class WayBack:
    """The app a login came from, as a page may link it: its display name and its registered origin."""

    app_name: str
    url: str


def registered_origin(return_to: str) -> str | None:
    """The origin (RFC 6454 §4) of a checked return address, with a trailing "/"; None for anything but http(s)."""
    parts = urlsplit(return_to)
    if parts.scheme not in ("https", "http") or not parts.netloc or "@" in parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}/"


def for_login(j: Journeys, login: LoginRequest) -> WayBack | None:
    """The way back to the app of ``login``; None for the broker's own portal, an app gone from the registry, or
    a return address that is no web page."""
    if login.protocol is Protocol.PORTAL:
        return None
    url = registered_origin(login.return_to)
    if url is None:
        return None
    try:
        party = flow.party_for(j.registry, login)
    except errors.BrokerError:  # the app was removed while the citizen was away
        return None
    return WayBack(party.display_name, url)


def waiting(j: Journeys, browser: Browser, handle: str) -> WayBack | None:
    """The way back for the login this browser holds under ``handle``, which stays stored (a look, not a take);
    None when this browser does not hold it or no login waits under it."""
    if not handle or not browser.holds(handle):
        return None
    stored = j.pending.peek_many([cls.KIND for cls in _WAITING], handle, j.now())  # one round trip for them all
    for cls in _WAITING:
        text = stored.get(cls.KIND)
        if text is None:
            continue
        try:
            record = decode(cls, text)
        except errors.LoginStateInvalid:
            continue
        login = _login_of(record)
        if login is not None:
            return for_login(j, login)
    return None


def _login_of(record: PendingRecord | None) -> LoginRequest | None:
    found = getattr(record, "login", None)
    if isinstance(found, LoginRequest):
        return found
    offer = getattr(record, "offer", None)  # a link offer proving at an upstream
    return offer.login if isinstance(offer, LinkOffer) else None
