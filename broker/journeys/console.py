"""Operators' sessions at the console and the admin API (issue 19): who is there, with which roles, and since when.

An operator signs in to the console through the broker's own login pipeline, as the built-in party
``core.operators.CONSOLE_PARTY_ID``: the upstreams staff may use and the required level (``[console]``) are that
party's ``allowed_upstreams`` and ``required_acr``, so discovery and the step-up enforce them as for any app.
The sign-in always authenticates afresh (``force_authn``): a citizen's SSO session in the same browser never opens
the console by itself.

When the login comes back (``signed_in``), the console opens a session of its own, apart from the SSO session it
was opened in: a pending record (``ConsoleSession``) under a handle the web layer keeps in a cookie of its own,
path ``/console`` and ``/api/admin``. ``current`` checks it on every request:

- it ends with its SSO session (the browser signed out, or "sign out everywhere"), after ``idle`` without a
  request, and ``lifetime`` after the sign-in, whichever comes first;
- the roles are read from the store each time: a role revoked takes effect at the operator's next request;
  roles given by the upstream's groups (``[console] role_mappings``) are decided at the sign-in, from the groups
  that sign-in asserted, and last as long as the console session (at most ``lifetime``);
- a page or API call names the permission it needs (``core.operators.allowed``); a refusal is audited;
- a dangerous action (``fresh``) needs a sign-in at most ``reauth`` old, else the operator signs in again.

Opening, refusing and ending a console session are audit events with the operator's account and roles.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from broker.core import errors
from broker.core.audit import AuditKind
from broker.core.console_records import ConsoleSession, ConsoleSignIn
from broker.core.model import LoginRequest, Protocol
from broker.core.operators import CONSOLE_PARTY_ID, OperatorGrants, Permission, Role, allowed, mapped_roles
from broker.core.outcomes import Outcome
from broker.core.pending_records import peek_record, put_record, put_record_with_handle, take_record
from broker.journeys import login
from broker.journeys.context import Browser, Journeys

log = logging.getLogger(__name__)
#: the clock difference tolerated between "asked to sign in" and the sign-in's time (one machine's clock)
CLOCK_SLACK = timedelta(seconds=5)
#: a live session's idle deadline is pushed on at most this often (each push rewrites the record)
TOUCH_EVERY = timedelta(seconds=60)
CONSOLE_PATHS = ("/console", "/api/admin")


class SignInNeeded(Exception):
    """No console session for this request (none, ended or expired): the web layer offers the sign-in."""


@dataclass(frozen=True)
class Operator:
    """Who is at the console in this request."""

    account_id: str
    roles: frozenset[Role]
    handle: str
    sid: str
    signed_in_at: datetime

    def may(self, permission: Permission) -> bool:
        return allowed(self.roles, permission)

    @property
    def by(self) -> str:
        """Who acts, as audit records name an operator: ``operator <account id> (<roles>)``, the roles held then."""
        return f"operator {self.account_id} ({', '.join(sorted(r.value for r in self.roles))})"


def sign_in(j: Journeys, browser: Browser, then: str, return_to: Callable[[str], str]) -> Outcome:
    """Start a console sign-in that opens ``then`` (a console path) when it comes back to ``return_to(handle)``."""
    now = j.now()
    if not then.startswith(CONSOLE_PATHS) or "//" in then or "\\" in then:
        then = "/console/"  # never an address outside the console (an open redirect)
    handle = put_record(j.pending, ConsoleSignIn(_epoch(now), then), now + j.settings.pending_login_lifetime)
    browser.bind(handle)
    request = LoginRequest(CONSOLE_PARTY_ID, Protocol.PORTAL, return_to(handle), None, None, frozenset(),
                           force_authn=True)
    return login.begin(j, browser, request)


def signed_in(j: Journeys, browser: Browser, handle: str) -> tuple[str, str]:
    """The login of the console sign-in ``handle`` came back: open a console session for its account when it holds
    a role; the new session's handle and the page to open. ``SignInNeeded`` when the handle is not this browser's
    or was used; ``NotAnOperator`` when the account holds no role (audited)."""
    now = j.now()
    record = take_record(j.pending, ConsoleSignIn, handle, now) if browser.unbind(handle) else None
    sso = browser.sso()
    if record is None or sso is None:
        raise SignInNeeded
    if sso.auth_time < _time(record.asked_at) - CLOCK_SLACK:  # the session is older than the button press
        raise SignInNeeded
    if not _reached(j, sso.acr):
        raise SignInNeeded
    granted, mapped = grants(j).roles_of(sso.account_id), _mapped(j, sso.account_id, sso.upstream)
    if not granted | mapped:
        j.audit(AuditKind.OPERATOR_REFUSED, account_id=sso.account_id, upstream=sso.upstream,
                downstream=CONSOLE_PARTY_ID, reason="console sign-in: the account holds no operator role")
        raise errors.NotAnOperator(detail="console sign-in of an account with no role")
    session = ConsoleSession(sso.account_id, sso.sid, _epoch(now), _epoch(now), tuple(sorted(mapped)))
    new_handle = put_record(j.pending, session, _deadline(j, session))
    from_groups = f"; from {sso.upstream} groups: {', '.join(sorted(mapped))}" if mapped else ""
    j.audit(AuditKind.OPERATOR_SIGNED_IN, account_id=sso.account_id, upstream=sso.upstream,
            downstream=CONSOLE_PARTY_ID, reason="roles " + ", ".join(sorted(granted | mapped)) + from_groups)
    return new_handle, record.then


def current(j: Journeys, browser: Browser, handle: str | None, permission: Permission | None) -> Operator:
    """The operator of this request, allowed ``permission`` (None: any role); ``SignInNeeded`` without a live
    console session,
    ``NotAnOperator`` (audited) when its roles do not allow ``permission``."""
    now = j.now()
    record = peek_record(j.pending, ConsoleSession, handle, now) if handle else None
    if record is None or handle is None:
        raise SignInNeeded
    sso = browser.sso()
    if sso is None or sso.sid != record.sid or sso.account_id != record.account_id \
            or now - _time(record.signed_in_at) > j.settings.console.lifetime:
        take_record(j.pending, ConsoleSession, handle, now)  # its SSO session ended: so does it
        raise SignInNeeded
    roles = grants(j).roles_of(record.account_id) | _known_roles(record.mapped_roles)
    if not roles:
        take_record(j.pending, ConsoleSession, handle, now)
        j.audit(AuditKind.OPERATOR_REFUSED, account_id=record.account_id, downstream=CONSOLE_PARTY_ID,
                reason="console session ended: the account no longer holds a role")
        raise SignInNeeded
    operator = Operator(record.account_id, roles, handle, record.sid, _time(record.signed_in_at))
    if permission is not None and not operator.may(permission):
        j.audit(AuditKind.OPERATOR_REFUSED, account_id=record.account_id, downstream=CONSOLE_PARTY_ID,
                reason=f"{permission.value} not allowed to roles " + ", ".join(sorted(roles)))
        raise errors.NotAnOperator(detail=f"{permission.value} refused")
    if now - _time(record.last_seen) >= TOUCH_EVERY:
        _touch(j, handle, record, now)
    return operator


def fresh(j: Journeys, operator: Operator) -> bool:
    """Whether ``operator`` signed in recently enough for a dangerous action (``[console] reauth_minutes``)."""
    return j.now() - operator.signed_in_at <= j.settings.console.reauth


def sign_out(j: Journeys, handle: str | None) -> None:
    """End the console session ``handle`` (the SSO session stays: the operator is still signed in to apps)."""
    now = j.now()
    record = take_record(j.pending, ConsoleSession, handle, now) if handle else None
    if record is not None:
        j.audit(AuditKind.OPERATOR_SIGNED_OUT, account_id=record.account_id, downstream=CONSOLE_PARTY_ID)


def grants(j: Journeys) -> OperatorGrants:
    if j.operators is None or not j.settings.console.enabled:
        raise errors.NotAnOperator(detail="the console is not enabled")
    return j.operators


def _mapped(j: Journeys, account_id: str, upstream: str) -> frozenset[Role]:
    """The roles ``[console] role_mappings`` give this sign-in: by the groups the identity it used (the account's
    identity at ``upstream`` used last, i.e. just now) asserted in this very sign-in."""
    mappings = j.settings.console.role_mappings
    if not mappings:
        return frozenset()
    used = [c for c in j.accounts.identity_claims(account_id) if c.identity.upstream == upstream]
    if not used:
        return frozenset()
    groups = max(used, key=lambda c: c.identity.last_used).claims.get("groups", ())
    return mapped_roles(mappings, upstream, (groups,) if isinstance(groups, str) else
                        groups if isinstance(groups, tuple) else ())


def _known_roles(names: tuple[str, ...]) -> frozenset[Role]:
    return frozenset(Role(n) for n in names if n in {r.value for r in Role})


def _reached(j: Journeys, acr: str | None) -> bool:
    policy = j.settings.assurance
    reached, needed = policy.rank(acr), policy.rank(j.settings.console.required_acr)
    return reached is not None and needed is not None and reached >= needed


def _touch(j: Journeys, handle: str, record: ConsoleSession, now: datetime) -> None:
    """Push the idle deadline on: the record is replaced under the same handle (the cookie stays)."""
    touched = replace(record, last_seen=_epoch(now))
    if take_record(j.pending, ConsoleSession, handle, now) is None:
        return  # signed out meanwhile, by another request
    put_record_with_handle(j.pending, handle, touched, _deadline(j, touched))


def _deadline(j: Journeys, session: ConsoleSession) -> datetime:
    policy = j.settings.console
    return min(_time(session.last_seen) + policy.idle, _time(session.signed_in_at) + policy.lifetime)


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _time(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)
