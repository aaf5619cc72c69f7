"""The SMTP mailer (``broker.notify.smtp``; issue 17) against a real SMTP server on 127.0.0.1 (aiosmtpd in a
thread): the message as received (headers, UTF-8 subject and body, envelope), STARTTLS with the test run's CA
(and no message when the server does not offer it or its certificate is not trusted), login, and every refusal
or unreachable server as ``MailNotSent`` with a short reason that names no address."""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from broker.core.notify import Mailer, MailNotSent
from broker.notify.smtp import SmtpMailer, SmtpSettings
from tests.peers.tls import throwaway_ca

LOOPBACK = "127.0.0.1"
FROM = "City sign-in <no-reply@city.example>"


@dataclass
class Inbox:
    """What the server received; ``refuse_rcpt``: the RCPT reply instead of accepting."""

    received: list[Envelope] = field(default_factory=list)
    refuse_rcpt: str | None = None
    tls_seen: list[bool] = field(default_factory=list)

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if self.refuse_rcpt is not None:
            return self.refuse_rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.received.append(envelope)
        self.tls_seen.append(session.ssl is not None)
        return "250 Message accepted for delivery"

    def message(self) -> EmailMessage:
        [envelope] = self.received
        assert isinstance(envelope.content, bytes)
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
    return port


def only_user(server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"broker", b"s3cret")
    return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535 itself


@contextmanager
def smtp_server(inbox: Inbox, **smtp_parameters: Any) -> Iterator[int]:
    """An SMTP server on 127.0.0.1 in a thread; its port."""
    port = free_port()
    controller = Controller(inbox, hostname=LOOPBACK, port=port, **smtp_parameters)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def server_tls() -> ssl.SSLContext:
    return throwaway_ca().server_context()


def client_tls() -> ssl.SSLContext:
    """A client context trusting the test run's CA only (host name checked, as the default context does)."""
    return ssl.create_default_context(cafile=str(throwaway_ca().ca_file))


def settings(port: int, **overrides: Any) -> SmtpSettings:
    return replace(SmtpSettings(host=LOOPBACK, from_address=FROM, port=port, starttls=False, timeout_seconds=5),
                   **overrides)


def test_a_message_arrives_with_its_headers_utf8_subject_and_body_and_envelope() -> None:
    inbox = Inbox()
    with smtp_server(inbox) as port:
        mailer: Mailer = SmtpMailer(settings(port))
        mailer.send("anna@example.org", "Stadt-Anmeldung: Änderung » ✓", "Grüße,\nein Gerät wurde hinzugefügt.\n")

    [envelope] = inbox.received
    assert envelope.mail_from == "no-reply@city.example" and envelope.rcpt_tos == ["anna@example.org"]
    assert isinstance(envelope.content, bytes) and envelope.content.isascii()  # any server takes it
    msg = inbox.message()
    assert msg["From"] == FROM and msg["To"] == "anna@example.org"
    assert msg["Subject"] == "Stadt-Anmeldung: Änderung » ✓"
    assert "=?utf-8?" in envelope.content.decode().split("\r\n\r\n")[0]  # RFC 2047 in the raw header
    assert msg.get_content_type() == "text/plain" and msg.get_content_charset() == "utf-8"
    assert msg.get_content().replace("\r\n", "\n") == "Grüße,\nein Gerät wurde hinzugefügt.\n"
    assert str(msg["Message-ID"]).endswith("@city.example>")
    assert parsedate_to_datetime(str(msg["Date"])).tzinfo is not None
    assert inbox.tls_seen == [False]


def test_each_message_has_its_own_message_id() -> None:
    inbox = Inbox()
    with smtp_server(inbox) as port:
        mailer = SmtpMailer(settings(port))
        mailer.send("anna@example.org", "one", "1")
        mailer.send("anna@example.org", "two", "2")
    ids = {email.message_from_bytes(e.content)["Message-ID"] for e in inbox.received if isinstance(e.content, bytes)}
    assert len(ids) == 2


def test_starttls_with_a_trusted_certificate_and_login() -> None:
    inbox = Inbox()
    with smtp_server(inbox, tls_context=server_tls(), require_starttls=True, authenticator=only_user,
                     auth_required=True) as port:
        SmtpMailer(settings(port, starttls=True, username="broker", password="s3cret"),
                   context=client_tls()).send("anna@example.org", "hello", "text")
    assert inbox.tls_seen == [True] and inbox.message().get_content().strip() == "text"


def test_a_wrong_password_is_refused() -> None:
    inbox = Inbox()
    with smtp_server(inbox, tls_context=server_tls(), authenticator=only_user, auth_required=True) as port, \
            pytest.raises(MailNotSent, match=r"^SMTPAuthenticationError 535"):
        SmtpMailer(settings(port, starttls=True, username="broker", password="wrong"),
                   context=client_tls()).send("anna@example.org", "hello", "text")
    assert inbox.received == []


def test_starttls_configured_but_not_offered_sends_nothing() -> None:
    inbox = Inbox()
    with smtp_server(inbox) as port, pytest.raises(MailNotSent, match="not supported by the server: STARTTLS"):
        SmtpMailer(settings(port, starttls=True), context=client_tls()).send("anna@example.org", "hello", "text")
    assert inbox.received == []


def test_starttls_with_an_untrusted_certificate_sends_nothing() -> None:
    inbox = Inbox()
    with smtp_server(inbox, tls_context=server_tls(), require_starttls=True) as port, \
            pytest.raises(MailNotSent, match=r"^TLS: CERTIFICATE_VERIFY_FAILED"):
        SmtpMailer(settings(port, starttls=True)).send("anna@example.org", "hello", "text")  # the system's CAs
    assert inbox.received == []


def test_login_without_tls_is_not_offered_by_the_server_and_nothing_is_sent() -> None:
    inbox = Inbox()
    with smtp_server(inbox, authenticator=only_user, auth_required=True) as port, \
            pytest.raises(MailNotSent, match="not supported by the server: SMTP AUTH"):
        SmtpMailer(settings(port, username="broker", password="s3cret")).send("anna@example.org", "x", "y")
    assert inbox.received == []


def test_a_refused_recipient_is_mail_not_sent_without_the_address() -> None:
    inbox = Inbox(refuse_rcpt="550 5.1.1 <anna@example.org>: Recipient address rejected")
    with smtp_server(inbox) as port, pytest.raises(MailNotSent) as refused:
        SmtpMailer(settings(port)).send("anna@example.org", "hello", "text")
    assert refused.value.reason == "recipient refused: 550 5.1.1 <[address]>: Recipient address rejected"
    assert "anna" not in str(refused.value) and refused.value.__cause__ is None


def test_an_unreachable_server_is_mail_not_sent() -> None:
    with pytest.raises(MailNotSent, match=r"^connection refused$"):
        SmtpMailer(settings(free_port())).send("anna@example.org", "hello", "text")


def test_a_server_that_never_answers_times_out() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind((LOOPBACK, 0))
        silent.listen(1)  # connections queue up, nobody greets them
        port = silent.getsockname()[1]
        with pytest.raises(MailNotSent, match=r"timed out$"):
            SmtpMailer(settings(port, timeout_seconds=0.3)).send("anna@example.org", "hello", "text")


@pytest.mark.parametrize("to", ["anna@example.org\r\nBcc: eve@example.org", "no-address", " anna@example.org",
                                "a@example.org, eve@example.org"])
def test_a_recipient_that_is_not_one_plain_address_is_refused_before_connecting(to: str) -> None:
    with pytest.raises(MailNotSent, match=r"^not sent: not a plain e-mail address$"):
        SmtpMailer(settings(free_port())).send(to, "hello", "text")


def test_a_line_break_in_the_subject_is_refused() -> None:
    with pytest.raises(MailNotSent, match=r"^not sent: "):
        SmtpMailer(settings(free_port())).send("anna@example.org", "hello\r\nBcc: eve@example.org", "text")


def test_a_sender_without_an_address_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="no address"):
        SmtpMailer(settings(25, from_address="City sign-in"))
