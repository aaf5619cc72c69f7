"""Where an upstream's answer goes: every answer carries back a handle (an OAuth ``state``, a SAML
``RelayState``), and the record stored under it says whose it is — a login, a link offer's proof, or a link
from the portal. Each kind is taken only by its own journey, so one journey's state can never complete
another's. A handle this browser does not hold is never even looked up (RFC 6749 §10.12, login CSRF); an
answer with no waiting record is unsolicited (``UpstreamAdapter.finish_unsolicited``).
"""

from __future__ import annotations

from collections.abc import Mapping

from broker.core.model import Protocol
from broker.core.outcomes import Outcome
from broker.core.pending_records import take_record
from broker.journeys import link_offer, login, portal_links
from broker.journeys.context import Browser, Journeys


def upstream_answer(j: Journeys, browser: Browser, protocol: Protocol, handle: str, reply: Mapping[str, str],
                    arrived_at: str | None = None) -> Outcome:
    """The answer of an upstream of ``protocol``; ``arrived_at`` names the upstream whose endpoint received it,
    for protocols with one endpoint per upstream (the adapter refuses a mix-up)."""
    now = j.now()
    adapter = j.adapter_for(protocol)
    if handle and browser.holds(handle):
        # the handle stays this browser's until a record of this protocol is found under it: a stray post of
        # it to the other protocol's endpoint must not strand the journey it belongs to
        if (waiting := take_record(j.pending, login.AT_UPSTREAM[protocol], handle, now)) is not None:
            browser.unbind(handle)
            return login.after_upstream(j, browser, waiting.login, adapter, waiting.upstream, reply, arrived_at, now)
        if (link := take_record(j.pending, portal_links.AT_UPSTREAM[protocol], handle, now)) is not None:
            browser.unbind(handle)
            return portal_links.answered(j, browser, link.proof, adapter, link.upstream, reply, arrived_at)
        if (proof := take_record(j.pending, link_offer.AT_UPSTREAM[protocol], handle, now)) is not None:
            browser.unbind(handle)
            return link_offer.answered(j, browser, proof.offer, adapter, proof.upstream, reply, arrived_at)
    return login.unsolicited(j, browser, adapter, reply, now)
