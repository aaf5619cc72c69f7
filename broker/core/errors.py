"""Errors of the broker, each carrying its wire form in both protocols.

    BrokerError                      SAML top-level / second-level status         OIDC error
    ├── InvalidRequest               Requester                                     invalid_request
    │   ├── UnknownParty             Requester / RequestDenied                     unauthorized_client
    │   ├── UnregisteredReturnUrl    Requester / RequestDenied                     invalid_request
    │   ├── UnsupportedBinding       Requester / UnsupportedBinding                invalid_request
    │   ├── InvalidSignature         Requester / RequestDenied                     invalid_request
    │   ├── RequestExpired           Requester / RequestDenied                     invalid_request
    │   └── UnsupportedNameIdFormat  Requester / InvalidNameIDPolicy               invalid_request
    ├── LoginStateInvalid            Responder / AuthnFailed                       access_denied
    ├── NoPassive                    Responder / NoPassive                         login_required
    ├── InsufficientAssurance        Responder / NoAuthnContext                    unmet_authentication_requirements
    ├── UnknownUpstream              Responder / NoAvailableIDP                    invalid_request
    ├── ConsentDeclined              Responder / RequestDenied                     access_denied
    ├── LoginRefused                 Responder / RequestDenied                     access_denied
    ├── AccountDisabled              Responder / RequestDenied                     access_denied
    ├── UpstreamError                Responder / AuthnFailed                       access_denied
    │   └── UpstreamVerificationFailed
    └── ServiceUnavailable           Responder                                     temporarily_unavailable

Messages are shown to people: they say what went wrong without echoing untrusted input or secrets. Each is
marked ``N_`` (``core.texts``) so the web layer finds its translation in the catalogues.
(SAML 2.0 Core §3.2.2.2 status codes; OAuth 2.0 RFC 6749 §4.1.2.1 and OIDC Core §3.1.2.6 error codes.)
"""

from __future__ import annotations

from broker.core.texts import N_

SAML_REQUESTER = "urn:oasis:names:tc:SAML:2.0:status:Requester"
SAML_RESPONDER = "urn:oasis:names:tc:SAML:2.0:status:Responder"
_S = "urn:oasis:names:tc:SAML:2.0:status:"


class BrokerError(Exception):
    saml_status: str = SAML_RESPONDER
    saml_substatus: str | None = None
    oidc_error: str = "server_error"
    http_status: int = 400
    default_message: str = N_("The sign-in could not be completed.")

    def __init__(self, message: str | None = None, *, detail: str | None = None) -> None:
        self.message = message or self.default_message
        #: for the operator's log only, never shown to the person or the party
        self.detail = detail
        super().__init__(self.message)


class InvalidRequest(BrokerError):
    saml_status = SAML_REQUESTER
    oidc_error = "invalid_request"
    default_message = N_("The application sent a sign-in request this sign-in service cannot accept.")


class UnknownParty(InvalidRequest):
    saml_substatus = _S + "RequestDenied"
    oidc_error = "unauthorized_client"
    default_message = N_("The application that sent you here is not registered with this sign-in service.")


class UnregisteredReturnUrl(InvalidRequest):
    saml_substatus = _S + "RequestDenied"
    default_message = N_("The application asked to send you back to an address it has not registered.")


class UnsupportedBinding(InvalidRequest):
    saml_substatus = _S + "UnsupportedBinding"
    default_message = N_("The application used a way of sending the request that is not supported.")


class InvalidSignature(InvalidRequest):
    saml_substatus = _S + "RequestDenied"
    default_message = N_("The application's sign-in request was not signed correctly.")


class RequestExpired(InvalidRequest):
    saml_substatus = _S + "RequestDenied"
    default_message = N_("The application's sign-in request is too old or not yet valid. Please try again.")


class LoginStateInvalid(BrokerError):
    saml_substatus = _S + "AuthnFailed"
    oidc_error = "access_denied"
    default_message = N_(
        "This sign-in has expired or was already completed. Please go back to the application and start again."
    )


class NoPassive(BrokerError):
    saml_substatus = _S + "NoPassive"
    oidc_error = "login_required"
    default_message = N_("You are not signed in, and the application asked not to show a sign-in page.")


class InsufficientAssurance(BrokerError):
    saml_substatus = _S + "NoAuthnContext"
    oidc_error = "unmet_authentication_requirements"
    default_message = N_("The sign-in method used is not strong enough for this application.")


class UnknownUpstream(BrokerError):
    saml_substatus = _S + "NoAvailableIDP"
    oidc_error = "invalid_request"
    default_message = N_("The requested sign-in provider is not available for this application.")


class UpstreamError(BrokerError):
    saml_substatus = _S + "AuthnFailed"
    oidc_error = "access_denied"
    http_status = 502
    default_message = N_("The sign-in provider did not complete the sign-in.")


class UpstreamVerificationFailed(UpstreamError):
    default_message = N_("The answer from the sign-in provider could not be verified, so you were not signed in.")


class ServiceUnavailable(BrokerError):
    oidc_error = "temporarily_unavailable"
    http_status = 503
    default_message = N_("The sign-in service is temporarily unavailable. Please try again in a few minutes.")


class UnsupportedNameIdFormat(InvalidRequest):
    saml_substatus = _S + "InvalidNameIDPolicy"
    default_message = N_("The application asked for a kind of user identifier this service does not issue.")


class ConsentDeclined(BrokerError):
    saml_substatus = _S + "RequestDenied"
    oidc_error = "access_denied"
    http_status = 403
    default_message = N_("You did not allow the application to receive your information, so you were not signed in.")


class LoginRefused(BrokerError):
    """The operator's risk rules refused this sign-in (``core.risk``): the app hears RequestDenied /
    ``access_denied``; the person is told to try again later or contact support, not why."""

    saml_substatus = _S + "RequestDenied"
    oidc_error = "access_denied"
    http_status = 403
    default_message = N_("This sign-in was stopped to protect your account. Please try again later, or contact "
                         "support if it keeps happening.")


class AccountDisabled(BrokerError):
    """The operator disabled the account (``broker.journeys.account_status``; RISC 1.0 §2.3): every sign-in of
    it is refused until it is enabled again. The app hears RequestDenied / ``access_denied``; the person is
    told where to turn, not the operator's reason."""

    saml_substatus = _S + "RequestDenied"
    oidc_error = "access_denied"
    http_status = 403
    default_message = N_("This account has been disabled. Contact the city's help desk.")


class NotAnOperator(BrokerError):
    """A console sign-in (issue 19) by an account that holds no operator role, or a console page or admin API
    call its roles do not allow (``core.operators.allowed``). Never an app's failure: the console is the
    broker's own."""

    oidc_error = "access_denied"
    http_status = 403
    default_message = N_("Your account may not use this part of the operator console.")
