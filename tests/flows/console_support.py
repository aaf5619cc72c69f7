"""An operator at the console, for the console's flow tests: the demo citizen signs in to the portal (which makes
the account), gets an authenticator app and the roles, and signs in to the console with the app's code."""

from __future__ import annotations

import pyotp

from broker.core.operators import OperatorGrant, Role
from broker.storage.authenticators import new_totp_secret
from tests.flows.federation import Federation
from tests.flows.portal_support import account_id, portal_sign_in, services
from tests.peers.browser import Browser


def console_operator(federation: Federation, browser: Browser, *roles: Role) -> str:
    """The citizen, granted ``roles``, signed in to the console in ``browser``; their account id."""
    portal_sign_in(federation, browser)
    account, svc = account_id(federation), services(federation)
    secret = new_totp_secret()
    svc.authenticators.add_totp(account, "phone", secret, svc.clock.now())
    assert svc.operators is not None
    for role in roles:
        svc.operators.grant(OperatorGrant(account, role, "test", svc.clock.now()))
    factor = browser.submit(browser.get(f"{federation.url}/console/"))
    assert "Confirm it is you" in factor.text, factor.text[:300]
    home = browser.submit(factor, {"code": pyotp.TOTP(secret).now()})
    assert home.status_code == 200 and "Operator console" in home.text, home.text[:300]
    return account
