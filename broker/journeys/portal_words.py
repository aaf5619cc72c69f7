"""How the citizen's pages word what the broker holds (issue 20, "jargon goes"): plain names for claims, plain
sentences for yes/no claims ("Your e-mail address was confirmed by Google", never "whether the upstream verified
the e-mail address: True"), and the "Signed in as ... with ..." line every portal page shows.

Every text is an English message id marked ``N_`` (``broker.core.texts``); the templates translate it, with the
provider's display name as ``%(provider)s`` (``account_data.upstream_name``: never an entity id, issuer URL or
internal key). The claim vocabulary's own descriptions (``core.claims``) are written for operators; the ones a
citizen would not understand are named here instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from broker.core.claims import BY_NAME, ClaimValue
from broker.core.factors import PASSKEY_UPSTREAM
from broker.core.profile import merge
from broker.core.sessions import SsoSession
from broker.core.texts import N_
from broker.journeys import account_data
from broker.journeys.context import Journeys

#: citizen names of the claims whose vocabulary description speaks of upstreams or standards
LABELS: Mapping[str, str] = {
    "email_verified": N_("whether your e-mail address was confirmed"),
    "phone_number_verified": N_("whether your telephone number was confirmed"),
    "email_relay": N_("whether your e-mail address is a private relay address"),
    "name": N_("full name"),
    "preferred_username": N_("user name"),
    "person_identifier": N_("personal identity number"),
}
#: a yes/no claim said as a sentence about the provider that asserted it; None: the value means nothing to a
#: citizen and the row is left out (an address that is *not* a relay address)
SENTENCES: Mapping[str, Mapping[bool, str | None]] = {
    "email_verified": {True: N_("Your e-mail address was confirmed by %(provider)s."),
                       False: N_("%(provider)s has not confirmed your e-mail address.")},
    "phone_number_verified": {True: N_("Your telephone number was confirmed by %(provider)s."),
                              False: N_("%(provider)s has not confirmed your telephone number.")},
    "email_relay": {True: N_("Your e-mail address from %(provider)s is a private relay address: it forwards mail "
                             "to your own address."),
                    False: None},
}


def label(claim: str) -> str:
    """The citizen's name of ``claim`` (a message id): ``LABELS``, else the vocabulary's description."""
    known = BY_NAME.get(claim)
    return LABELS.get(claim) or (known.description if known is not None else claim)


def shown_value(value: ClaimValue) -> str:
    """A value as text: a list joined, an address by its formatted form or its parts, never a dict's repr."""
    if isinstance(value, tuple):
        return ", ".join(value)
    if isinstance(value, Mapping):
        return str(value.get("formatted") or ", ".join(str(v) for v in value.values() if v))
    return str(value)


@dataclass(frozen=True)
class SignedInAs:
    """Whom this browser's session is signed in as, for the portal's pages: the person's name (or e-mail address;
    None when the account holds neither, never an id) and the sign-in method by its display name."""

    name: str | None
    method: str
    passkey: bool = False


def signed_in_as(j: Journeys, sso: SsoSession) -> SignedInAs:
    """The name from the account's unified profile (``core.profile.merge`` under the operator's rules): its
    ``name``, else given and family name, else its e-mail address; the method the session signed in with."""
    claims = merge(j.accounts.identity_claims(sso.account_id), j.settings.profile).claims()
    full = " ".join(filter(None, (_text(claims, "given_name"), _text(claims, "family_name"))))
    name = _text(claims, "name") or full or _text(claims, "email")
    return SignedInAs(name, account_data.upstream_name(j, sso.upstream), sso.upstream == PASSKEY_UPSTREAM)


def _text(claims: Mapping[str, ClaimValue], name: str) -> str | None:
    value = claims.get(name)
    return " ".join(value.split()) or None if isinstance(value, str) else None
