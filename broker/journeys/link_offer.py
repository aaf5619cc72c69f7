"""First sign-in with a new upstream whose verified e-mail address matches an existing account (issue 5,
linking flow 2; hardened in issue 15, point 1).

The broker never merges on an address: that is how pre-account takeover works (an attacker registers the
victim's address first at a provider that does not verify it, or changes an account's address). It may offer
instead: "this looks like your account: sign in with <the provider you used before> to link". Four rules make
the offer something no attacker can steer, even one who controls an identity at one upstream that asserts
``email_verified`` for addresses it does not own, or that signs a browser in silently:

1. **Both addresses must come from upstreams the operator trusts for e-mail** (``[linking] email_authoritative``):
   the earlier identity's, or an attacker who signed up first at a careless provider would be offered the
   victim's sign-in; and the new one's, or the offer page would tell anyone who can assert an address which
   provider holds an account for it (an oracle: issue 15, point 8).
2. **The proof is a fresh sign-in** at the earlier upstream: ``prompt=login`` with ``max_age=0`` (OIDC Core
   §3.1.2.1; the ID token's ``auth_time`` is checked) or ``ForceAuthn`` (SAML Core §3.4.1; the AuthnInstant is
   checked). An upstream that cannot show it (GitHub's OAuth) is never offered as the proof; the adapter
   refuses a proof that was not asked as a fresh sign-in (``fresh_required``).
3. **The person confirms** after the proof, on a page naming both sign-in methods, with "keep separate" first
   and focused (``link_confirm.html``).
4. **The offer belongs to the browser and its SSO session**: single-use handles bound to this browser, and the
   browser's SSO session (or its absence) must be the one the offer was made in, so an offer left open in a
   shared browser does not survive someone else's sign-in or sign-out.

Automatic linking exists only for upstream pairs the operator lists in ``[linking] auto_link_by_email``, with
both upstreams in ``email_authoritative``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from broker.core import errors
from broker.core.audit import AuditKind
from broker.core.model import LinkedIdentity, LoginRequest, Protocol, UpstreamIdentity, UpstreamParty
from broker.core.outcomes import Outcome, Page, PostForm, Redirect
from broker.core.pending_records import (
    LinkOffer,
    LinkOfferConfirm,
    LinkOfferOidc,
    LinkOfferSaml,
    put_record,
    put_record_with_handle,
)
from broker.core.ports import LinkOutcome
from broker.core.protocol_ports import UpstreamAdapter, VerifiedAnswer
from broker.core.texts import N_
from broker.journeys.context import Browser, DownstreamFailure, Journeys
from broker.journeys.handles import take_bound

OFFER_LIFETIME = timedelta(minutes=10)
#: the record an offer waits in while the earlier upstream answers, by its protocol (their kinds are stored)
AT_UPSTREAM = {Protocol.OIDC: LinkOfferOidc, Protocol.SAML: LinkOfferSaml}


def _candidates(j: Journeys, identity: UpstreamIdentity) -> list[LinkedIdentity]:
    email = identity.linkable_email
    if email is None or j.accounts.find_by_identity(identity.issuer, identity.subject) is not None:
        return []
    return [o for o in j.accounts.verified_email_owners(email)
            if (o.issuer, o.subject) != (identity.issuer, identity.subject)]


def _can_prove(j: Journeys, name: str) -> bool:
    """``name`` is an upstream whose answer shows a fresh sign-in (rule 2)."""
    adapter = j.upstream_adapter(name)
    return adapter is not None and adapter.proves_fresh_sign_in(name)


def _sso_sid(j: Journeys, browser: Browser) -> str:
    """The SSO session this browser has now ("" for none): an offer is valid only while it stays the same."""
    sso = browser.sso()
    return sso.sid if sso is not None and j.now() < sso.expires_at else ""


def consider(j: Journeys, browser: Browser, login: LoginRequest, identity: UpstreamIdentity,
             now: datetime) -> Page | None:
    """Before a first sign-in completes: the offer page, an automatic link, or None (sign in as usual)."""
    authoritative = j.settings.email_authoritative
    if identity.upstream not in authoritative:
        return None  # rule 1: an address from an upstream not trusted for e-mail matches nothing
    owners = [o for o in _candidates(j, identity) if o.upstream in authoritative]
    accounts = sorted({o.account_id for o in owners})
    if len(accounts) != 1:
        return None  # none, or the address is on several accounts: suggesting one of them would be a guess
    if any((identity.upstream, o.upstream) in j.settings.auto_link_by_email for o in owners):
        if j.accounts.link_identity(accounts[0], identity, now) is LinkOutcome.LINKED:
            j.audit(AuditKind.LINKED, account_id=accounts[0], upstream=identity.upstream,
                    reason="automatic: verified e-mail, configured upstream pair")
        return None
    provers = sorted({o.upstream for o in owners if _can_prove(j, o.upstream)})
    if not provers:
        return None  # rule 2: no upstream of that account can show a fresh sign-in
    offer = LinkOffer(login=login, identity=identity, account=accounts[0], upstreams=tuple(provers),
                      sso=_sso_sid(j, browser))
    handle = put_record(j.pending, offer, now + OFFER_LIFETIME)
    browser.bind(handle)
    previous = [u for u in (j.registry.upstream(n) for n in provers) if u]
    return Page("link_offer.html", {"handle": handle, "previous": previous,
                                    "new": j.registry.upstream(identity.upstream)})


def _same_sso(j: Journeys, browser: Browser, offer: LinkOffer) -> None:
    """Rule 4: the browser's SSO session is still the one the offer was made in."""
    if offer.sso != _sso_sid(j, browser):
        raise DownstreamFailure(errors.LoginStateInvalid(
            N_("Someone signed in or out in this browser since this page was shown, so nothing was linked. Please "
               "start again from the application."), detail="link offer used after the SSO session changed"),
            offer.login)


def _take(j: Journeys, browser: Browser, handle: str) -> LinkOffer:
    offer = take_bound(j, browser, LinkOffer, handle, "link offer")
    _same_sso(j, browser, offer)
    return offer


def _continue_login(j: Journeys, browser: Browser, offer: LinkOffer) -> Outcome:
    from broker.journeys import login  # login imports this module (``consider``): import at call time

    return login.sign_in(j, browser, offer.login, VerifiedAnswer(offer.identity), j.now())


def separate(j: Journeys, browser: Browser, handle: str) -> Outcome:
    """The person wants a separate account: the first sign-in completes as if nothing matched."""
    return _continue_login(j, browser, _take(j, browser, handle))


def prove(j: Journeys, browser: Browser, handle: str, name: str) -> Redirect | PostForm:
    """Go to the previous provider, which must sign the person in again; its answer must name an identity of the
    offered account."""
    now = j.now()
    offer = _take(j, browser, handle)
    adapter = j.upstream_adapter(name)
    if adapter is None or name not in offer.upstreams:
        raise DownstreamFailure(errors.UnknownUpstream(detail=f"{name!r:.200} is not an offered upstream"),
                                offer.login)
    try:
        started = adapter.begin(name, now, None, reauthenticate=True)
    except errors.BrokerError as exc:
        raise DownstreamFailure(exc, offer.login) from exc
    record = AT_UPSTREAM[adapter.protocol](offer=offer, upstream=started.pending)
    put_record_with_handle(j.pending, started.handle, record, now + OFFER_LIFETIME)
    browser.bind(started.handle)
    return started.outgoing


def answered(j: Journeys, browser: Browser, offer: LinkOffer, adapter: UpstreamAdapter, pending: str,
             reply: Mapping[str, str], arrived_at: str | None) -> Outcome:
    """The previous provider's answer: if it names an identity of the offered account, ask the person to
    confirm (rule 3)."""
    now = j.now()
    try:
        with j.observer.step("upstream_verify"):
            proven = adapter.finish(pending, reply, now, arrived_at=arrived_at, fresh_required=True).identity
        account = j.accounts.find_by_identity(proven.issuer, proven.subject)
        if account is None or account.account_id != offer.account:
            raise errors.LoginStateInvalid(N_("You signed in with an account that is not the one we suggested, so "
                                              "nothing was linked. Please start again from the application."),
                                           detail="link offer proven by an identity of another account")
    except errors.BrokerError as exc:
        raise DownstreamFailure(exc, offer.login) from exc
    _same_sso(j, browser, offer)
    handle = put_record(j.pending, LinkOfferConfirm(offer=offer, proven_with=proven.upstream), now + OFFER_LIFETIME)
    browser.bind(handle)
    return confirmation_page(handle, new=_party(j, offer.identity.upstream), existing=_party(j, proven.upstream),
                             answered_as=proven, offer=True)


def confirmation_page(handle: str, *, new: UpstreamParty | str, existing: UpstreamParty | str | None,
                      answered_as: UpstreamIdentity, offer: bool) -> Page:
    """The confirmation after every link proof (issue 15, points 1 and 6): before a second sign-in method joins
    an account, the person sees both methods named, and which account of the new method answered, and chooses.
    "Keep separate" (or "cancel" in the portal) comes first and has the focus, so a person who did not start
    this (an attacker's journey tossed into their browser, an offer left open on a shared computer) does not
    link by pressing Enter or the first button. ``existing`` is None in the portal (signed in already)."""
    return Page("link_confirm.html", {"handle": handle, "new": _name(new),
                                      "existing": _name(existing) if existing else None,
                                      "shown_as": shown_as(answered_as), "offer": offer}, no_store=True)


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


def _party(j: Journeys, name: str) -> UpstreamParty | str:
    return j.registry.upstream(name) or name


def _take_confirmation(j: Journeys, browser: Browser, handle: str) -> LinkOfferConfirm:
    stored = take_bound(j, browser, LinkOfferConfirm, handle, "link confirmation")
    _same_sso(j, browser, stored.offer)
    return stored


def confirm(j: Journeys, browser: Browser, handle: str) -> Outcome:
    """The person confirmed: link the new identity to the proven account and let the login continue."""
    stored = _take_confirmation(j, browser, handle)
    offer, new = stored.offer, stored.offer.identity
    outcome = j.accounts.link_identity(offer.account, new, j.now())
    if outcome is LinkOutcome.CONFLICT:  # linked elsewhere meanwhile: never moved
        raise DownstreamFailure(errors.LoginStateInvalid(detail="offered identity linked elsewhere meanwhile"),
                                offer.login)
    j.audit(AuditKind.LINKED, account_id=offer.account, upstream=new.upstream,
            reason=f"link offer proven with {stored.proven_with} and confirmed")
    return _continue_login(j, browser, offer)  # the login continues for the app that started it


def keep_separate(j: Journeys, browser: Browser, handle: str) -> Outcome:
    """After the proof, the person keeps the two apart: the new identity signs in to an account of its own."""
    return _continue_login(j, browser, _take_confirmation(j, browser, handle).offer)
