"""Driving the broker's OpenID provider as an app would (clients, PKCE, authorize, code redemption, tokens,
userinfo) and forging tokens, shared by the OpenID provider attack and limit tests.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urljoin

import lxml.html  # type: ignore[import-untyped]
import requests

from broker.downstream.oidc.grants import s256
from tests.flows.federation import Federation
from tests.flows.oidc_peers import register_client
from tests.peers.browser import REDIRECT_STATUSES, Browser
from tests.peers.servers import closed_port_url
from tests.security.attack_support import query_of

TIMEOUT = 10


@dataclass(frozen=True)
class Client:
    """A registered client whose redirect URI is a closed port: codes are read from the Location header, so
    nothing redeems them behind the test's back."""

    client_id: str
    redirect_uri: str
    secret: str | None
    auth_method: str


def client(federation: Federation, client_id: str = "city-app", *, auth_method: str = "client_secret_basic",
           redirect_uri: str | None = None, **metadata: Any) -> Client:
    uri = redirect_uri or f"{closed_port_url()}/cb"
    secret = register_client(federation, client_id, [uri], auth_method=auth_method, **metadata)
    return Client(client_id, uri, secret, auth_method)


@dataclass(frozen=True)
class Pkce:
    verifier: str

    @property
    def challenge(self) -> str:
        return s256(self.verifier)

    @staticmethod
    def new() -> Pkce:
        return Pkce(secrets.token_urlsafe(48))


def authorize_url(federation: Federation, c: Client, params: Mapping[str, str | None] | None = None,
                  pkce: Pkce | None = None) -> str:
    """The authorization request; a parameter given as None is left out."""
    query: dict[str, str | None] = {"response_type": "code", "client_id": c.client_id, "redirect_uri": c.redirect_uri,
                                    "scope": "openid profile email", "state": "st-1", "nonce": "n-1"}
    if pkce is not None:
        query.update(code_challenge=pkce.challenge, code_challenge_method="S256")
    query.update(params or {})
    return f"{federation.url}/oidc/authorize?" + urlencode({k: v for k, v in query.items() if v is not None})


def walk(browser: Browser, url: str, stop_at: str) -> requests.Response:
    """Follow redirects and self-submitting pages one by one; stop at the redirect to ``stop_at`` (never
    followed: nothing listens there) or at the first page that is neither."""
    answer = browser.get(url, follow=False)
    for _ in range(20):
        location = answer.headers.get("Location")
        if answer.status_code in REDIRECT_STATUSES and location:
            target = urljoin(answer.url, location)
            if target.startswith(stop_at):
                return answer
            answer = browser.get(target, follow=False)
        elif answer.status_code == 200 and browser.is_self_submitting(answer):
            form = lxml.html.fromstring(answer.text).forms[0]
            if form.action.startswith(stop_at) or form.xpath(".//button[@name='decision']"):
                return answer  # a form_post to the client, or a question for the person (consent)
            answer = browser.auto_submit(answer, follow=False)
        else:
            return answer
    raise AssertionError(f"more than 20 hops from {url}")


def authorize(browser: Browser, federation: Federation, c: Client, params: Mapping[str, str | None] | None = None,
              pkce: Pkce | None = None) -> requests.Response:
    """The authorization request walked to the broker's answer: a redirect to the client, or a page."""
    return walk(browser, authorize_url(federation, c, params, pkce), c.redirect_uri)


def redirect_fields(answer: requests.Response, c: Client) -> dict[str, str]:
    """The fields of the authorization response at ``c``'s redirect URI (exactly that URI, RFC 6749 §3.1.2)."""
    assert answer.status_code in REDIRECT_STATUSES, (answer.status_code, answer.text[:500])
    location = answer.headers["Location"]
    assert location.split("?", 1)[0] == c.redirect_uri, location
    return query_of(location)


def code_for(browser: Browser, federation: Federation, c: Client, params: Mapping[str, str | None] | None = None,
             pkce: Pkce | None = None) -> str:
    """A real code from a real sign-in (upstream at the demo provider the first time, SSO after)."""
    fields = redirect_fields(authorize(browser, federation, c, params, pkce), c)
    assert "error" not in fields, fields
    assert fields["iss"] == federation.url and fields["state"] == "st-1"
    return fields["code"]


def token_request(federation: Federation, c: Client, data: Mapping[str, str], *, secret: str | None = None,
                  basic: bool | None = None) -> requests.Response:
    """POST to the token endpoint, authenticated the way ``c`` registered (``secret`` overrides its secret,
    ``basic`` forces Basic (True) or the body (False) for a secret)."""
    form = dict(data)
    auth = None
    password = secret if secret is not None else c.secret
    use_basic = basic if basic is not None else c.auth_method == "client_secret_basic"
    if c.auth_method == "none":
        form["client_id"] = c.client_id
    elif password is not None and use_basic:
        auth = (c.client_id, password)
    elif password is not None:
        form.update(client_id=c.client_id, client_secret=password)
    return requests.post(f"{federation.url}/oidc/token", data=form, auth=auth, timeout=TIMEOUT)


def redeem(federation: Federation, c: Client, code: str, pkce: Pkce | None = None,
           **extra: str) -> requests.Response:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": c.redirect_uri, **extra}
    if pkce is not None:
        data["code_verifier"] = pkce.verifier
    return token_request(federation, c, data)


def tokens(browser: Browser, federation: Federation, c: Client,
           params: Mapping[str, str | None] | None = None) -> dict[str, Any]:
    """A sign-in and its redeemed code: the token response."""
    pkce = Pkce.new()
    answer = redeem(federation, c, code_for(browser, federation, c, params, pkce), pkce)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def userinfo(federation: Federation, access_token: str) -> requests.Response:
    return requests.get(f"{federation.url}/oidc/userinfo", headers={"Authorization": f"Bearer {access_token}"},
                        timeout=TIMEOUT)


def assert_clean(answer: requests.Response, *never: str | None) -> None:
    """No stack trace and none of ``never`` (secrets, codes, tokens) in a refusal."""
    assert "Traceback" not in answer.text and 'File "' not in answer.text, answer.text[:500]
    for value in never:
        if value:
            assert value not in answer.text and value not in json.dumps(dict(answer.headers))


def assert_oauth_error(answer: requests.Response, status: int, error: str, *never: str | None) -> None:
    """A back-channel refusal: the status, the JSON error of RFC 6749 §5.2, never cached, nothing leaked."""
    assert answer.status_code == status, (answer.status_code, answer.text[:500])
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.json()["error"] == error, answer.text
    assert answer.headers["Cache-Control"] == "no-store"
    assert_clean(answer, *never)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def unsigned_jwt(claims: Mapping[str, Any]) -> str:
    """``alg: none`` (RFC 7519 §6): a JWT anyone can write."""
    return f"{b64(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{b64(json.dumps(dict(claims)).encode())}."


def payload(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded
