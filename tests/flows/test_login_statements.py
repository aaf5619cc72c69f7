"""Each login step does only the work it needs (issue 21), counted on the database the broker really uses.

- The upstream's answer looks the identity up once, reads the account's identities once (the release and the app's
  roles share them), and writes the new SSO session once: no touch of the session it has just registered.
- The token endpoint (authorization code) and UserInfo answer from the claims the sign-in released, kept with the
  grant: neither reads the identities again. A refresh does (OIDC Core §12.2: its ID token carries current claims).
- An answer from the SSO session reads the identities once and notes the session as seen.

Kept on purpose: the consent look-up of an exempt app (the citizen's own answer on the page stands for it,
``core.consent.exemption_to_record``) and the identity's use written at each sign-in (``record_use``: the claims
asserted now, the last use that orders ``last_claims``).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import requests

from broker.core.model import UpstreamIdentity, utcnow
from tests.flows.app_roles_support import citizen_account, define_and_assign
from tests.flows.federation import Federation
from tests.flows.oidc_peers import relying_party
from tests.flows.oidc_to_oidc_support import sign_in
from tests.flows.statement_count_support import Counted, Request, counting
from tests.peers.browser import Browser

FIND_BY_IDENTITY = "FROM accounts JOIN linked_identities"
REFRESHING: dict[str, Any] = {"grant_types": ["authorization_code", "refresh_token"]}


def _one(counted: Counted, path: str) -> Request:
    found = counted.at(path)
    assert len(found) == 1, counted.report()
    return found[0]


def _back_channel_reads_no_identities(counted: Counted) -> None:
    for path in ("/oidc/token", "/oidc/userinfo"):
        request = _one(counted, path)
        assert request.identity_claims == 0 and not request.touching("linked_identities", "SELECT"), counted.report()


def test_a_first_and_a_returning_sign_in_do_each_thing_once(federation: Federation, browser: Browser) -> None:
    with relying_party(federation) as rp:
        with counting(federation) as first:
            sign_in(browser, rp)
        first_claims = rp.last.userinfo
    with Browser() as again, relying_party(federation) as rp, counting(federation) as returning:
        sign_in(again, rp)

    for counted in (first, returning):
        callback = _one(counted, "/upstream/oidc/")
        assert callback.identity_claims == 1, counted.report()
        assert len([s for s in callback.statements if FIND_BY_IDENTITY in s]) == 1, callback.statements
        assert len(callback.touching("INTO sso_sessions", "INSERT")) == 1, callback.statements
        # the app joins the session in one upsert (issue 21), not an UPDATE, a count and an INSERT
        assert len(callback.touching("INTO sso_participants", "INSERT")) == 1, callback.statements
        assert not callback.touching("sso_participants", "UPDATE"), callback.statements
        assert not callback.touching("sso_sessions", "UPDATE"), callback.statements  # registered once, not touched
        _back_channel_reads_no_identities(counted)
    assert first_claims is not None and first_claims["email"] == "anna@example.org"
    assert rp.last.userinfo is not None and rp.last.userinfo == {**first_claims, "sub": rp.last.userinfo["sub"]}
    assert rp.last.id_token_claims is not None and rp.last.id_token_claims["email"] == "anna@example.org"


def test_the_sso_answer_reads_the_identities_once_and_notes_the_session(federation: Federation,
                                                                        browser: Browser) -> None:
    with relying_party(federation, "app-one") as one, relying_party(federation, "app-two") as two:
        sign_in(browser, one)
        with counting(federation) as counted:
            sign_in(browser, two)

    authorize = _one(counted, "/oidc/authorize")
    assert authorize.identity_claims == 1, counted.report()
    assert len(authorize.touching("sso_sessions", "UPDATE")) == 1, authorize.statements
    _back_channel_reads_no_identities(counted)
    assert two.last.userinfo is not None and two.last.userinfo["given_name"] == "Anna"


def test_roles_come_from_the_identities_the_release_read(federation: Federation, browser: Browser) -> None:
    with relying_party(federation, "app-a", scope="openid email roles") as a:
        sign_in(browser, a)
        define_and_assign(federation, "app-a", "clerk", citizen_account(federation))
        with Browser() as again, counting(federation) as counted:
            sign_in(again, a)

    assert _one(counted, "/upstream/oidc/").identity_claims == 1, counted.report()
    _back_channel_reads_no_identities(counted)
    assert a.last.userinfo is not None and a.last.userinfo["roles"] == ["clerk"]
    assert a.last.id_token_claims is not None and a.last.id_token_claims["roles"] == ["clerk"]


def test_a_refresh_reads_the_profile_as_it_is_now(federation: Federation, browser: Browser) -> None:
    with relying_party(federation, **REFRESHING) as rp:
        sign_in(browser, rp)
        assert rp.last.token is not None
        with counting(federation) as counted:
            refreshed = requests.post(f"{federation.url}/oidc/token", auth=(rp.client_id, rp.secret or ""),
                                      data={"grant_type": "refresh_token",
                                            "refresh_token": rp.last.token["refresh_token"]}, timeout=10)

    assert refreshed.status_code == 200, refreshed.text
    assert _one(counted, "/oidc/token").identity_claims == 1, counted.report()


def test_userinfo_tells_what_the_sign_in_released_and_a_refresh_the_profile_now(federation: Federation,
                                                                               browser: Browser) -> None:
    """The chosen semantics (README, OIDC provider): an access token's UserInfo answers with the claims its sign-in
    released; the ID token of a refresh carries the profile as it is at the refresh (OIDC Core §12.2)."""
    with relying_party(federation, **REFRESHING) as rp:
        sign_in(browser, rp)
        assert rp.last.token is not None and rp.last.userinfo is not None
        assert rp.last.userinfo["given_name"] == "Anna"
        _renamed_upstream(federation, citizen_account(federation), "Anneke")

        userinfo = requests.get(f"{federation.url}/oidc/userinfo", timeout=10,
                                headers={"Authorization": f"Bearer {rp.last.token['access_token']}"})
        refreshed = requests.post(f"{federation.url}/oidc/token", auth=(rp.client_id, rp.secret or ""),
                                  data={"grant_type": "refresh_token",
                                        "refresh_token": rp.last.token["refresh_token"]}, timeout=10)

    assert userinfo.status_code == 200 and userinfo.json()["given_name"] == "Anna"
    assert refreshed.status_code == 200, refreshed.text
    payload = refreshed.json()["id_token"].split(".")[1]
    assert json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["given_name"] == "Anneke"


def _renamed_upstream(federation: Federation, account_id: str, given_name: str) -> None:
    """As if the citizen signed in elsewhere and the upstream now asserts another first name."""
    accounts = federation.app.extensions["broker"].journeys.accounts
    (used,) = accounts.identity_claims(account_id)
    accounts.record_use(account_id, UpstreamIdentity(
        used.identity.upstream, used.identity.issuer, used.identity.subject,
        {**used.claims, "given_name": given_name}, used.acr, utcnow()), utcnow())
