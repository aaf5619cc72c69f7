"""E-mail one-time codes end to end (issue 17): the broker on real https, its ``[mail]`` pointing at a real SMTP
server on 127.0.0.1 (aiosmtpd in a thread, ``starttls = false`` as allowed for a server on this machine).

The citizen adds e-mail codes in the portal's "Sign-in security" page with the code that arrived by SMTP; then an
OpenID app (the authlib relying party) asks for MFA with the ``claims`` parameter, the step-up page sends a code
on request, and the code read from the message steps the sign-in up (``acr`` REFEDS MFA, ``amr`` ``otp`` and
``mfa``). A wrong code shows the page again; a page whose handle was used is refused, and the app hears nothing
more.
"""

from __future__ import annotations

import email
import email.policy
import json
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urljoin

import lxml.html  # type: ignore[import-untyped]
import pytest
import requests
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from broker.core.assurance import REFEDS_MFA
from broker.core.audit import AuditKind
from broker.core.factors import FactorKind
from broker.journeys import email_codes
from tests.databases import BACKENDS, database_for
from tests.flows.federation import CITIZEN, Federation, running_federation
from tests.flows.oidc_peers import relying_party
from tests.flows.portal_support import account_id, portal_sign_in, services
from tests.peers.browser import Browser

LOOPBACK = "127.0.0.1"
ADDRESS = str(CITIZEN.claims["email"])  # the demo provider's verified address: the form is pre-filled with it
MASKED = email_codes.mask(ADDRESS)
MFA_ESSENTIAL = json.dumps({"id_token": {"acr": {"essential": True, "values": [REFEDS_MFA]}}})
CODE_IN_MESSAGE = re.compile(r"code is: ([0-9]{8})")
#: the error page of a handle taken already (``errors.LoginStateInvalid``), not of a refused CSRF token
USED_UP = "already completed"


@dataclass
class Inbox:
    """What the SMTP server received, parsed (aiosmtpd calls ``handle_DATA`` in its own thread)."""

    received: list[tuple[list[str], EmailMessage]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.lock:
            self.received.append((list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"

    def messages(self) -> list[tuple[list[str], EmailMessage]]:
        with self.lock:
            return list(self.received)

    def codes(self) -> list[str]:
        """The codes of the messages that carry one, oldest first."""
        found = (CODE_IN_MESSAGE.search(m.get_content()) for _, m in self.messages())
        return [f.group(1) for f in found if f is not None]

    def new_code(self, before: int) -> str:
        """The one code that arrived since ``codes()`` had ``before`` entries, after checking its message."""
        codes = self.codes()
        assert len(codes) == before + 1, codes
        [(rcpt, message)] = [(r, m) for r, m in self.messages() if codes[-1] in m.get_content()]
        assert rcpt == [ADDRESS] and message["To"] == ADDRESS
        assert "no-reply@city.example" in message["From"]
        return codes[-1]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
    return port


@dataclass
class MailFederation:
    federation: Federation
    inbox: Inbox


@pytest.fixture(params=BACKENDS)
def mail_federation(request: pytest.FixtureRequest, tmp_path: Path, key_folder: Path) -> Iterator[MailFederation]:
    inbox, port = Inbox(), _free_port()
    controller = Controller(inbox, hostname=LOOPBACK, port=port)
    controller.start()
    database = database_for(request.param, tmp_path)
    mail = f"""
[mail]
smtp_host = "{LOOPBACK}"
smtp_port = {port}
starttls = false
from_address = "City sign-in <no-reply@city.example>"
timeout_seconds = 5
"""
    try:
        with running_federation(tmp_path / "instance", key_folder, next(database), extra_config=mail) as running:
            yield MailFederation(running, inbox)
    finally:
        for _ in database:  # drops the PostgreSQL schema
            pass
        controller.stop()


def _action(page: requests.Response, index: int = 0) -> str:
    """The absolute URL a form of ``page`` posts to."""
    action: str = lxml.html.fromstring(page.text).xpath("//form/@action")[index]
    return urljoin(page.url, action)


def add_email_codes(fed: MailFederation, browser: Browser) -> requests.Response:
    """The citizen signs in to the portal and adds e-mail codes for the pre-filled address with the code that
    arrives by SMTP (after one wrong code); the security page listing the factor."""
    federation, inbox = fed.federation, fed.inbox
    portal_sign_in(federation, browser)
    page = browser.get(f"{federation.url}/account/security/")
    assert page.status_code == 200 and "You have no second factor yet." in page.text
    assert browser.form_fields(page, "add-email")["address"] == ADDRESS

    sent = browser.submit(page, form="add-email")

    assert sent.status_code == 200 and sent.headers["Cache-Control"] == "no-store", sent.text[:500]
    assert MASKED in sent.text and ADDRESS not in sent.text
    code = inbox.new_code(0)
    assert code not in sent.text
    wrong = browser.submit(sent, {"code": "00000000" if code != "00000000" else "11111111"}, form="confirm-email")
    assert wrong.status_code == 200 and 'role="alert"' in wrong.text and "did not work" in wrong.text
    added = browser.submit(wrong, {"code": f"{code[:4]} {code[4:]}"}, form="confirm-email")  # spaces are fine
    assert added.status_code == 200, added.text[:500]
    assert f"{MASKED} was added." in added.text and "E-mail codes" in added.text
    return added


def test_a_citizen_adds_email_codes_with_the_code_that_arrived_by_smtp(mail_federation: MailFederation,
                                                                       browser: Browser) -> None:
    federation, inbox = mail_federation.federation, mail_federation.inbox

    add_email_codes(mail_federation, browser)

    listed = browser.get(f"{federation.url}/account/security/")
    assert listed.status_code == 200 and "E-mail codes" in listed.text and MASKED in listed.text
    account = account_id(federation)
    svc = services(federation)
    [factor] = svc.authenticators.of(account)
    assert (factor.kind, factor.name) == (FactorKind.EMAIL, MASKED)
    assert svc.authenticators.email_address(account, factor.authenticator_id) == ADDRESS
    assert any(e.kind == AuditKind.AUTHENTICATOR_ADDED.value for e in svc.audit.events(account_id=account,
                                                                                        limit=100))
    # the code's message and the notice of the factor added, both to the verified address; only one code ever
    [code] = inbox.codes()
    messages = inbox.messages()
    assert len(messages) == 2 and all(rcpt == [ADDRESS] for rcpt, _ in messages)
    assert code not in messages[1][1].get_content()


def test_an_app_asking_for_mfa_gets_a_step_up_answered_by_an_emailed_code(mail_federation: MailFederation,
                                                                          browser: Browser) -> None:
    federation, inbox = mail_federation.federation, mail_federation.inbox
    add_email_codes(mail_federation, browser)
    codes_before = len(inbox.codes())

    with relying_party(federation) as rp:
        page = browser.get(f"{rp.url}/login", params={"claims": MFA_ESSENTIAL})

        assert page.status_code == 200 and "Confirm it is you" in page.text, page.text[:500]
        assert page.headers["Cache-Control"] == "no-store"
        assert f"Send a code to {MASKED}" in page.text and 'name="code"' not in page.text
        assert len(inbox.codes()) == codes_before  # nothing is sent until the person asks
        sent = browser.submit(page)  # "Send a code to a•••@example.org"

        assert sent.status_code == 200 and f"We sent a code to {MASKED}" in sent.text, sent.text[:500]
        assert f"Send a new code to {MASKED}" in sent.text
        code = inbox.new_code(codes_before)
        assert code not in sent.text
        done = browser.submit(sent, {"code": code})

        assert done.status_code == 200, done.text[:500]
        [outcome] = rp.outcomes
        claims = outcome.id_token_claims
        assert claims is not None and claims["acr"] == REFEDS_MFA, outcome
        assert {"otp", "mfa"} <= set(claims["amr"])
    svc = services(federation)
    [factor] = svc.authenticators.of(account_id(federation))
    assert factor.last_used_at is not None


def test_a_wrong_code_shows_the_page_again_and_a_used_page_is_refused(mail_federation: MailFederation,
                                                                       browser: Browser) -> None:
    federation, inbox = mail_federation.federation, mail_federation.inbox
    add_email_codes(mail_federation, browser)
    codes_before = len(inbox.codes())

    with relying_party(federation) as rp:
        page = browser.get(f"{rp.url}/login", params={"claims": MFA_ESSENTIAL})
        assert page.status_code == 200 and "Confirm it is you" in page.text, page.text[:500]
        sent = browser.submit(page)
        code = inbox.new_code(codes_before)
        old_fields, old_action = browser.form_fields(sent), _action(sent)

        wrong = browser.submit(sent, {"code": "00000000" if code != "00000000" else "11111111"})

        assert wrong.status_code == 200 and "That code did not work" in wrong.text, wrong.text[:500]
        assert f"We sent a code to {MASKED}" in wrong.text and _action(wrong) != old_action
        assert rp.outcomes == []
        # the page the wrong code was entered on is used up: even the right code posted to it is refused
        replayed = browser.post(old_action, {**old_fields, "code": code}, initiator=sent.url)
        assert replayed.status_code == 400 and USED_UP in replayed.text, replayed.text[:500]
        assert rp.outcomes == []

        done = browser.submit(wrong, {"code": code})  # the page shown again takes the code

        assert done.status_code == 200, done.text[:500]
        [outcome] = rp.outcomes
        assert outcome.id_token_claims is not None and outcome.id_token_claims["acr"] == REFEDS_MFA
        # and the page the right code was entered on cannot answer the app a second time; the sign-in renewed
        # the browser's session, so the post carries a CSRF token of the new one (the handle must refuse it)
        token = browser.form_fields(browser.get(f"{federation.url}/account/security/"), "add-email")["csrf_token"]
        again = browser.post(_action(wrong), {"csrf_token": token, "code": code}, initiator=wrong.url)
        assert again.status_code == 400 and USED_UP in again.text, again.text[:500]
        assert len(rp.outcomes) == 1
    assert len(inbox.codes()) == codes_before + 1  # one code sent, used once
