"""The broker's single logout as SAML SP toward upstream IdPs, as the ``UpstreamLogout`` port
(``broker.core.logout_ports``), over ``saml_slo`` (verification against the IdP's metadata, signed messages)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from broker.core import errors
from broker.core.logout_ports import Sent, UpstreamLogout, UpstreamLogoutMessage
from broker.core.outcomes import PostForm, Redirect
from broker.core.sessions import SsoSession
from broker.upstream import saml_slo
from broker.upstream.saml_settings import Outgoing, UpstreamIdp
from broker.upstream.saml_sp import SamlSp


def _outgoing(out: Outgoing) -> Redirect | PostForm:
    return PostForm(out.url, out.fields, purpose="signing_out") if out.is_post else Redirect(out.url)


class SamlIdpLogout:
    """``idp(name)`` and ``idp_by_entity(entity_id)`` find an upstream IdP as registered now."""

    def __init__(self, sp: SamlSp, idp: Callable[[str], UpstreamIdp | None],
                 idp_by_entity: Callable[[str], UpstreamIdp | None]) -> None:
        self._sp, self._idp, self._idp_by_entity = sp, idp, idp_by_entity

    def read(self, fields: Mapping[str, str], raw_query: bytes | None, endpoint: str,
             now: datetime) -> UpstreamLogoutMessage:
        try:
            message, idp = saml_slo.read_message(dict(fields), raw_query, self._idp_by_entity, self._sp, endpoint, now)
        except saml_slo.LogoutRefused as exc:
            raise errors.InvalidRequest(detail=f"SAML logout message refused: {exc}") from exc
        return UpstreamLogoutMessage(
            is_response=message.kind == "LogoutResponse", entity_id=idp.entity_id, message_id=message.message_id,
            in_response_to=message.in_response_to, success=message.status == saml_slo.SUCCESS,
            status=message.status, name_id=message.name_id, session_indexes=message.session_indexes)

    def names_session(self, sso: SsoSession, message: UpstreamLogoutMessage) -> bool:
        state = dict(sso.upstream_state)
        upstream = self._idp(sso.upstream)
        return (upstream is not None and upstream.entity_id == message.entity_id and bool(state.get("name_id"))
                and message.name_id == state["name_id"]
                and (not message.session_indexes or state.get("session_index") in message.session_indexes))

    def request(self, sso: SsoSession, relay_state: str, now: datetime) -> tuple[Sent, str] | None:
        state = dict(sso.upstream_state)
        idp = self._idp(sso.upstream) if state.get("name_id") else None
        if idp is None:
            return None
        sent = saml_slo.logout_request(self._sp, idp, state, relay_state, now)
        if sent is None:
            return None
        outgoing, request_id = sent
        return Sent(_outgoing(outgoing), request_id), idp.entity_id

    def answer(self, entity_id: str, request_id: str, success: bool, relay_state: str | None,
               now: datetime) -> Redirect | PostForm:
        idp = self._idp_by_entity(entity_id)
        if idp is None:
            raise errors.UnknownUpstream(detail=f"IdP {entity_id!r:.200} is no longer registered")
        outgoing = saml_slo.logout_response(self._sp, idp, request_id, success, relay_state or None, now)
        if outgoing is None:
            raise errors.UnknownUpstream(detail=f"IdP {idp.entity_id} publishes no SingleLogoutService")
        return _outgoing(outgoing)


_check: type[UpstreamLogout] = SamlIdpLogout
