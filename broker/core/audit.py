"""Security events the broker must be able to show afterwards (who signed in where, what was refused).

An event names the account only by its pseudonymous id and the parties by their registered names; it
never holds a token, an assertion, an e-mail address or a name, so erasing an account leaves the audit
trail intact and harmless. The store chains the records by hash so that editing or deleting one is detected
(``broker.core.audit_chain``; ``broker audit verify``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum


class AuditKind(Enum):
    LOGIN_SUCCEEDED = "login-succeeded"
    LOGIN_FAILED = "login-failed"
    REQUEST_REFUSED = "request-refused"  # e.g. a form posted without its CSRF token
    RATE_LIMITED = "rate-limited"
    REGISTRATION_CHANGED = "registration-changed"
    LOGGED_OUT = "logged-out"
    #: a replayed code, a reused refresh token: the grant and its tokens were revoked
    GRANT_REVOKED = "grant-revoked"
    CLIENT_AUTH_FAILED = "client-auth-failed"
    CONSENT_DECLINED = "consent-declined"
    #: an upstream identity linked to an account, or removed from it
    LINKED = "identity-linked"
    UNLINKED = "identity-unlinked"
    #: an account erased: the record keeps only its pseudonymous id
    ACCOUNT_DELETED = "account-deleted"
    #: an account created without an upstream (sign-up with a passkey alone, ``broker.journeys.passkey_signup``);
    #: a first upstream sign-in creates its account within ``LOGIN_SUCCEEDED``
    ACCOUNT_CREATED = "account-created"
    #: the operator disabled an account, or enabled it again (``broker.journeys.account_status``); the reason
    #: names the operator and only a RISC reason code, never the operator's free text
    ACCOUNT_DISABLED = "account-disabled"
    ACCOUNT_ENABLED = "account-enabled"
    KEY_ROTATED = "key-rotated"
    CONSENT_GIVEN = "consent-given"
    CONSENT_WITHDRAWN = "consent-withdrawn"
    #: a second factor verified at step-up, or a wrong code (the reason says which)
    SECOND_FACTOR = "second-factor"
    #: a second factor enrolled or removed in the portal
    AUTHENTICATOR_ADDED = "authenticator-added"
    AUTHENTICATOR_REMOVED = "authenticator-removed"
    #: the risk rules asked for a step-up or refused a sign-in (the reason names the rule and the signals)
    RISK_CHALLENGE = "risk-challenge"
    #: an e-mail notice (a second factor changed) the mail server refused or could not take; the reason says why
    NOTICE_NOT_SENT = "notice-not-sent"
    #: an ended session's apps told: grants revoked, back-channel logout tokens queued, front-channel frames
    LOGOUT_NOTICES = "logout-notices"
    #: an operator opened or ended a console session (issue 19; the reason lists the roles)
    OPERATOR_SIGNED_IN = "operator-signed-in"
    OPERATOR_SIGNED_OUT = "operator-signed-out"
    #: a console sign-in or page refused to an account for want of a role (the reason names the permission)
    OPERATOR_REFUSED = "operator-refused"
    #: an operator role granted or revoked (the reason names the role and who granted it)
    OPERATOR_ROLE_GRANTED = "operator-role-granted"
    OPERATOR_ROLE_REVOKED = "operator-role-revoked"
    #: an operator looked a citizen up (record of the citizen's account; the reason names the operator and how)
    OPERATOR_LOOKUP = "operator-lookup"
    #: an operator was shown a citizen's claim values (the reason names the claims and the operator)
    OPERATOR_REVEAL = "operator-reveal"
    #: an automation client got an admin API access token by the client credentials grant (issue 19; the record
    #: names the client, the reason its scope)
    ADMIN_TOKEN_ISSUED = "admin-token-issued"  # noqa: S105 - an event name, not a password
    #: an operator had an IdP metadata source refreshed now (the console; the reason names who and the outcome)
    METADATA_REFRESHED = "metadata-refreshed"
    #: an app's roles changed: a role defined or removed, assigned to or taken from an account, or mapped from an
    #: upstream group (``broker.journeys.app_roles``; the reason names who, the change, and before -> after)
    APP_ROLES_CHANGED = "app-roles-changed"
    #: the release policy replaced from the console or the admin API (``broker.journeys.policy_edit``; the reason
    #: names who, the version before -> after and each changed rule; the reference keys the past version)
    POLICY_CHANGED = "policy-changed"


@dataclass(frozen=True)
class AuditEvent:
    kind: AuditKind
    at: datetime
    account_id: str | None = None
    upstream: str | None = None
    downstream: str | None = None
    #: why, in the broker's words: an error class, "sso", "added saml-sp http://...", an endpoint name
    reason: str | None = None
    #: the support reference shown to the person, to find this event from a help-desk call
    reference: str | None = None
