"""The pending store's records and their one codec (``broker.core.pending_records``, issue 16): every record
survives a round trip, and anything else is refused as ``LoginStateInvalid``, never a ``KeyError``."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest

from broker.core import errors
from broker.core.factor_records import (
    EmailEnrolment,
    PasskeyEnrolment,
    PasskeySignIn,
    PasskeySignUp,
    StepUp,
    StepUpEnrolled,
    StepUpEnrolment,
    TotpEnrolment,
)
from broker.core.linking import LinkProof
from broker.core.model import EmailTrust
from broker.core.pending_kinds import Kind
from broker.core.pending_records import (
    LinkOffer,
    LinkOfferConfirm,
    LinkOfferOidc,
    LinkOfferSaml,
    LoginAtConsent,
    LoginAtDiscovery,
    LoginAtOidcUpstream,
    LoginAtSamlUpstream,
    OidcLogout,
    PendingRecord,
    PortalLinkConfirm,
    PortalLinkOidc,
    PortalLinkProof,
    PortalLinkSaml,
    SamlUpstreamLogout,
    SamlUpstreamLogoutReply,
    decode,
    encode,
    peek_record,
    put_record,
    put_record_with_handle,
    take_record,
)
from tests.core.builders import NOW, identity, request

LOGIN = request(protocol_state=(("prompt", "login"),), acr_values=("urn:loa:2",))
IDENTITY = identity({"email": "anna@example.org", "address": {"locality": "Espoo"}}, email_trust=EmailTrust.VERIFIED)
OFFER = LinkOffer(login=LOGIN, identity=IDENTITY, account="acct-1", upstreams=("digid", "eherk"), sso="sid-1")
PROOF = LinkProof("acct-1", "sid-1", "itsme", NOW, "f" * 64)
RECORDS: tuple[PendingRecord, ...] = (
    LoginAtDiscovery(LOGIN),
    LoginAtConsent(LOGIN),
    LoginAtOidcUpstream(login=LOGIN, upstream='{"state": "s"}'),
    LoginAtSamlUpstream(login=LOGIN, upstream='{"relay_state": "r"}'),
    OFFER,
    LinkOfferOidc(offer=OFFER, upstream='{"state": "s"}'),
    LinkOfferSaml(offer=OFFER, upstream='{"relay_state": "r"}'),
    LinkOfferConfirm(offer=OFFER, proven_with="digid"),
    LinkOffer(login=LOGIN, identity=IDENTITY, account="acct-1", upstreams=(), sso=""),
    PortalLinkProof(PROOF),
    PortalLinkOidc(proof="handle-1", upstream="{}"),
    PortalLinkSaml(proof="handle-1", upstream="{}"),
    PortalLinkConfirm(proof=PROOF, identity=IDENTITY),
    OidcLogout(target="https://rp.example/bye", state="st", client="rp-1"),
    OidcLogout(target=None, state=None, client=None),
    SamlUpstreamLogout(request_id="_r1", entity_id="urn:idp", return_url="https://broker.example/next"),
    SamlUpstreamLogoutReply(request_id="_r2", entity_id="urn:idp", relay_state="rs", success=True),
    SamlUpstreamLogoutReply(request_id="_r2", entity_id="urn:idp", relay_state=None, success=False),
    # second factors (``broker.core.factor_records``)
    StepUp(login=LOGIN, identity=IDENTITY, account="acct-1", upstream_state=("k", "v"), attempts=2,
           passkey_state="{}", email_code="salt$mac", email_code_until=1, email_factor="f-1", email_sends=1,
           sid="sid-1"),
    StepUpEnrolment(login=LOGIN, identity=IDENTITY, account="", upstream_state=(), secret="JBSWY3DP", attempts=0),
    StepUpEnrolled(login=LOGIN, identity=IDENTITY, upstream_state=("k", "v")),
    TotpEnrolment(account="acct-1", sid="sid-1", name="phone", secret="JBSWY3DP", attempts=1),
    EmailEnrolment(account="acct-1", sid="sid-1", name="mail", address="a@x", code="salt$mac", until=1),
    PasskeyEnrolment(account="acct-1", sid="sid-1", name="laptop", state="{}"),
    PasskeySignIn(login=LOGIN, discovery="h-1", state="{}", attempts=0),
    PasskeySignUp(login=LOGIN, discovery="h-1", subject="s-1", state="{}", attempts=0),
)


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_every_record_survives_a_round_trip(record: PendingRecord) -> None:
    assert decode(type(record), encode(record)) == record


def test_each_record_names_its_own_kind() -> None:
    classes = {type(r) for r in RECORDS}
    assert len({c.KIND for c in classes}) == len(classes)
    assert (LinkOfferOidc.KIND, LinkOfferSaml.KIND) == (Kind.LINK_OFFER_OIDC, Kind.LINK_OFFER_SAML)


def test_field_names_are_the_payload_members() -> None:
    stored = json.loads(encode(LinkOfferConfirm(offer=OFFER, proven_with="digid")))
    assert set(stored) == {"offer", "proven_with"}
    assert set(stored["offer"]) == {"login", "identity", "account", "upstreams", "sso"}
    assert stored["offer"]["upstreams"] == ["digid", "eherk"]


def _damaged(record: PendingRecord) -> list[str]:
    """Texts that are not ``record``'s: each member missing (but those with a default: a record stored before
    the field was added reads back with it), each member of the wrong type."""
    good = json.loads(encode(record))
    defaulted = {f.name for f in dataclasses.fields(record) if f.default is not dataclasses.MISSING}
    texts = []
    for name in good:
        if name not in defaulted:
            texts.append(json.dumps({k: v for k, v in good.items() if k != name}))
        texts.append(json.dumps(good | {name: 42 if good[name] is None or isinstance(good[name], str) else "42"}))
        texts.append(json.dumps(good | {name: {}}))
    return texts


@pytest.mark.parametrize(("cls", "text"), [
    (SamlUpstreamLogoutReply, '{"request_id": "r", "entity_id": "e", "relay_state": null, "success": 1}'),
    (SamlUpstreamLogoutReply, '{"request_id": "r", "entity_id": "e", "relay_state": 7, "success": true}'),
    (SamlUpstreamLogout, '{"request_id": null, "entity_id": "e", "return_url": "u"}'),  # None only where allowed
])
def test_a_near_miss_is_refused(cls: type[PendingRecord], text: str) -> None:
    with pytest.raises(errors.LoginStateInvalid):
        decode(cls, text)


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_a_missing_or_wrong_typed_member_is_refused(record: PendingRecord) -> None:
    for text in _damaged(record):
        with pytest.raises(errors.LoginStateInvalid):
            decode(type(record), text)


@pytest.mark.parametrize("text", ["", "not json", "{", "null", "[]", '"text"', "42", "[" * 100_000 + "]" * 100_000])
def test_text_that_is_no_json_object_is_refused(text: str) -> None:
    with pytest.raises(errors.LoginStateInvalid):
        decode(LinkOffer, text)


@pytest.mark.parametrize("damage", [
    {"login": '{"downstream": 1}'},  # a nested login request that is not one
    {"identity": "{}"},
    {"identity": json.loads(IDENTITY.to_json())},  # the object itself instead of its JSON text
    {"upstreams": ["digid", 7]},
    {"upstreams": "digid"},
    {"account": True},
])
def test_damaged_nested_members_are_refused(damage: dict[str, object]) -> None:
    text = json.dumps(json.loads(encode(OFFER)) | damage)
    with pytest.raises(errors.LoginStateInvalid) as refused:
        decode(LinkOffer, text)
    assert "LinkOffer" in (refused.value.detail or "")


def test_a_nested_record_is_checked_as_well() -> None:
    stored = json.loads(encode(LinkOfferConfirm(offer=OFFER, proven_with="digid")))
    del stored["offer"]["sso"]
    with pytest.raises(errors.LoginStateInvalid):
        decode(LinkOfferConfirm, json.dumps(stored))


def test_extra_members_are_ignored() -> None:
    assert decode(PortalLinkOidc, json.dumps({"proof": "h", "upstream": "{}", "later": 1})) == \
        PortalLinkOidc(proof="h", upstream="{}")


class _Store:
    """Just enough of ``PendingStore`` to see what the helpers pass it."""

    def __init__(self) -> None:
        self.rows: dict[tuple[Kind, str], str] = {}

    def put(self, kind: Kind, payload: str, expires_at: datetime) -> str:
        handle = f"h{len(self.rows)}"
        self.rows[(kind, handle)] = payload
        return handle

    def put_with_handle(self, kind: Kind, handle: str, payload: str, expires_at: datetime) -> None:
        self.rows[(kind, handle)] = payload

    def peek(self, kind: Kind, handle: str, now: datetime) -> str | None:
        return self.rows.get((kind, handle))

    def peek_many(self, kinds: Sequence[Kind], handle: str, now: datetime) -> dict[Kind, str]:
        return {kind: self.rows[(kind, handle)] for kind in kinds if (kind, handle) in self.rows}

    def take(self, kind: Kind, handle: str, now: datetime) -> str | None:
        return self.rows.pop((kind, handle), None)


def test_helpers_put_and_take_a_record_under_its_own_kind() -> None:
    store = _Store()
    later = NOW + timedelta(minutes=5)
    handle = put_record(store, OFFER, later)
    put_record_with_handle(store, "state-1", LinkOfferOidc(offer=OFFER, upstream="{}"), later)
    assert set(store.rows) == {(Kind.LINK_OFFER, handle), (Kind.LINK_OFFER_OIDC, "state-1")}
    assert take_record(store, LinkOfferSaml, "state-1", NOW) is None  # another kind never finds it
    assert peek_record(store, LinkOffer, handle, NOW) == OFFER  # peeking leaves it
    assert take_record(store, LinkOffer, handle, NOW) == OFFER
    assert take_record(store, LinkOffer, handle, NOW) is None  # single use
    assert take_record(store, LinkOfferOidc, "state-1", NOW) == LinkOfferOidc(offer=OFFER, upstream="{}")


def test_a_damaged_row_taken_is_refused_not_a_key_error() -> None:
    store = _Store()
    store.put_with_handle(Kind.LINK_CONFIRM, "h", '{"proof": "x"}', NOW)
    with pytest.raises(errors.LoginStateInvalid):
        take_record(store, PortalLinkConfirm, "h", NOW)


def test_a_record_stored_before_a_field_was_added_reads_back_with_its_default() -> None:
    waiting = StepUp(login=LOGIN, identity=IDENTITY, account="acct-1", upstream_state=(), attempts=1,
                     passkey_state="", email_code="ab$cd", email_code_until=7, email_factor="f-1", email_sends=2)
    older = {k: v for k, v in json.loads(encode(waiting)).items() if not k.startswith("email_")}

    assert decode(StepUp, json.dumps(older)) == StepUp(login=LOGIN, identity=IDENTITY, account="acct-1",
                                                       upstream_state=(), attempts=1, passkey_state="")
    with pytest.raises(errors.LoginStateInvalid):  # a member without a default is still required
        decode(StepUp, json.dumps({k: v for k, v in older.items() if k != "attempts"}))
