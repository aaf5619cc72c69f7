"""Disabling an account and enabling it again (issue 18, events to apps): an operator's action, taken with
``broker accounts disable|enable`` today and by the operator console later, both through this journey.

- ``disable``: the account is marked disabled first (a sign-in that starts after is refused), then every live SSO
  session of it ends as "sign out everywhere" ends them (``session_end.ended_all``: their grants revoked,
  back-channel logout tokens queued, CAEP ``session-revoked``) and its other OpenID grants are revoked too; the
  apps' event streams get RISC ``account-disabled`` (RISC 1.0 §2.3) and the audit log ``ACCOUNT_DISABLED``.
- ``enable`` clears it: RISC ``account-enabled`` (RISC 1.0 §2.4) and ``ACCOUNT_ENABLED``.
- While disabled, the account signs in nowhere (``refuse_disabled``): not with an upstream (``login.sign_in``,
  checked on the account the identity is linked to, before any step-up), not from an SSO session
  (``login.answer_from_session``), not with a passkey (``passwordless.finish``); the token endpoint refuses its
  tokens itself (``broker.downstream.oidc.provider``). The app hears ``AccountDisabled`` (RequestDenied /
  ``access_denied``), and a ``LOGIN_FAILED`` audit record names the account.

The operator's reason is kept with the account (``broker accounts show``) and erased with it. The audit record
and the event carry only a RISC reason code (``hijacking``, ``bulk-account``): free text typed by an operator may
hold the very personal data the audit log never holds (``core.audit``), and apps need no more than the code.

Also here: ``identifier_changed`` (RISC 1.0 §2.5), which the login journey emits when a sign-in brings a verified
e-mail address other than the one its identity asserted last.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from broker.core import errors
from broker.core.audit import AuditKind
from broker.core.model import Account, LoginRequest
from broker.core.security_events import SecurityEvent
from broker.journeys import account_data, session_end
from broker.journeys.context import DownstreamFailure, Journeys

#: RISC 1.0 §2.3: the values of account-disabled's ``reason`` member
RISC_REASONS = frozenset({"hijacking", "bulk-account"})
#: the longest reason the operator may give (``accounts.disabled_reason``)
MAX_REASON = 255
MAX_OPERATOR = 64


class UnknownAccount(LookupError):
    """No account has that id."""


@dataclass(frozen=True)
class StatusChange:
    """What ``disable`` or ``enable`` did. ``changed`` False: the account was in that state already, and nothing
    was done (no event, no audit record)."""

    account_id: str
    changed: bool
    sessions_ended: int = 0
    events_queued: int = 0


@dataclass(frozen=True)
class AccountStatus:
    """An account as the operator sees it (``broker accounts show``): no claim value, no subject."""

    account_id: str
    created_at: datetime
    disabled_at: datetime | None
    disabled_reason: str | None
    #: the linked sign-in methods, by their upstreams' display names, in the order they were linked
    sign_in_methods: tuple[str, ...]
    live_sessions: int


def checked_reason(reason: str | None) -> str | None:
    """The operator's reason, trimmed (None when blank); ``ValueError`` for one too long or not printable."""
    if reason is None or not reason.strip():
        return None
    reason = reason.strip()
    if len(reason) > MAX_REASON or not reason.isprintable():
        raise ValueError(f"the reason must be printable text of at most {MAX_REASON} characters")
    return reason


def _operator(operator: str) -> str:
    shown = "".join(char for char in operator if char.isprintable())[:MAX_OPERATOR]
    return shown or "unknown operator"


def _account(j: Journeys, account_id: str) -> Account:
    account = j.accounts.get(account_id) if account_id else None
    if account is None:
        raise UnknownAccount(account_id)
    return account


def _emit(j: Journeys, event: SecurityEvent, account_id: str, now: datetime,
          details: Mapping[str, str] | None = None) -> int:
    return j.security_events.emit(event, account_id, now, details) if j.security_events is not None else 0


def disable(j: Journeys, account_id: str, reason: str | None, operator: str) -> StatusChange:
    """Disable the account (module docstring); ``UnknownAccount``, or ``ValueError`` for an unusable reason.
    ``operator`` names who did it, for the audit log."""
    reason = checked_reason(reason)
    account = _account(j, account_id)
    if account.disabled_at is not None:
        return StatusChange(account_id, changed=False)
    now = j.now()
    j.accounts.set_disabled(account_id, now, reason)
    live = [record.sid for record in j.sso_sessions.active(account_id, now)]
    ended = j.sso_sessions.end_all(account_id, now)
    session_end.ended_all(j, account_id, live, now)
    revoked = _revoke_every_grant(j, account_id, now)
    code = reason if reason in RISC_REASONS else None
    details = {"reason": code} if code else None
    pushed = _emit(j, SecurityEvent.ACCOUNT_DISABLED, account_id, now, details)
    j.audit(AuditKind.ACCOUNT_DISABLED, account_id=account_id,
            reason=f"by {_operator(operator)}; reason {code or ('other' if reason else 'none')}; "
                   f"{ended} sessions ended; {revoked} other grants revoked; {pushed} account-disabled events")
    return StatusChange(account_id, True, ended, pushed)


def _revoke_every_grant(j: Journeys, account_id: str, now: datetime) -> int:
    """Revoke the account's OpenID grants at every app it used or consented to, also those of sessions already
    over (a refresh token outlives its session): a hijacked account's tokens must not come back to life when it
    is enabled again. How many were still live."""
    apps = {consent.party_id for consent in j.consents.in_force(account_id)}
    apps |= {use.party_id for use in account_data.apps_used(j, account_id)}
    return sum(j.grants.revoke_for(party_id, account_id, now) for party_id in sorted(apps)
               if account_data.revokes_grants(j, party_id))


def enable(j: Journeys, account_id: str, operator: str) -> StatusChange:
    """Enable the disabled account again (module docstring); ``UnknownAccount`` when there is none."""
    account = _account(j, account_id)
    if account.disabled_at is None:
        return StatusChange(account_id, changed=False)
    now = j.now()
    j.accounts.set_disabled(account_id, None, None)
    pushed = _emit(j, SecurityEvent.ACCOUNT_ENABLED, account_id, now)
    j.audit(AuditKind.ACCOUNT_ENABLED, account_id=account_id,
            reason=f"by {_operator(operator)}; {pushed} account-enabled events")
    return StatusChange(account_id, True, 0, pushed)


def status(j: Journeys, account_id: str) -> AccountStatus:
    """The account's state, its sign-in methods and how many SSO sessions it has live; ``UnknownAccount``."""
    account = _account(j, account_id)
    methods = tuple(account_data.upstream_name(j, identity.upstream)
                    for identity in j.accounts.identities(account_id))
    return AccountStatus(account_id, account.created_at, account.disabled_at, account.disabled_reason, methods,
                         len(j.sso_sessions.active(account_id, j.now())))


def refuse_disabled(j: Journeys, account: Account | None, login: LoginRequest, upstream: str | None) -> None:
    """Stop a sign-in of a disabled ``account`` (None: a new account, never disabled): ``DownstreamFailure`` with
    ``AccountDisabled``, which the app hears in its protocol (a page when it can no longer be told), audited as a
    failed login naming the account."""
    if account is None or account.disabled_at is None:
        return
    j.audit(AuditKind.LOGIN_FAILED, account_id=account.account_id, upstream=upstream, downstream=login.downstream,
            reason="account disabled")
    raise DownstreamFailure(errors.AccountDisabled(
        detail=f"account {account.account_id} disabled since {account.disabled_at.isoformat()}"), login)


def identifier_changed(j: Journeys, account_id: str, now: datetime) -> int:
    """RISC 1.0 §2.5 ``identifier-changed`` about the account, to the apps that subscribed: how many SETs were
    queued.

    Sent **without** ``new-value``: the SET goes to every subscribed app the account used, also to apps the
    release policy or the citizen's consent never gave the e-mail address, and those must not learn the address
    through an event. The subject is each app's own pairwise ``iss_sub`` (``broker.downstream.ssf.tokens``), as in
    every SET, never the address. An app that may receive the address reads the new one from its next ID token
    or UserInfo answer."""
    return _emit(j, SecurityEvent.IDENTIFIER_CHANGED, account_id, now)
