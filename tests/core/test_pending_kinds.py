"""The kinds of pending state (``broker.core.pending_kinds``): their values are stored data (the SQL ``kind``
column, the Redis key, the sealed associated data), so a rename would orphan every stored row and every login in
flight. This table is the one place a value may be added; none may change."""

from __future__ import annotations

from broker.core.pending_kinds import Kind

STORED: dict[Kind, str] = {
    Kind.LOGIN: "login",
    Kind.OIDC_UPSTREAM: "oidc-upstream",
    Kind.SAML_UPSTREAM: "saml-upstream",
    Kind.SAML_ASSERTION: "saml-assertion",
    Kind.CLIENT_ASSERTION: "client-assertion",
    Kind.CONSENT: "consent",
    Kind.LINK_OFFER: "link-offer",
    Kind.LINK_OFFER_OIDC: "oidc-link-offer",
    Kind.LINK_OFFER_SAML: "saml-link-offer",
    Kind.LINK_OFFER_CONFIRM: "link-offer-confirm",
    Kind.LINK_PROOF: "link",
    Kind.LINK_OIDC: "oidc-link",
    Kind.LINK_SAML: "saml-link",
    Kind.LINK_CONFIRM: "link-confirm",
    Kind.OIDC_LOGOUT: "oidc-logout",
    Kind.SAML_LOGOUT: "saml-logout",
    Kind.SAML_UPSTREAM_LOGOUT: "saml-upstream-logout",
    Kind.SAML_UPSTREAM_LOGOUT_REPLY: "saml-upstream-logout-reply",
    Kind.STEP_UP: "step-up",
    Kind.TOTP_ENROLMENT: "totp-enrolment",
    Kind.PASSKEY_ENROLMENT: "passkey-enrolment",
    Kind.PASSKEY_SIGN_IN: "passkey-sign-in",
    Kind.STEP_UP_ENROLMENT: "step-up-enrolment",
    Kind.STEP_UP_ENROLLED: "step-up-enrolled",
    Kind.PASSKEY_SIGN_UP: "passkey-sign-up",
    Kind.EMAIL_ENROLMENT: "email-enrolment",
    Kind.CONSOLE_SIGN_IN: "console-sign-in",
    Kind.CONSOLE_SESSION: "console-session",
    Kind.CONSOLE_APP_PREVIEW: "console-app-preview",
}


def test_every_kind_keeps_the_value_stored_under_it() -> None:
    assert {kind.name: kind.value for kind in Kind} == {kind.name: value for kind, value in STORED.items()}
    assert all(str(kind) == value and f"{kind}" == value for kind, value in STORED.items())


def test_no_two_kinds_share_a_value() -> None:
    # an Enum silently makes a repeated value an alias of the first member: count the names, not the members
    assert len({member.value for member in Kind.__members__.values()}) == len(Kind.__members__)


def test_a_stored_value_reads_back_as_its_kind() -> None:
    assert all(Kind(value) is kind for kind, value in STORED.items())
