"""An e-mail code (issue 17) through a real SMTP server on 127.0.0.1 (aiosmtpd in a thread): the step-up journey
over the fakes, but with the broker's ``SmtpMailer``; the code that arrives in the message steps the sign-in up,
and the message says what it is for and carries nothing else of the sign-in."""

from __future__ import annotations

import email
import email.policy
import re
import socket
from dataclasses import dataclass, field, replace
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from broker.core.assurance import REFEDS_MFA, Comparison
from broker.core.model import Protocol
from broker.core.outcomes import Page, Redirect
from broker.journeys import login, step_up
from broker.journeys.upstream_answers import upstream_answer
from broker.notify.smtp import SmtpMailer, SmtpSettings
from tests.journeys.fakes_support import UPSTREAMS, World, app, login_request

LOOPBACK = "127.0.0.1"
ADDRESS = "anna@example.org"


@dataclass
class Inbox:
    received: list[Envelope] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.received.append(envelope)
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
    return port


def test_a_code_sent_through_smtp_arrives_and_steps_the_sign_in_up() -> None:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname=LOOPBACK, port=port)
    controller.start()
    try:
        party = app(Protocol.OIDC, allowed=(UPSTREAMS[Protocol.OIDC],))
        w = World([party])
        mailer = SmtpMailer(SmtpSettings(host=LOOPBACK, port=port, from_address="City <no-reply@city.example>",
                                         starttls=False, timeout_seconds=5))
        w.journeys = replace(w.journeys, mailer=mailer)
        w.person(UPSTREAMS[Protocol.OIDC], "anna", email=ADDRESS)

        def sign_in(mfa: bool) -> object:
            request = login_request(party, acr_values=(REFEDS_MFA,), acr_comparison=Comparison.MINIMUM) if mfa \
                else login_request(party)
            outgoing = login.begin(w.journeys, browser, request)
            assert isinstance(outgoing, Redirect)
            handle, reply = w.oidc.reply(outgoing)
            return upstream_answer(w.journeys, browser, Protocol.OIDC, handle, reply, UPSTREAMS[Protocol.OIDC].name)

        browser = w.browser()
        sign_in(mfa=False)
        account_id = w.downstream(party.protocol).answered.pop().result.account.account_id
        factor = w.authenticators.add_email(account_id, "mail", ADDRESS, w.clock.now())
        browser = w.browser()
        first = sign_in(mfa=True)
        assert isinstance(first, Page)

        shown = step_up.send_code(w.journeys, browser, str(first.data["handle"]), factor.authenticator_id)

        assert isinstance(shown, Page) and shown.data["code_sent_to"] and not shown.data["mail_problem"]
        [envelope] = inbox.received
        assert envelope.rcpt_tos == [ADDRESS] and isinstance(envelope.content, bytes)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage) and message["To"] == ADDRESS
        body = message.get_content()
        found = re.search(r"code is: ([0-9]{8})", body)
        assert found is not None and "10 minutes" in body and str(shown.data["handle"]) not in body
        step_up.verify(w.journeys, browser, str(shown.data["handle"]), found.group(1))
    finally:
        controller.stop()

    [answered] = w.downstream(party.protocol).answered
    assert answered.result.acr == REFEDS_MFA and {"otp", "mfa"} <= set(answered.result.amr)
