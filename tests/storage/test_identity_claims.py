"""``SqlAccountStore.identity_claims``: what every linked identity of an account asserted, for the unified profile.

The second identity is inserted as a row (sealed as the store seals it): linking flows are not this test's subject.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, insert, update

from broker.core.claims import ClaimValue
from broker.core.model import UpstreamIdentity
from broker.core.profile import NO_CONFIGURED_RULES, IdentityClaims, ProfileValue, merge
from broker.storage import SqlAccountStore
from broker.storage.accounts import claims_context
from broker.storage.codec import encode_claims
from broker.storage.sealing import Sealer
from broker.storage.tables import LinkedIdentityRow

SEALER = Sealer([secrets.token_bytes(32)])  # claims sealed at rest under a key of this run
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
CITY = "https://city-idp.example.org"

Identity = Callable[..., UpstreamIdentity]


def _link_second(engine: Engine, account_id: str, claims: dict[str, ClaimValue], *, used: datetime,
                 acr: str | None = "urn:city:loa3", sealer: Sealer = SEALER) -> None:
    sealed = sealer.seal(encode_claims(claims), claims_context(CITY, "anna-city"))
    with engine.begin() as connection:
        connection.execute(insert(LinkedIdentityRow).values(
            account_id=account_id, issuer=CITY, subject="anna-city", upstream="city-idp",
            first_used=NOW + timedelta(minutes=1), last_used=used, last_acr=acr, last_claims=sealed))


def test_every_linked_identity_with_its_claims_and_acr(engine: Engine, make_identity: Identity) -> None:
    store = SqlAccountStore(engine, SEALER)
    account, _ = store.create_with_identity(make_identity(claims={"email": "anna@example.org"}), NOW)
    _link_second(engine, account.account_id, {"email": "anna@city.example", "email_verified": True,
                                              "given_name": "Anna"}, used=NOW + timedelta(hours=1))

    found = store.identity_claims(account.account_id)

    assert [(c.identity.issuer, c.identity.subject, c.identity.upstream) for c in found] == [
        ("https://idp.example.org", "subject-1", "example-idp"), (CITY, "anna-city", "city-idp")]
    assert [dict(c.claims) for c in found] == [
        {"email": "anna@example.org"}, {"email": "anna@city.example", "email_verified": True, "given_name": "Anna"}]
    assert [c.acr for c in found] == ["urn:example:loa:2", "urn:city:loa3"]
    assert [c.identity.last_used for c in found] == [NOW, NOW + timedelta(hours=1)]
    assert found[0].identity == store.identities(account.account_id)[0]


def test_the_merged_profile_of_two_identities(engine: Engine, make_identity: Identity) -> None:
    store = SqlAccountStore(engine, SEALER)
    account, _ = store.create_with_identity(
        make_identity(claims={"email": "new@example.org", "given_name": "Anne"}), NOW + timedelta(hours=2))
    _link_second(engine, account.account_id, {"email": "anna@city.example", "email_verified": True,
                                              "given_name": "Anna"}, used=NOW)

    profile = merge(store.identity_claims(account.account_id), NO_CONFIGURED_RULES)

    assert profile.claims() == {"email": "anna@city.example", "email_verified": True, "email_relay": False,
                                "given_name": "Anne"}
    assert profile.values["email"] == ProfileValue("anna@city.example", "city-idp", CITY, NOW, True, "urn:city:loa3")
    assert profile.values["given_name"].upstream == "example-idp"
    assert store.last_claims(account.account_id) == {"email": "new@example.org", "given_name": "Anne"}  # unchanged


@pytest.mark.parametrize("damage", ["tampered", "other key"])
def test_an_unreadable_identity_is_left_out_and_logged(engine: Engine, make_identity: Identity,
                                                      caplog: pytest.LogCaptureFixture, damage: str) -> None:
    store = SqlAccountStore(engine, SEALER)
    account, _ = store.create_with_identity(make_identity(claims={"given_name": "Anna"}), NOW)
    if damage == "other key":
        stranger = Sealer([secrets.token_bytes(32)])
        _link_second(engine, account.account_id, {"given_name": "X"}, used=NOW, sealer=stranger)
    else:
        _link_second(engine, account.account_id, {"given_name": "X"}, used=NOW)
        with engine.begin() as connection:  # the first identity's sealed value moved into the second's row
            first = store.identity_claims(account.account_id)[0].identity
            assert first.subject == "subject-1"
            sealed = SEALER.seal(encode_claims({"given_name": "X"}), claims_context(first.issuer, first.subject))
            connection.execute(update(LinkedIdentityRow).where(LinkedIdentityRow.issuer == CITY)
                               .values(last_claims=sealed))

    with caplog.at_level(logging.WARNING, logger="broker.security"):
        found = store.identity_claims(account.account_id)

    assert [(c.identity.subject, dict(c.claims)) for c in found] == [("subject-1", {"given_name": "Anna"})]
    assert "unreadable" in caplog.text and "X" not in caplog.text


def test_an_unknown_account_has_none(engine: Engine) -> None:
    found: list[IdentityClaims] = list(SqlAccountStore(engine, SEALER).identity_claims("no-such-account"))
    assert found == []
