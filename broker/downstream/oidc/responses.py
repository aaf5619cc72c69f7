"""The authorization response back to the client (RFC 6749 §4.1.2, OIDC Core §3.1.2.5-§3.1.2.6).

In ``query`` mode the fields are added to the redirect URI's query; in ``form_post`` mode (OAuth 2.0 Form
Post Response Mode) a page posts them, so the code never sits in a URL, a Referer or a browser history.
Every response carries ``iss`` (RFC 9207 §2) so a client talking to several providers can tell which one
answered (mix-up attacks).
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit, urlunsplit

from broker.core import errors
from broker.core.model import LoginRequest
from broker.core.outcomes import PostForm


def with_query(uri: str, fields: list[tuple[str, str]]) -> str:
    parts = urlsplit(uri)
    query = "&".join(q for q in (parts.query, urlencode(fields)) if q)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def authorization_response(login: LoginRequest, issuer: str, fields: list[tuple[str, str]]) -> str | PostForm:
    """A redirect URL (query mode) or a form to post (form_post), to the checked ``login.return_to``."""
    answer = [*fields]
    if login.relay_state is not None:
        answer.append(("state", login.relay_state))
    answer.append(("iss", issuer))
    if login.state("response_mode") == "form_post":
        return PostForm(login.return_to, tuple(answer))
    return with_query(login.return_to, answer)


def success(login: LoginRequest, issuer: str, code: str) -> str | PostForm:
    return authorization_response(login, issuer, [("code", code)])


def failure(login: LoginRequest, issuer: str, error: errors.BrokerError) -> str | PostForm:
    """The error code and the person-readable message; the operator's detail stays in the log."""
    return authorization_response(login, issuer, [("error", error.oidc_error), ("error_description", error.message)])
