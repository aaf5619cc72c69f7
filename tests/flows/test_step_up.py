"""Step-up end to end (issue 17): an app asks for more assurance than the upstream gives, and the citizen's
authenticator app enrolled at the broker makes up the difference.

Real peers: the authlib relying party (an OIDC app asking ``acr`` essential), pysaml2 SPs (a SAML app with the
operator's minimum level), the authlib demo provider upstream (which asserts no ``acr``); codes from ``pyotp``
at the real time, as an authenticator app would show them.
"""

from __future__ import annotations

import json

import pyotp
from sqlalchemy import select

from broker.core.assurance import REFEDS_MFA
from broker.storage import create_engine_for
from broker.storage.authenticators import new_totp_secret
from broker.storage.tables import AccountRow
from tests.flows.app_settings import app_settings, to_the_sp
from tests.flows.federation import Federation, saml_status
from tests.flows.oidc_peers import relying_party
from tests.flows.oidc_to_oidc_support import sign_in
from tests.peers.browser import Browser

MFA_ESSENTIAL = json.dumps({"id_token": {"acr": {"essential": True, "values": [REFEDS_MFA]}}})


def enrol_authenticator_app(federation: Federation) -> str:
    """The only account gets an authenticator app (as the portal enrols one); its secret."""
    engine = create_engine_for(federation.database_url)
    try:
        with engine.connect() as connection:
            [account_id] = connection.execute(select(AccountRow.account_id)).scalars().all()
    finally:
        engine.dispose()
    services = federation.app.extensions["broker"]
    secret = new_totp_secret()
    services.authenticators.add_totp(account_id, "phone", secret, services.clock.now())
    return secret


def test_an_oidc_app_asking_for_mfa_gets_a_code_step_and_an_id_token_that_says_so(federation: Federation,
                                                                                  browser: Browser) -> None:
    with relying_party(federation) as rp:
        assert sign_in(browser, rp).status_code == 200  # the first sign-in makes the account
        secret = enrol_authenticator_app(federation)

        page = browser.get(f"{rp.url}/login", params={"claims": MFA_ESSENTIAL})

        assert page.status_code == 200 and "Confirm it is you" in page.text, page.text[:300]
        assert page.headers["Cache-Control"] == "no-store"
        wrong = browser.submit(page, {"code": "000000" if pyotp.TOTP(secret).now() != "000000" else "111111"})
        assert wrong.status_code == 200 and "That code did not work" in wrong.text
        done = browser.submit(wrong, {"code": pyotp.TOTP(secret).now()})

        assert done.status_code == 200, done.text[:300]
        claims = rp.last.id_token_claims
        assert claims is not None and claims["acr"] == REFEDS_MFA
        assert {"otp", "mfa"} <= set(claims["amr"])


def test_without_an_enrolled_factor_the_app_hears_the_requirement_was_not_met(federation: Federation,
                                                                              browser: Browser) -> None:
    with relying_party(federation) as rp:
        sign_in(browser, rp, claims=MFA_ESSENTIAL)

        assert rp.last.callback_args.get("error") == "unmet_authentication_requirements"


def test_a_saml_app_with_a_minimum_level_gets_the_same_step(federation: Federation, browser: Browser) -> None:
    request_id, page = federation.login(browser, "sp1")
    assert federation.sps["sp1"].parse(browser.form_fields(to_the_sp(browser, page))["SAMLResponse"], request_id)
    secret = enrol_authenticator_app(federation)
    app_settings(federation, "sp1", f'required_acr = "{REFEDS_MFA}"\n')

    request_id, page = federation.login(browser, "sp1")
    page = to_the_sp(browser, page)
    assert "Confirm it is you" in page.text, page.text[:300]
    answered = to_the_sp(browser, browser.submit(page, {"code": pyotp.TOTP(secret).now()}))

    fields = browser.form_fields(answered)
    assert saml_status(fields)[0].endswith(":Success")
    response = federation.sps["sp1"].parse(fields["SAMLResponse"], request_id)
    assert response.assertion.authn_statement[0].authn_context.authn_context_class_ref.text == REFEDS_MFA
