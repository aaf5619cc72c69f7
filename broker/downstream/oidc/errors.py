"""OAuth 2.0 / OpenID Connect errors of the provider endpoints.

Errors of an authorization request are ``BrokerError``s: the login pipeline sends them back to the client's
redirect URI (RFC 6749 §4.1.2.1, OIDC Core §3.1.2.6) once that URI is known to be registered, and shows a page
before. Errors of the back-channel endpoints (token, UserInfo, revocation, introspection, registration) are
``OAuthError``: a JSON body ``{"error", "error_description"}`` with the status RFC 6749 §5.2 / RFC 6750 §3.1
prescribe.
"""

from __future__ import annotations

from broker.core import errors


class OAuthError(Exception):
    def __init__(self, error: str, description: str, status: int = 400, *, detail: str | None = None,
                 www_authenticate: str | None = None, revoked_grant: str | None = None) -> None:
        super().__init__(f"{error}: {description}")
        #: the grant revoked because of this request (a replay): a security event for the audit log
        self.revoked_grant = revoked_grant
        self.error, self.description, self.status = error, description, status
        #: for the operator's log only
        self.detail = detail or description
        self.www_authenticate = www_authenticate

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


def invalid_client(detail: str) -> OAuthError:
    """RFC 6749 §5.2: 401 with a challenge for the scheme the client tried (always Basic here)."""
    return OAuthError("invalid_client", "client authentication failed", 401, detail=detail,
                      www_authenticate='Basic realm="broker"')


def invalid_grant(detail: str, revoked_grant: str | None = None) -> OAuthError:
    """The same words for every reason (unknown, expired, used, another client's): nothing to probe."""
    return OAuthError("invalid_grant", "the authorization code or refresh token is invalid or expired",
                      detail=detail, revoked_grant=revoked_grant)


class UnsupportedResponseType(errors.InvalidRequest):
    oidc_error = "unsupported_response_type"
    default_message = "The application asked for a kind of sign-in answer this service does not give."


class InvalidScope(errors.InvalidRequest):
    oidc_error = "invalid_scope"
    default_message = "The application asked for access this service does not grant."


class RequestNotSupported(errors.InvalidRequest):
    oidc_error = "request_not_supported"


class RequestUriNotSupported(errors.InvalidRequest):
    oidc_error = "request_uri_not_supported"


class RegistrationNotSupported(errors.InvalidRequest):
    oidc_error = "registration_not_supported"
