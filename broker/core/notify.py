"""Telling a citizen by e-mail that something changed on their account (issue 17: "the citizen is told by
e-mail" of every change to their second factors).

``Mailer`` is the port: one plain-text (UTF-8) message to one address. The broker's adapter sends it through
an SMTP server (``broker.notify.smtp``); the journeys decide whom to tell and what to say
(``broker.journeys.notices``). A message that could not be handed over raises ``MailNotSent``: the caller logs
and audits it, and the change it announces stands.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class MailNotSent(Exception):
    """The mail server refused the message, or could not be reached; ``reason`` is short and holds neither the
    address nor the message."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Notice:
    """One message to one address: a subject line and a plain-text body."""

    to: str
    subject: str
    text: str


class Mailer(Protocol):
    def send(self, to: str, subject: str, text: str) -> None:
        """Hand one plain-text message to the mail server for ``to``; ``MailNotSent`` when refused or
        unreachable (nothing is retried)."""
        ...


def deliver(mailer: Mailer, notice: Notice) -> None:
    """Send ``notice`` through ``mailer`` (``MailNotSent`` as ``Mailer.send``)."""
    mailer.send(notice.to, notice.subject, notice.text)
