"""The portal's "Sign-in security" page through real HTTP (issue 17): a citizen adds an authenticator app by its
QR code (inline SVG) or key and its first code (``pyotp``, as an app would show it), sees the recovery codes once
and the app listed; removing the last app needs a sign-in with the second factor, which the page offers.
"""

from __future__ import annotations

import time

import lxml.html  # type: ignore[import-untyped]
import pyotp

from broker.core.audit import AuditKind
from broker.core.factors import FactorKind
from tests.flows.federation import Federation
from tests.flows.portal_support import account_id, portal_sign_in, services
from tests.peers.browser import Browser


def test_a_citizen_adds_an_authenticator_app_and_sees_the_recovery_codes_once(
        federation: Federation, browser: Browser) -> None:
    home = portal_sign_in(federation, browser)
    assert "Sign-in security" in home.text
    security_url = f"{federation.url}/account/security/"
    page = browser.get(security_url)
    assert page.status_code == 200 and "You have no second factor yet." in page.text

    enrol = browser.submit(page, {"name": "phone"}, form="add-app")

    assert enrol.status_code == 200 and enrol.headers["Cache-Control"] == "no-store"
    tree = lxml.html.fromstring(enrol.text)
    [qr] = tree.xpath("//figure[@role='img']")
    assert qr.get("aria-label") and qr.xpath(".//svg/title") and qr.xpath(".//svg//path")
    secret = "".join(tree.xpath("string(//code[@id='secret'])").split())
    assert len(secret) == 32
    wrong = browser.submit(enrol, {"code": "000000" if pyotp.TOTP(secret).now() != "000000" else "111111"},
                           form="confirm")
    assert wrong.status_code == 200 and 'role="alert"' in wrong.text and "did not work" in wrong.text
    assert "".join(lxml.html.fromstring(wrong.text).xpath("string(//code[@id='secret'])").split()) == secret

    codes_page = browser.submit(wrong, {"code": pyotp.TOTP(secret).now()}, form="confirm")

    assert codes_page.status_code == 200 and codes_page.headers["Cache-Control"] == "no-store"
    assert "shown only this once" in codes_page.text
    codes = lxml.html.fromstring(codes_page.text).xpath("//ol[@class='recovery-codes']/li/code/text()")
    assert len(codes) == 10
    listed = browser.get(security_url)
    assert listed.status_code == 200 and "phone" in listed.text and "Authenticator app" in listed.text
    assert "Recovery codes" in listed.text and not any(code in listed.text for code in codes)
    svc = services(federation)
    account = account_id(federation)
    factors = svc.authenticators.of(account)
    assert [(f.kind, f.name) for f in factors] == [(FactorKind.TOTP, "phone"), (FactorKind.RECOVERY,
                                                                               "recovery codes")]
    kinds = [e.kind for e in svc.audit.events(account_id=account, limit=100)]
    assert kinds.count(AuditKind.AUTHENTICATOR_ADDED.value) == 2

    # removing the only app: refused from a session without the second factor, with a way to get one
    refused = browser.submit(listed, form=f"remove-{factors[0].authenticator_id}")
    assert refused.status_code == 403 and "fresh second factor" in refused.text
    assert len(svc.authenticators.of(account)) == 2
    step_up = browser.submit(refused, form="second-factor-sign-in")
    assert step_up.status_code == 200 and 'name="code"' in step_up.text, step_up.text[:500]
    # the enrolment spent this time step's code: the app's next one (one step of drift is accepted)
    back = browser.submit(step_up, {"code": pyotp.TOTP(secret).at(time.time() + 30)})
    assert back.status_code == 200 and back.url == security_url, back.text[:300]  # back where the person was
    removed = browser.submit(back, form=f"remove-{factors[0].authenticator_id}")
    assert removed.status_code == 200 and "phone was removed" in removed.text
    assert [f.kind for f in svc.authenticators.of(account)] == [FactorKind.RECOVERY]
    assert any(e.kind == AuditKind.AUTHENTICATOR_REMOVED.value and e.account_id == account
               for e in svc.audit.events(account_id=account, limit=100))
