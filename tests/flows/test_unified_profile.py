"""Downstreams receive the unified profile merged under the operator's ``[profile]`` rules, in both protocols.

Anna signed in through the demo provider "op" (name "Anna", e-mail anna@example.org, verified). Her account also
has an older identity at the city's IdP, inserted as a row (sealed with the instance's claims key) because the
linking journey is not this test's subject. ``given_name = "preferred_upstream:city-idp"`` makes the city's
"Anneke" win over the more recent "Anna"; the e-mail follows ``most_recent_verified``: both are verified, so the
more recent one (op's). Under the default rules the SP would get "Anna", so the name proves the configured
rules reached the login (``flow.complete_login``), the SSO answer (``flow.answer_from_session``) and the OpenID
provider's ID token and UserInfo (``OidcProvider._released``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from broker.core.claims import ClaimValue
from broker.storage import create_engine_for
from broker.storage.accounts import claims_context
from broker.storage.codec import encode_claims
from broker.storage.sealing import Sealer
from broker.storage.tables import AccountRow, LinkedIdentityRow
from tests.databases import BACKENDS, database_for
from tests.flows.federation import Federation, running_federation
from tests.flows.oidc_peers import relying_party
from tests.flows.oidc_to_oidc_support import sign_in
from tests.peers.browser import Browser

PROFILE = """
[profile]
acr_order = ["urn:city:loa2", "urn:city:loa3"]
rules = { given_name = "preferred_upstream:city-idp", email = "most_recent_verified" }
"""
CITY = "https://city-idp.example.org"
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


@pytest.fixture(params=BACKENDS)
def profile_federation(request: pytest.FixtureRequest, tmp_path: Path, key_folder: Path) -> Iterator[Federation]:
    database = database_for(request.param, tmp_path)
    try:
        with running_federation(tmp_path / "instance", key_folder, next(database), extra_config=PROFILE) as running:
            yield running
    finally:
        for _ in database:  # drops the PostgreSQL schema
            pass


def _link_city_identity(federation: Federation) -> None:
    key = bytes.fromhex((federation.folder / "certs" / "claims.key").read_text().strip())
    claims: dict[str, ClaimValue] = {"given_name": "Anneke", "email": "anna@city.example", "email_verified": True}
    engine = create_engine_for(federation.database_url)
    try:
        with engine.begin() as connection:
            [account_id] = connection.scalars(select(AccountRow.account_id)).all()
            connection.execute(insert(LinkedIdentityRow).values(
                account_id=account_id, issuer=CITY, subject="anna-city", upstream="city-idp",
                first_used=LONG_AGO, last_used=LONG_AGO, last_acr="urn:city:loa3",
                last_claims=Sealer([key]).seal(encode_claims(claims), claims_context(CITY, "anna-city"))))
    finally:
        engine.dispose()


def _saml_identity(federation: Federation, browser: Browser, sp: str) -> dict[str, list[str]]:
    request_id, page = federation.login(browser, sp)
    assert page.status_code == 200, page.text[:500]
    identity: dict[str, list[str]] = federation.sps[sp].parse(
        browser.form_fields(page)["SAMLResponse"], request_id).get_identity()
    return identity


def test_downstreams_receive_the_merged_profile(profile_federation: Federation) -> None:
    federation = profile_federation
    with Browser() as first:
        assert _saml_identity(federation, first, "sp1")["givenName"] == ["Anna"]  # one identity so far
    _link_city_identity(federation)

    with Browser() as browser:
        after_login = _saml_identity(federation, browser, "sp1")  # complete_login
        from_sso = _saml_identity(federation, browser, "sp2")  # answer_from_session
        with relying_party(federation) as rp:
            sign_in(browser, rp)  # the SSO session again, then the code at the token endpoint
            outcome = rp.last

    expected = {"givenName": ["Anneke"], "sn": ["Virtanen"], "mail": ["anna@example.org"]}
    assert {name: after_login[name] for name in expected} == expected
    assert {name: from_sso[name] for name in expected} == expected
    assert outcome.error is None and outcome.userinfo is not None and outcome.id_token_claims is not None
    assert (outcome.userinfo["given_name"], outcome.userinfo["family_name"], outcome.userinfo["email"]) == (
        "Anneke", "Virtanen", "anna@example.org")
    assert outcome.id_token_claims["given_name"] == "Anneke"
    assert federation.accounts() == 1
