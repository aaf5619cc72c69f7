"""The kinds of server-side pending state (``broker.core.ports.PendingStore``), one member per kind.

A pending record is only ever found under the kind it was stored under, and the kind is part of what seals it
at rest (``broker.storage.pending_seal``) and of its Redis key. The values are therefore stored data: renaming
one orphans every row and every login in flight under it. Add members; never change a value
(``tests/core/test_pending_kinds.py`` pins them).
"""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    # a login request waiting for the person to pick an upstream (discovery); put by broker.web.login
    LOGIN = "login"
    # a login sent to an upstream OIDC provider, keyed by its OAuth state; put by broker.web.login
    OIDC_UPSTREAM = "oidc-upstream"
    # a login sent to an upstream SAML IdP, keyed by its RelayState; put by broker.web.saml_send
    SAML_UPSTREAM = "saml-upstream"
    # an upstream SAML assertion ID, kept until it expires so it is never accepted twice; put by broker.web.saml_sp
    SAML_ASSERTION = "saml-assertion"
    # a client assertion (RFC 7523) jti, kept until it expires so it is used once; put by broker.web.services
    CLIENT_ASSERTION = "client-assertion"
    # a login waiting for the consent page's answer; put by broker.web.consent_gate
    CONSENT = "consent"
    # an offer to link a new upstream to the account its e-mail address matches; put by broker.web.link_offer
    LINK_OFFER = "link-offer"
    # a link offer proving the existing account at an upstream OIDC provider; put by broker.web.link_offer
    LINK_OFFER_OIDC = "oidc-link-offer"
    # a link offer proving the existing account at an upstream SAML IdP; put by broker.web.link_offer
    LINK_OFFER_SAML = "saml-link-offer"
    # a proven link offer waiting for the person's confirmation; put by broker.web.link_offer
    LINK_OFFER_CONFIRM = "link-offer-confirm"
    # which account asked the portal to link a sign-in method, and when, until the upstream answers;
    # put by broker.web.linking
    LINK_PROOF = "link"
    # a portal link request sent to an upstream OIDC provider, keyed by its OAuth state; put by broker.web.linking
    LINK_OIDC = "oidc-link"
    # a portal link request sent to an upstream SAML IdP, keyed by its RelayState; put by broker.web.linking
    LINK_SAML = "saml-link"
    # a proven portal link waiting for the person's confirmation; put by broker.web.linking
    LINK_CONFIRM = "link-confirm"
    # an OIDC RP-initiated logout waiting for its confirmation page; put by broker.web.oidc_provider
    OIDC_LOGOUT = "oidc-logout"
    # the chain of a SAML single logout at the broker's IdP, between its steps; put by broker.web.saml_logout
    SAML_LOGOUT = "saml-logout"
    # a LogoutRequest sent to the session's upstream SAML IdP, keyed by its RelayState;
    # put by broker.web.saml_upstream_logout
    SAML_UPSTREAM_LOGOUT = "saml-upstream-logout"
    # a LogoutResponse owed to an upstream SAML IdP after the local logout; put by broker.web.saml_sp_slo
    SAML_UPSTREAM_LOGOUT_REPLY = "saml-upstream-logout-reply"
    # a sign-in waiting for the person's second factor (step-up); put by broker.journeys.step_up
    STEP_UP = "step-up"
    # an authenticator app being enrolled, waiting for its first code; put by broker.journeys.authenticators
    TOTP_ENROLMENT = "totp-enrolment"
    # a passkey being registered in the portal, waiting for the browser's answer; put by broker.journeys.passkeys
    PASSKEY_ENROLMENT = "passkey-enrolment"
    # a login waiting for the browser's passkey (passwordless sign-in); put by broker.journeys.passwordless
    PASSKEY_SIGN_IN = "passkey-sign-in"
    # a sign-in enrolling its first second factor at the step-up, waiting for the app's first code, then for the
    # person to have seen the recovery codes; put by broker.journeys.step_up_enrol
    STEP_UP_ENROLMENT = "step-up-enrolment"
    STEP_UP_ENROLLED = "step-up-enrolled"
    # a new account waiting for the browser's first passkey (sign-up with a passkey alone);
    # put by broker.journeys.passkey_signup
    PASSKEY_SIGN_UP = "passkey-sign-up"
    # an e-mail address being enrolled for e-mail codes, waiting for the code sent there;
    # put by broker.journeys.email_enrolment
    EMAIL_ENROLMENT = "email-enrolment"
    # an operator's console sign-in waiting for the login to come back; put by broker.journeys.console
    CONSOLE_SIGN_IN = "console-sign-in"
    # an operator's console session (its cookie holds the handle); put by broker.journeys.console
    CONSOLE_SESSION = "console-session"
    # an app registration an operator previewed, waiting for "Apply"; put by broker.web.console_apps
    CONSOLE_APP_PREVIEW = "console-app-preview"
