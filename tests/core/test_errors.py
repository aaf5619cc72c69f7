"""``broker.core.errors``: every error has a wire form in both protocols and a safe message."""

from __future__ import annotations

import re

import pytest

from broker.core import errors

STATUS = "urn:oasis:names:tc:SAML:2.0:status:"
# SAML 2.0 Core §3.2.2.2
TOP_LEVEL = {STATUS + s for s in ("Requester", "Responder", "VersionMismatch")}
SECOND_LEVEL = {STATUS + s for s in (
    "AuthnFailed", "InvalidAttrNameOrValue", "InvalidNameIDPolicy", "NoAuthnContext", "NoAvailableIDP", "NoPassive",
    "NoSupportedIDP", "PartialLogout", "ProxyCountExceeded", "RequestDenied", "RequestUnsupported",
    "RequestVersionDeprecated", "RequestVersionTooHigh", "RequestVersionTooLow", "ResourceNotRecognized",
    "TooManyResponses", "UnknownAttrProfile", "UnknownPrincipal", "UnsupportedBinding",
)}
# RFC 6749 §4.1.2.1, OIDC Core §3.1.2.6, OpenID Connect Unmet Authentication Requirements 1.0
OIDC_ERRORS = {
    "invalid_request", "unauthorized_client", "access_denied", "unsupported_response_type", "invalid_scope",
    "server_error", "temporarily_unavailable", "interaction_required", "login_required",
    "account_selection_required", "consent_required", "invalid_request_uri", "invalid_request_object",
    "request_not_supported", "request_uri_not_supported", "registration_not_supported",
    "unmet_authentication_requirements",
}


def _all_errors() -> list[type[errors.BrokerError]]:
    found: list[type[errors.BrokerError]] = [errors.BrokerError]
    for cls in found:
        found.extend(sub for sub in cls.__subclasses__() if sub not in found)
    return found


ALL = _all_errors()


def test_the_hierarchy_is_seen() -> None:
    defined = {obj for obj in vars(errors).values() if isinstance(obj, type) and issubclass(obj, errors.BrokerError)}
    assert len(defined) >= 14
    assert defined <= set(ALL)


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_saml_status(cls: type[errors.BrokerError]) -> None:
    assert cls.saml_status.startswith(STATUS)
    assert cls.saml_status in TOP_LEVEL
    if cls.saml_substatus is not None:
        assert cls.saml_substatus.startswith(STATUS)
        assert cls.saml_substatus in SECOND_LEVEL


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_oidc_error_and_http_status(cls: type[errors.BrokerError]) -> None:
    assert cls.oidc_error
    assert re.fullmatch(r"[a-z_]+", cls.oidc_error)
    assert cls.oidc_error in OIDC_ERRORS
    assert 400 <= cls.http_status <= 599


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_message_is_plain_text_without_placeholders(cls: type[errors.BrokerError]) -> None:
    error = cls()
    assert error.message == cls.default_message
    assert str(error) == cls.default_message
    assert error.message.strip()
    for placeholder in ("{", "}", "%s", "%r", "%("):
        assert placeholder not in error.message


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_detail_stays_out_of_the_message(cls: type[errors.BrokerError]) -> None:
    error = cls(detail="secret-token-value in request _abc")
    assert error.detail == "secret-token-value in request _abc"
    assert "secret-token-value" not in str(error)
    assert cls("Custom message.").message == "Custom message."


@pytest.mark.parametrize(
    ("cls", "top", "second", "oidc"),
    [
        (errors.InvalidRequest, "Requester", None, "invalid_request"),
        (errors.UnknownParty, "Requester", "RequestDenied", "unauthorized_client"),
        (errors.UnsupportedNameIdFormat, "Requester", "InvalidNameIDPolicy", "invalid_request"),
        (errors.NoPassive, "Responder", "NoPassive", "login_required"),
        (errors.InsufficientAssurance, "Responder", "NoAuthnContext", "unmet_authentication_requirements"),
        (errors.UnknownUpstream, "Responder", "NoAvailableIDP", "invalid_request"),
        (errors.UpstreamVerificationFailed, "Responder", "AuthnFailed", "access_denied"),
        (errors.ServiceUnavailable, "Responder", None, "temporarily_unavailable"),
    ],
)
def test_documented_mapping(cls: type[errors.BrokerError], top: str, second: str | None, oidc: str) -> None:
    assert cls.saml_status == STATUS + top
    assert cls.saml_substatus == (STATUS + second if second else None)
    assert cls.oidc_error == oidc
