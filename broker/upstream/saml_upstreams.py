"""The upstream SAML IdPs as one ``UpstreamAdapter`` (``broker.core.protocol_ports``): the broker's SP role.

``begin`` is a signed AuthnRequest (Redirect or POST binding) whose RelayState is the handle the journey keeps
the request under. ``finish`` verifies the IdP's Response at the Assertion Consumer Service
(``saml_response.verify_response``: signature, InResponseTo, audience, recipient, conditions, decryption),
maps a non-Success status to the error the app hears (SAML Core §3.2.2.2), and accepts each assertion ID once
on every instance until the assertion expires (SAML Profiles §4.1.4.5, through the shared pending store). An
answer no request is waiting for is accepted only from an IdP registered with ``allow_unsolicited`` (SAML
Profiles §4.1.5, IdP-initiated SSO).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from datetime import datetime

from broker.core import errors
from broker.core.model import LoginRequest, Protocol
from broker.core.outcomes import PostForm, Redirect
from broker.core.pending_kinds import Kind
from broker.core.ports import PendingStore
from broker.core.protocol_ports import UpstreamAdapter, UpstreamStart, VerifiedAnswer
from broker.core.replay import first_use
from broker.upstream import saml_response
from broker.upstream.saml_identity import identity_from
from broker.upstream.saml_model import ResponseRefused, UpstreamStatus, VerifiedAssertion
from broker.upstream.saml_settings import SamlPending, UpstreamIdp
from broker.upstream.saml_slo import STATE_KEYS
from broker.upstream.saml_sp import SamlSp
from broker.upstream.saml_structure import StructureError, parse_document

_STATUS = "urn:oasis:names:tc:SAML:2.0:status:"
_ISSUER = "{urn:oasis:names:tc:SAML:2.0:assertion}Issuer"
#: the most of an unsolicited Response read to find its Issuer (the whole is checked against the IdP's metadata)
UNSOLICITED_READ = 256 * 1024


def status_error(exc: UpstreamStatus) -> errors.BrokerError:
    """The IdP's non-Success status (SAML Core §3.2.2.2) as the error the downstream receives."""
    detail = f"IdP status {exc.status} / {exc.sub_status}: {exc.message!r:.200}"
    if exc.sub_status == _STATUS + "NoPassive":
        return errors.NoPassive(detail=detail)
    if exc.sub_status == _STATUS + "NoAuthnContext":
        return errors.InsufficientAssurance(detail=detail)
    return errors.UpstreamError(detail=detail)


def upstream_state(assertion: VerifiedAssertion) -> tuple[tuple[str, str], ...]:
    """What the IdP needs to end its session at logout (``broker.upstream.saml_slo``): its NameID, as issued."""
    values = (assertion.name_id, assertion.name_id_format, assertion.name_qualifier, assertion.sp_name_qualifier,
              assertion.session_index)
    return tuple((key, value) for key, value in zip(STATE_KEYS, values, strict=True) if value)


class SamlUpstreams:
    """``idp(name)``: a registered SAML upstream by name, or a federation directory IdP by entity ID;
    ``idp_by_entity(entity_id)``: the same found by entity ID. ``replays`` keeps the assertion IDs seen."""

    def __init__(self, sp: SamlSp, idp: Callable[[str], UpstreamIdp | None],
                 idp_by_entity: Callable[[str], UpstreamIdp | None], replays: PendingStore) -> None:
        self._sp, self._idp, self._idp_by_entity, self._replays = sp, idp, idp_by_entity, replays

    @property
    def protocol(self) -> Protocol:
        return Protocol.SAML

    def knows(self, name: str) -> bool:
        return self._idp(name) is not None

    def proves_fresh_sign_in(self, name: str) -> bool:
        """Every SAML IdP: ForceAuthn, and the AuthnInstant is checked (``ResponseExpectations``)."""
        return self.knows(name)

    def begin(self, name: str, now: datetime, login: LoginRequest | None,
              reauthenticate: bool = False) -> UpstreamStart:
        idp = self._idp(name)
        if idp is None:
            raise errors.UnknownUpstream(detail=f"no metadata for SAML IdP {name!r:.200}")
        outgoing, pending = self._sp.authn_request(idp, login, now, reauthenticate=reauthenticate)
        sent = PostForm(outgoing.url, outgoing.fields) if outgoing.is_post else Redirect(outgoing.url)
        return UpstreamStart(sent, pending.relay_state, pending.to_json())

    def finish(self, pending: str, answer: Mapping[str, str], now: datetime, *, arrived_at: str | None = None,
               fresh_required: bool = False) -> VerifiedAnswer:
        """The IdP's Response to the request ``pending``. An answer for a request whose IdP is gone, or now has
        another entity ID under that name, is refused whatever it says."""
        request = SamlPending.from_json(pending)
        if fresh_required and not request.force_authn:
            raise errors.LoginStateInvalid(detail="link proof was not asked with ForceAuthn")
        idp = self._idp(request.upstream)
        if idp is None or idp.entity_id != request.entity_id:
            raise errors.UpstreamVerificationFailed(detail=f"upstream {request.upstream!r} is no longer registered")
        return self._verified(idp, request, _response(answer), now)

    def finish_unsolicited(self, answer: Mapping[str, str], now: datetime) -> VerifiedAnswer:
        """The IdP the Response claims to come from, if it may send one unsolicited; its signature and every
        other rule are then checked against that IdP's metadata."""
        form_value = _response(answer)
        try:
            root = parse_document(base64.b64decode(form_value, validate=True)[: UNSOLICITED_READ + 1])
            issuer = (root.findtext(_ISSUER) or "").strip()
        except (StructureError, ValueError) as exc:
            raise errors.LoginStateInvalid(detail=f"unsolicited SAML Response unreadable: {exc}") from exc
        idp = self._idp_by_entity(issuer)
        if idp is None or not idp.allow_unsolicited:
            raise errors.LoginStateInvalid(detail=f"unsolicited SAML Response from {issuer[:200]!r}, which may "
                                                  "not send one (or no request of this browser is waiting)")
        return self._verified(idp, None, form_value, now)

    def _verified(self, idp: UpstreamIdp, request: SamlPending | None, form_value: str,
                  now: datetime) -> VerifiedAnswer:
        try:
            assertion = saml_response.verify_response(form_value, self._sp.expectations(idp, request), now)
        except ResponseRefused as exc:
            raise errors.UpstreamVerificationFailed(detail=f"SAML Response from {idp.entity_id}: {exc.reason}") \
                from exc
        except UpstreamStatus as exc:
            raise status_error(exc) from exc
        self._first_use(assertion)
        return VerifiedAnswer(identity_from(idp, assertion), upstream_state(assertion))

    def _first_use(self, assertion: VerifiedAssertion) -> None:
        """Replay defence (SAML Profiles §4.1.4.5): an assertion ID is accepted once, on any instance, until
        the assertion expires."""
        if not first_use(self._replays, assertion.issuer, assertion.assertion_id, assertion.keep_id_until,
                         kind=Kind.SAML_ASSERTION, prefix="saml:"):
            raise errors.UpstreamVerificationFailed(detail=f"assertion {assertion.assertion_id!r:.80} replayed")


def _response(answer: Mapping[str, str]) -> str:
    found = answer.get("SAMLResponse", "")
    if not found:
        raise errors.InvalidRequest(detail="no SAMLResponse in the POST")
    return found


_check: type[UpstreamAdapter] = SamlUpstreams
