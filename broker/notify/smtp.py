"""The ``Mailer`` over SMTP (RFC 5321) with the standard library's ``smtplib``: one connection per message.

Each message is connected for (with a timeout), upgraded with STARTTLS (RFC 3207) when configured, the server's
certificate and host name checked against the system's trust store, authenticated (RFC 4954) when a user name is
configured, and handed over with its own envelope sender. STARTTLS is never skipped when configured: a server that
does not offer it gets nothing (a stripped ``STARTTLS`` is a downgrade). The message is plain text in UTF-8
(quoted-printable, so any server takes it) with ``From``, ``To``, ``Subject`` (RFC 2047 when not ASCII), ``Date``
and ``Message-ID`` (RFC 5322 §3.6).

Every failure (refused, unreachable, timed out, TLS, authentication) becomes ``MailNotSent`` with a short reason
that names neither the address nor the message.
"""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

from broker.core.notify import MailNotSent

REASON_LENGTH = 120
_ADDRESS = re.compile(r"[^\s<>()\[\],;:\"']*@[^\s<>()\[\],;:\"']*")


@dataclass(frozen=True)
class SmtpSettings:
    """The SMTP server and the broker's sender (``[mail]``, ``broker.config``)."""

    host: str
    #: ``From`` (an address, or ``Name <address>``); its address is also the envelope sender
    from_address: str
    port: int = 587
    #: upgrade with STARTTLS before anything else; plain only for a server on this machine (the config checks)
    starttls: bool = True
    username: str = ""
    password: str = field(default="", repr=False)
    timeout_seconds: float = 10.0


def envelope_sender(from_address: str) -> str:
    """The bare address of a ``From`` value (``City <noreply@city.example>`` -> ``noreply@city.example``)."""
    return parseaddr(from_address)[1]


def message(settings: SmtpSettings, to: str, subject: str, text: str) -> EmailMessage:
    """The message as sent; ``ValueError`` for a header value that cannot be one (a line break, no address)."""
    sender = envelope_sender(settings.from_address)
    if "@" not in to or any(c in to for c in "\r\n<>,;") or to != to.strip():
        raise ValueError("not a plain e-mail address")
    msg = EmailMessage()
    msg["From"] = settings.from_address
    msg["To"] = Address(addr_spec=to)
    msg["Subject"] = subject
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    msg.set_content(text, charset="utf-8", cte="quoted-printable")
    return msg


def _reason(exc: BaseException) -> str:
    """A short reason for the log and the audit trail: the server's code and words, or the kind of failure."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [f"{code} {_text(words)}" for code, words in exc.recipients.values()]
        reason = "recipient refused: " + "; ".join(codes)
    elif isinstance(exc, smtplib.SMTPResponseException):
        reason = f"{type(exc).__name__} {exc.smtp_code} {_text(exc.smtp_error)}"
    elif isinstance(exc, smtplib.SMTPNotSupportedError):
        reason = f"not supported by the server: {exc}"
    elif isinstance(exc, ssl.SSLError | ssl.CertificateError):
        reason = f"TLS: {getattr(exc, 'reason', None) or exc}"
    elif isinstance(exc, TimeoutError):
        reason = "timed out"
    elif isinstance(exc, ConnectionRefusedError):
        reason = "connection refused"
    elif isinstance(exc, socket.gaierror):
        reason = "unknown host"
    elif isinstance(exc, OSError) and exc.strerror:
        reason = exc.strerror
    else:
        reason = f"{type(exc).__name__}: {exc}"
    # a server may echo the recipient ("550 <anna@example.org>: unknown"): no address leaves this module
    return " ".join(_ADDRESS.sub("[address]", reason).split())[:REASON_LENGTH]


def _text(words: bytes | str) -> str:
    return words.decode("utf-8", "replace") if isinstance(words, bytes) else str(words)


class SmtpMailer:
    """``broker.core.notify.Mailer`` over one SMTP server. ``context``: the TLS client context (default: the
    system's trust store, host names checked); tests pass one trusting their own CA."""

    def __init__(self, settings: SmtpSettings, context: ssl.SSLContext | None = None) -> None:
        if "@" not in envelope_sender(settings.from_address):
            raise ValueError("the sender has no address")
        self.settings = settings
        self._context = context

    def send(self, to: str, subject: str, text: str) -> None:
        try:
            msg = message(self.settings, to, subject, text)
        except ValueError as exc:
            raise MailNotSent(f"not sent: {exc}"[:REASON_LENGTH]) from None
        s = self.settings
        try:
            with smtplib.SMTP(s.host, s.port, timeout=s.timeout_seconds) as smtp:
                if s.starttls:
                    smtp.starttls(context=self._context or ssl.create_default_context())
                if s.username:
                    smtp.login(s.username, s.password)
                smtp.send_message(msg, from_addr=envelope_sender(s.from_address), to_addrs=[to])
        except (smtplib.SMTPException, OSError, ValueError) as exc:
            # ValueError: e.g. a non-ASCII password smtplib cannot encode; OSError includes TLS and timeouts
            raise MailNotSent(_reason(exc)) from None
