"""The pending records of the operator console (issue 19; ``broker.journeys.console``), stored and read by the
codec of ``broker.core.pending_records``. Times are whole seconds since the Unix epoch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from broker.core.pending_kinds import Kind
from broker.core.pending_records import PendingRecord


@dataclass(frozen=True)
class ConsoleSignIn(PendingRecord):
    """A console sign-in between its button and the login's return: bound to the browser that pressed it, used
    once. ``asked_at``: the sign-in that comes back must be newer (a fresh authentication, not an old session);
    ``then``: the console page to open after it."""

    KIND: ClassVar[Kind] = Kind.CONSOLE_SIGN_IN
    asked_at: int
    then: str


@dataclass(frozen=True)
class ConsoleSession(PendingRecord):
    """An operator's console session, apart from the SSO session it was opened in (``sid``): it ends when that one
    does, after ``ConsolePolicy.idle`` without a request, and ``ConsolePolicy.lifetime`` after ``signed_in_at``."""

    KIND: ClassVar[Kind] = Kind.CONSOLE_SESSION
    account_id: str
    sid: str
    signed_in_at: int
    last_seen: int
    #: roles the sign-in's upstream groups gave (``ConsolePolicy.role_mappings``), for this session only
    mapped_roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConsoleAppPreview(PendingRecord):
    """An app registration an operator previewed (``core.party_admin``): exactly what "Apply" registers, so the
    operator applies what they checked, never a second upload. Bound to the browser and to the operator's
    account; used once."""

    KIND: ClassVar[Kind] = Kind.CONSOLE_APP_PREVIEW
    account_id: str
    #: an ``AppKind``; or ``"saml-settings"``, a SAML app's changed settings (``broker.web.console_app_settings``:
    #: ``document`` is then the app's entity id, ``settings`` {"settings", "clear"}); or ``"release-policy"``, a
    #: release policy's text (``broker.web.console_policy``: ``document`` is the text, ``settings`` "{}")
    kind: str
    document: str
    #: the operator's settings of a SAML app, as JSON
    settings: str
