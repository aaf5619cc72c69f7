"""The HTTP POST of one outgoing message, and what the receiver's answer means (issue 18).

What is trusted: the URL and body were fixed when the message was queued (from the registry and the broker's own
signing); what the receiver answers is not, so only its status code is read (the response body is never
downloaded: ``stream=True`` and the response is closed unread). Redirects are not followed (a receiver that moved
must be re-registered; following would carry a token elsewhere), TLS certificates are verified, and a connection
or an answer that takes longer than ``TIMEOUT`` counts as a failure to retry.

Meaning of a status (``verdict``):

- 2xx: delivered. Back-Channel Logout 1.0 §2.8: "If the logout succeeded, the RP MUST respond with HTTP 200 OK";
  RFC 8935 §2.2: the receiver answers 202 Accepted.
- 400-499 but 408 and 429: refused for good, a dead letter at once. Back-Channel Logout 1.0 §2.8: "If the logout
  request was invalid or the logout failed, the RP MUST respond with 400 Bad Request"; RFC 8935 §2.3 likewise
  answers 400 to a SET it will not take. Sending the same token again cannot succeed.
- 408 Request Timeout, 429 Too Many Requests, 5xx, 1xx/3xx, no connection, a timeout: try again later.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum

import requests

#: seconds to connect, and to wait for the answer's status line once connected
TIMEOUT = (3.05, 10.0)
#: the longest one POST can take (the lease of a claimed batch must exceed a batch of these)
MAX_SECONDS = sum(TIMEOUT)


class Unreachable(Exception):
    """No answer: the connection failed or timed out. The message names the failure's kind only (no URL, no
    body), as it is stored and logged."""


#: POST ``body`` with ``content_type`` (and the ``Authorization`` header, when not None) to ``url`` and return the
#: answer's status code; ``Unreachable`` if none
HttpPost = Callable[[str, str, str, str | None], int]


class Verdict(Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    REFUSED = "refused"


def verdict(status: int) -> Verdict:
    """What the receiver's HTTP ``status`` means for the message (module docstring)."""
    if 200 <= status < 300:
        return Verdict.DELIVERED
    if 400 <= status < 500 and status not in (408, 429):
        return Verdict.REFUSED
    return Verdict.RETRY


def requests_post(session: requests.Session | None = None,
                  timeout: tuple[float, float] = TIMEOUT) -> HttpPost:
    """An ``HttpPost`` over ``requests`` (one connection pool for the worker's life)."""
    http = session if session is not None else requests.Session()

    def post(url: str, body: str, content_type: str, authorization: str | None) -> int:
        headers = {"Content-Type": content_type}
        if authorization is not None:
            headers["Authorization"] = authorization
        try:
            with http.post(url, data=body.encode("utf-8"), headers=headers,
                           timeout=timeout, allow_redirects=False, verify=True, stream=True) as response:
                return int(response.status_code)
        except requests.Timeout as exc:
            raise Unreachable(f"no answer within {timeout[0]:g}/{timeout[1]:g} s ({type(exc).__name__})") from exc
        except requests.RequestException as exc:
            raise Unreachable(f"connection failed ({type(exc).__name__})") from exc

    return post
