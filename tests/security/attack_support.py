"""Helpers shared by the attack tests (``test_attack_*.py``): outcomes to assert and ways to walk a login.

Every attack test ends in one of the broker's two kinds of refusal: a SAML error Response posted to the
app's registered AssertionConsumerService (when the app and its return address are trusted), or a readable
page with a support reference and no form to anywhere (when they are not). Nothing may be stored.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import lxml.html  # type: ignore[import-untyped]
import pytest
import requests

from broker.core import flow
from broker.core.model import UpstreamIdentity
from tests.databases import database_for
from tests.flows.federation import ExtraUpstream, Federation, running_federation
from tests.peers.browser import Browser

REQUESTER = "urn:oasis:names:tc:SAML:2.0:status:Requester"
RESPONDER = "urn:oasis:names:tc:SAML:2.0:status:Responder"
DENIED = "urn:oasis:names:tc:SAML:2.0:status:RequestDenied"
AUTHN_FAILED = "urn:oasis:names:tc:SAML:2.0:status:AuthnFailed"
CALLBACK_MARK = "/upstream/oidc/"


def with_param(url: str, name: str, value: str) -> str:
    """``url`` with the query parameter ``name`` set to ``value`` (replaced where present, else added)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(k == name for k, _ in query):
        query = [(k, value if k == name else v) for k, v in query]
    else:
        query.append((name, value))
    return urlunsplit(parts._replace(query=urlencode(query)))


def query_of(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def assert_page(page: requests.Response, status: int) -> None:
    """A readable refusal page: the status, a support reference, no stack trace, no form to anywhere."""
    assert page.status_code == status, (page.status_code, page.text[:500])
    text = page.text
    assert 'class="reference"' in text and "Traceback" not in text
    assert "<form" not in text, "an untrusted request must not be answered with a form to anywhere"


def assert_nothing_stored(federation: Federation) -> None:
    assert federation.accounts() == 0


def walk_to_callback(browser: Browser, url: str) -> str:
    """Follow the broker's and the provider's redirects one by one up to (not into) the broker's callback."""
    while CALLBACK_MARK not in url:
        answer = browser.get(url, follow=False)
        assert answer.status_code in (301, 302, 303, 307, 308), (url, answer.status_code, answer.text[:300])
        url = urljoin(url, answer.headers["Location"])
    return url


def start_login(federation: Federation, browser: Browser, sp: str = "sp1", hint: str | None = None,
                **kwargs: Any) -> str:
    """A Redirect-binding AuthnRequest of ``sp`` walked up to the broker's upstream callback: its URL."""
    _, location = federation.sps[sp].redirect_request(**kwargs)
    if hint is not None:
        location += f"&idp_hint={hint}"
    return walk_to_callback(browser, location)


def login_with_hint(federation: Federation, browser: Browser, upstream: str, sp: str = "sp1") -> Any:
    """A whole login at ``sp`` through ``upstream`` (by ``idp_hint``): the SP's parsed Response.

    Self-submitting pages on the way (a provider's form_post answer, the broker's same-site bounce) are
    submitted as a browser would; the page that posts to the SP is read, not submitted."""
    acs = federation.sps[sp].acs_url
    request_id, location = federation.sps[sp].redirect_request()
    page = browser.get(location + f"&idp_hint={upstream}")
    for _ in range(4):
        assert page.status_code == 200, page.text[:500]
        forms = lxml.html.document_fromstring(page.text).forms
        if len(forms) == 1 and forms[0].action == acs:
            break
        page = browser.auto_submit(page)
    fields = browser.form_fields(page)
    return federation.sps[sp].parse(fields["SAMLResponse"], request_id)


def register_upstream(federation: Federation, name: str, issuer: str) -> None:
    """Another OpenID provider next to "op" (never contacted: the tests stop before it would be)."""
    (federation.folder / "metadata" / "upstreams" / f"{name}.json").write_text(json.dumps({
        "name": name, "protocol": "oidc", "issuer": issuer, "client_id": "broker",
        "display_name": name.title(), "client_secret_file": "certs/op-client.secret",
    }))
    federation.app.extensions["broker"].registry.reload()


@contextmanager
def federation_with(tmp_path: Path, key_folder: Path, extras: Sequence[ExtraUpstream],
                    extra_config: str = "") -> Iterator[Federation]:
    """The federation of ``tests/flows`` on SQLite, with ``extras`` registered next to the demo provider "op"
    (and ``extra_config`` appended to broker.toml)."""
    database = database_for("sqlite", tmp_path)
    with running_federation(tmp_path / "instance", key_folder, next(database), extra_upstreams=extras,
                            extra_config=extra_config) as running:
        yield running


class IdentitySpy:
    """Records the ``UpstreamIdentity`` of every completed upstream sign-in (observes, changes nothing)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.seen: list[UpstreamIdentity] = []
        original = flow.complete_login

        def recording(store: Any, party: Any, request: Any, identity: UpstreamIdentity, *rest: Any,
                      **named: Any) -> Any:
            self.seen.append(identity)
            return original(store, party, request, identity, *rest, **named)

        monkeypatch.setattr(flow, "complete_login", recording)


# -- the e-mail link offer (broker.web.link_offer) ---------------------------------------------------------------

#: what the link offer page says
OFFER = "This looks like your account"
#: what the confirmation after a link proof says (``broker.web.link_confirm``), and its two buttons
CONFIRM, LINK, KEEP = "Link these sign-in methods?", "to this account", "Keep them separate"
#: both upstreams of the attack tests are trusted for e-mail: the offer's precondition (``[linking]``)
BOTH_AUTHORITATIVE = '[linking]\nemail_authoritative = ["op", "other"]\n'


def until_app_or_offer(federation: Federation, browser: Browser, upstream: str, sp: str = "sp1") -> tuple[
        str, requests.Response]:
    """Start a login at ``sp`` through ``upstream``; the request id and the page that posts to the SP or offers."""
    request_id, location = federation.sps[sp].redirect_request()
    page = browser.get(location + f"&idp_hint={upstream}")
    for _ in range(4):
        if OFFER in page.text or _posts_to_sp(federation, page, sp):
            return request_id, page
        page = browser.auto_submit(page)
    raise AssertionError(page.text[:500])


def _posts_to_sp(federation: Federation, page: requests.Response, sp: str) -> bool:
    forms = lxml.html.document_fromstring(page.text).forms
    return len(forms) == 1 and forms[0].action == federation.sps[sp].acs_url


def press(browser: Browser, page: requests.Response, label: str) -> requests.Response:
    """Submit the form whose button says ``label``, following on until the SP's page or another stop."""
    for form in lxml.html.document_fromstring(page.text).forms:
        if label in form.text_content():
            action = requests.compat.urljoin(page.url, form.action)
            answer = browser.post(action, {i.name: i.value for i in form.inputs if i.name}, initiator=page.url)
            for _ in range(4):
                if browser.is_self_submitting(answer) and "SAMLResponse" not in browser.form_fields(answer):
                    answer = browser.auto_submit(answer)
            return answer
    raise AssertionError(f"no button {label!r}")
