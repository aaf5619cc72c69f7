"""Adding a second factor at the step-up, end to end (issue 17, ``[assurance] enrol_at_step_up``): a citizen whose
first sign-in is at an app needing MFA adds an authenticator app on the way, and the app's ID token says what was
reached. Real peers: the authlib relying party, the authlib demo provider upstream (no ``acr``); the code from
``pyotp`` at the real time, from the secret the page shows, as an authenticator app would read it."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest

from broker.core.assurance import REFEDS_MFA
from tests.databases import BACKENDS, database_for
from tests.flows.federation import Federation, running_federation
from tests.flows.oidc_peers import relying_party
from tests.flows.oidc_to_oidc_support import sign_in
from tests.peers.browser import Browser

MFA_ESSENTIAL = json.dumps({"id_token": {"acr": {"essential": True, "values": [REFEDS_MFA]}}})
SECRET = re.compile(r'<code id="secret"[^>]*>([A-Z2-7 ]+)</code>')


@pytest.fixture(params=BACKENDS)
def enrolling(request: pytest.FixtureRequest, tmp_path: Path, key_folder: Path) -> Iterator[Federation]:
    database = database_for(request.param, tmp_path)
    try:
        with running_federation(tmp_path / "instance", key_folder, next(database),
                                extra_config="\n[assurance]\nenrol_at_step_up = true\n") as running:
            yield running
    finally:
        for _ in database:  # drops the PostgreSQL schema
            pass


def test_a_first_sign_in_at_an_mfa_app_adds_an_authenticator_app_on_the_way(enrolling: Federation,
                                                                             browser: Browser) -> None:
    with relying_party(enrolling) as rp:
        page = sign_in(browser, rp, claims=MFA_ESSENTIAL)

        assert page.status_code == 200 and "Add a second factor" in page.text, page.text[:300]
        assert page.headers["Cache-Control"] == "no-store" and '<figure class="qr"' in page.text
        found = SECRET.search(page.text)
        assert found is not None
        secret = html.unescape(found.group(1)).replace(" ", "")
        codes = browser.submit(page, {"code": pyotp.TOTP(secret).now()}, form="confirm")

        assert codes.status_code == 200 and "Your recovery codes" in codes.text, codes.text[:300]
        assert codes.text.count("<li><code>") == 10 and not rp.outcomes  # the app has heard nothing yet
        done = browser.submit(codes)

        assert done.status_code == 200, done.text[:300]
        claims = rp.last.id_token_claims
        assert claims is not None and claims["acr"] == REFEDS_MFA and {"otp", "mfa"} <= set(claims["amr"])
        assert enrolling.accounts() == 1
