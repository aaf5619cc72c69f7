"""Property-based tests of SAML AuthnRequest intake (``broker.downstream.saml_requests.parse_authn_request``) and
of the Redirect-binding signature helpers (``broker.saml.redirect_signature``).

The property: whatever arrives as SAMLRequest, RelayState, SigAlg, Signature or raw query string, the broker
either accepts a request of a registered SP or refuses it with ``RequestRejected`` carrying a ``BrokerError``;
no other exception (pysaml2, lxml, base64, zlib, werkzeug) escapes; a refusal that goes back to the SP goes only
to an AssertionConsumerService URL of its metadata. Most examples call the parser directly against a real
``IdpServers`` and SP catalog (fast); a few go through the live broker over HTTP, which must answer with a SAML
error form or a 4xx page, never a 500, and store no account.
"""

from __future__ import annotations

import base64
import http.client
import ssl
import tracemalloc
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, TypedDict
from urllib.parse import quote, urlsplit

import lxml.html  # type: ignore[import-untyped]
import pytest
import requests
from hypothesis import event, example, given
from hypothesis import strategies as st
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS, NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_TRANSIENT

from broker.core.model import LoginRequest, utcnow
from broker.downstream.saml_requests import MAX_MESSAGE_BYTES, IncomingRequest, RequestRejected
from broker.saml import redirect_signature
from broker.storage.tables import PendingStateRow
from tests.databases import BACKENDS
from tests.flows.federation import Federation
from tests.peers.browser import Browser
from tests.peers.tls import throwaway_ca
from tests.security.fuzz_support import (
    SSO_POST,
    SSO_REDIRECT,
    SamlWorld,
    authn_request_xml,
    build_saml_world,
    check_saml_outcome,
    count_rows,
    deflate,
    fuzz_settings,
    huge_text,
    incoming_from_query,
    incoming_post,
    junk_text,
    live_federation,
    mutated,
    post_encoding,
    redirect_encoding,
    redirect_outcome,
    redirect_query,
    text_values,
)

RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SIG_ALGS = (RSA_SHA256, redirect_signature.RSA_SHA1, "http://www.w3.org/2000/09/xmldsig#dsa-sha1",
            "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256", "none", "")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> SamlWorld:
    return build_saml_world(tmp_path_factory.mktemp("saml-fuzz"))


def _forged_request(world: SamlWorld, *, force_authn: str | None = None, is_passive: str | None = None) -> str:
    """An unsigned AuthnRequest that claims to come from the SP that must sign (Redirect encoding)."""
    xml = authn_request_xml(request_id="id-forged", issue_instant=_instant(world, 0), destination=SSO_REDIRECT,
                            issuer=world.signing_sp.entity_id, acs_url=world.signing_sp.acs_url,
                            force_authn=force_authn, is_passive=is_passive)
    return redirect_encoding(xml)


def _instant(world: SamlWorld, seconds: int, style: str = "%Y-%m-%dT%H:%M:%SZ") -> str:
    return (world.now + timedelta(seconds=seconds)).strftime(style)


# -- (a) anything as SAMLRequest -----------------------------------------------------------------------------


@fuzz_settings(150)
@given(binding=st.sampled_from((BINDING_HTTP_REDIRECT, BINDING_HTTP_POST)), saml_request=text_values(),
       relay_state=st.none() | text_values(), sig_alg=st.none() | st.sampled_from(SIG_ALGS) | junk_text(),
       signature=st.none() | junk_text())
def test_any_text_as_saml_request(world: SamlWorld, binding: str, saml_request: str, relay_state: str | None,
                                  sig_alg: str | None, signature: str | None) -> None:
    incoming = IncomingRequest(binding, saml_request, relay_state, sig_alg, signature,
                               raw_query=f"SAMLRequest={quote(saml_request)}".encode())
    outcome = check_saml_outcome(world, incoming)

    assert isinstance(outcome, RequestRejected)
    assert outcome.reply is None  # nothing names a registered SP, so nothing goes back to one


@fuzz_settings(150)
@given(binding=st.sampled_from((BINDING_HTTP_REDIRECT, BINDING_HTTP_POST)), payload=st.binary(max_size=3000),
       deflated=st.booleans(), urlsafe=st.booleans())
@example(binding=BINDING_HTTP_REDIRECT, payload=b"<?xml version='1.0'?>" + b"\x00" * 20, deflated=True, urlsafe=False)
@example(binding=BINDING_HTTP_POST, payload="<a>\udcff</a>".encode("utf-8", "surrogateescape"), deflated=False,
         urlsafe=False)
def test_base64_of_any_bytes_as_saml_request(world: SamlWorld, binding: str, payload: bytes, deflated: bool,
                                             urlsafe: bool) -> None:
    data = deflate(payload) if deflated else payload
    encoded = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(data).decode("ascii")
    outcome = check_saml_outcome(world, IncomingRequest(binding, encoded, None))

    assert isinstance(outcome, RequestRejected)


@fuzz_settings(60)
@given(document=st.one_of(junk_text(200), st.text(min_size=1, max_size=400).map(lambda t: f"<?xml version='1.0'?>{t}")),
       binding=st.sampled_from((BINDING_HTTP_REDIRECT, BINDING_HTTP_POST)), charset=st.sampled_from(("utf-8", "utf-16",
                                                                                                     "latin-1")))
def test_base64_of_any_text_document(world: SamlWorld, document: str, binding: str, charset: str) -> None:
    data = document.encode(charset, "replace")
    encoded = base64.b64encode(deflate(data) if binding == BINDING_HTTP_REDIRECT else data).decode("ascii")

    assert isinstance(check_saml_outcome(world, IncomingRequest(binding, encoded, None)), RequestRejected)


# -- (b) mutations of real pysaml2 AuthnRequests ---------------------------------------------------------------


@fuzz_settings(200)
@given(data=st.data())
def test_mutated_signed_post_request(world: SamlWorld, data: st.DataObject) -> None:
    xml = data.draw(mutated(world.signed_post_xml), label="xml")
    outcome = check_saml_outcome(world, incoming_post(post_encoding(xml), "rs"))

    if isinstance(outcome, LoginRequest):
        # only a change the signature does not cover may pass (exclusive c14n: whitespace inside tags, quote
        # characters, a comment or PI outside the signed element), and then the request means exactly the same:
        # anything else would be a signature-wrapping hole
        assert outcome == world.parse(incoming_post(post_encoding(world.signed_post_xml), "rs"))


@fuzz_settings(150)
@given(data=st.data(), binding=st.sampled_from((BINDING_HTTP_REDIRECT, BINDING_HTTP_POST)))
def test_mutated_unsigned_request_of_an_sp_that_may_send_one(world: SamlWorld, data: st.DataObject,
                                                              binding: str) -> None:
    if binding == BINDING_HTTP_POST:
        incoming = incoming_post(post_encoding(data.draw(mutated(world.open_post_xml), label="xml")))
    else:
        xml = data.draw(mutated(world.open_redirect_xml), label="xml")
        incoming = IncomingRequest(binding, redirect_encoding(xml), None)
    check_saml_outcome(world, incoming)


@fuzz_settings(150)
@given(data=st.data())
def test_mutated_request_under_a_valid_redirect_signature(world: SamlWorld, data: st.DataObject) -> None:
    """The SP's own key signs the mutated message, so the mutations reach every check after the signature."""
    original = world.open_redirect_xml.replace(world.open_sp.entity_id, world.signing_sp.entity_id)
    assert world.signing_sp.acs_url in original
    xml = data.draw(mutated(original), label="xml")
    relay_state = data.draw(st.none() | junk_text(), label="relay_state")
    assert isinstance(redirect_outcome(world, redirect_query(redirect_encoding(xml), relay_state, world.signing_key)),
                      LoginRequest | RequestRejected)


# -- structure-aware: every field of an AuthnRequest -----------------------------------------------------------


class _RequestFields(TypedDict):
    """The keyword arguments of ``authn_request_xml``."""

    request_id: str
    issue_instant: str
    destination: str | None
    issuer: str | None
    acs_url: str | None
    acs_index: str | None
    protocol_binding: str | None
    force_authn: str | None
    is_passive: str | None
    name_id_format: str | None
    authn_context_refs: tuple[str, ...]
    idp_entries: tuple[str, ...]
    version: str


@st.composite
def _fields(draw: st.DrawFn, world: SamlWorld, issuer: str, acs_url: str, destination: str) -> _RequestFields:
    """The fields of an AuthnRequest: each one of the values that matter to a check (``None``: absent), and at
    most two of them anything at all, so that most examples get past pysaml2's schema validation."""
    seconds = draw(st.integers(min_value=-1000, max_value=1000)
                   | st.sampled_from((-419, -421, 119, 121, -200_000, 200_000)))
    styles = ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%S+14:00", "%Y-%m-%dT%H:%M:%S",
              "%Y-%m-%d")
    meaningful: dict[str, st.SearchStrategy[Any]] = {
        "request_id": st.sampled_from(("id-1", "_a", "id-" + "x" * 300)),
        "issue_instant": st.sampled_from(styles).map(lambda style: _instant(world, seconds, style))
        | st.sampled_from(("0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2024-02-30T00:00:00Z")),
        "destination": st.sampled_from((destination, SSO_POST, SSO_REDIRECT, "", None)),
        "issuer": st.sampled_from((issuer, world.open_sp.entity_id, world.signing_sp.entity_id, f" {issuer}\n",
                                   "", None)),
        "acs_url": st.sampled_from((acs_url, acs_url + "?x", "http://127.0.0.1:9/attacker/acs", None)),
        "acs_index": st.sampled_from(("0", "1", "-1", "99999999999999999999", None)),
        "protocol_binding": st.sampled_from((BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, None,
                                             "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact")),
        "force_authn": st.sampled_from(("true", "false", "1", "0", None)),
        "is_passive": st.sampled_from(("true", "false", "1", "0", None)),
        "name_id_format": st.sampled_from((NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_TRANSIENT,
                                           NAMEID_FORMAT_EMAILADDRESS, None)),
        "authn_context_refs": st.lists(st.sampled_from((
            "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport", "urn:example:loa:high", "")),
            max_size=3).map(tuple),
        "idp_entries": st.lists(st.sampled_from(("op", "https://idp.example.org", "")), max_size=3).map(tuple),
        "version": st.just("2.0"),
    }
    anything: dict[str, st.SearchStrategy[Any]] = {
        "request_id": junk_text(40) | huge_text(),
        "authn_context_refs": st.lists(junk_text(30), min_size=1, max_size=3).map(tuple),
        "idp_entries": st.lists(junk_text(30), min_size=1, max_size=3).map(tuple),
    }
    broken = draw(st.sets(st.sampled_from(sorted(meaningful)), max_size=2))

    def field(name: str) -> Any:
        return draw(anything.get(name, junk_text(40)) if name in broken else meaningful[name], label=name)

    # drawn in the order of ``meaningful``
    return _RequestFields(request_id=field("request_id"), issue_instant=field("issue_instant"),
                          destination=field("destination"), issuer=field("issuer"), acs_url=field("acs_url"),
                          acs_index=field("acs_index"), protocol_binding=field("protocol_binding"),
                          force_authn=field("force_authn"), is_passive=field("is_passive"),
                          name_id_format=field("name_id_format"), authn_context_refs=field("authn_context_refs"),
                          idp_entries=field("idp_entries"), version=field("version"))


@fuzz_settings(200)
@given(data=st.data(), signed_redirect=st.booleans())
def test_every_field_of_an_authn_request(world: SamlWorld, data: st.DataObject, signed_redirect: bool) -> None:
    """Unsigned POST requests of the open SP, and Redirect requests the signing SP really signed."""
    sp = world.signing_sp if signed_redirect else world.open_sp
    destination = SSO_REDIRECT if signed_redirect else SSO_POST
    xml = authn_request_xml(**data.draw(_fields(world, sp.entity_id, sp.acs_url, destination), label="fields"))
    hint = data.draw(st.none() | junk_text(20), label="idp_hint")
    if signed_redirect:
        query = redirect_query(redirect_encoding(xml), "rs", world.signing_key)
        if hint is not None:
            query += "&idp_hint=" + quote(hint, safe="")
        incoming = incoming_from_query(query)
        assert isinstance(incoming, IncomingRequest), incoming
    else:
        incoming = IncomingRequest(BINDING_HTTP_POST, post_encoding(xml), None, idp_hint=hint)
    outcome = check_saml_outcome(world, incoming)

    if isinstance(outcome, LoginRequest):
        assert outcome.downstream == sp.entity_id
        assert outcome.return_to == sp.acs_url


# -- (c) RelayState, SigAlg, Signature and the raw query string -----------------------------------------------


@fuzz_settings(150)
@given(relay_state=st.none() | text_values(), sig_alg=st.none() | st.sampled_from(SIG_ALGS) | junk_text(),
       signature=st.none() | junk_text() | st.binary(max_size=300).map(lambda b: base64.b64encode(b).decode()),
       keep_raw_query=st.booleans())
def test_relay_state_sig_alg_and_signature_of_a_genuine_request(world: SamlWorld, relay_state: str | None,
                                                                 sig_alg: str | None, signature: str | None,
                                                                 keep_raw_query: bool) -> None:
    genuine = world.genuine_params
    pieces = [("SAMLRequest", genuine["SAMLRequest"]), ("RelayState", relay_state), ("SigAlg", sig_alg),
              ("Signature", signature)]
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in pieces if v is not None)
    incoming = IncomingRequest(BINDING_HTTP_REDIRECT, genuine["SAMLRequest"], relay_state, sig_alg, signature,
                               raw_query=(world.genuine_query if keep_raw_query else query).encode())
    outcome = check_saml_outcome(world, incoming)

    if isinstance(outcome, LoginRequest):  # the SP must sign: only its own signature is accepted
        assert (sig_alg, signature) == (genuine["SigAlg"], genuine["Signature"])


#: what an attacker can put into a query string: the protocol's parameter names, spelled in every way a URL
#: parser may read as the same name
_NAMES = ("SAMLRequest", "RelayState", "SigAlg", "Signature", "idp_hint")


@st.composite
def _name(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(_NAMES))
    how = draw(st.sampled_from(("plain", "percent", "lower", "suffix", "junk")))
    if how == "percent":
        at = draw(st.integers(min_value=0, max_value=len(name) - 1))
        hex_code = f"{ord(name[at]):02X}"
        return name[:at] + "%" + draw(st.sampled_from((hex_code, hex_code.lower()))) + name[at + 1:]
    if how == "lower":
        return name.lower()
    if how == "suffix":
        return name + draw(st.sampled_from(("%00", "+", "%20", "[]", ".")))
    if how == "junk":
        return quote(draw(junk_text(10)), safe="")
    return name


@st.composite
def _smuggled_query(draw: st.DrawFn, world: SamlWorld) -> str:
    """The genuine signed query with parameters added before and after it, and sometimes raw bytes."""
    values = st.sampled_from((
        quote(_forged_request(world, force_authn="true", is_passive="true"), safe=""), "evil-state",
        quote(world.genuine_params["Signature"], safe=""), quote(RSA_SHA256, safe=""), "",
    )) | junk_text(30).map(lambda v: quote(v, safe="")) | junk_text(30)
    extra = st.lists(st.tuples(_name(), values).map(lambda kv: f"{kv[0]}={kv[1]}"), max_size=3)
    before, after = draw(extra), draw(extra)
    query = "&".join([*before, world.genuine_query, *after])
    if draw(st.booleans()):
        query += "&" + draw(st.sampled_from(("", "&", "=", "%", "%zz", "a=%ff%fe", ";", "SAMLRequest")))
    return query


@fuzz_settings(200)
@given(data=st.data())
@example(data=None)  # the query that smuggled a second SAMLRequest (fixed in fe5b51b)
def test_any_raw_query_string(world: SamlWorld, data: st.DataObject | None) -> None:
    query = data.draw(_smuggled_query(world), label="query") if data is not None else (
        "SAML%52equest=" + quote(_forged_request(world), safe="") + "&" + world.genuine_query)
    redirect_outcome(world, query)


@fuzz_settings(150)
@given(query=st.binary(max_size=400) | st.lists(junk_text(20), max_size=6).map(lambda xs: "&".join(xs).encode())
       | st.binary(max_size=100).map(lambda junk: b"SAMLRequest=" + junk))
def test_any_bytes_as_query_string(world: SamlWorld, query: bytes) -> None:
    redirect_outcome(world, query)


@fuzz_settings(200)
@given(data=st.data())
@example(data=None)
def test_the_redirect_signature_covers_what_is_parsed(world: SamlWorld, data: st.DataObject | None) -> None:
    """Whatever is added around a genuine signed Redirect query, an accepted request is the genuine one:
    same message, same RelayState. (The signing SP requires signatures, so nothing else may pass.)

    Found by these tests: 'SAML%52equest=<forged>&<genuine signed query>' was parsed as <forged> under the
    genuine signature (the signature was checked over the raw parameter names, the message read from werkzeug's
    decoded ``request.args``); fixed in fe5b51b by reading the query once from the signed octets."""
    query = data.draw(_smuggled_query(world), label="query") if data is not None else (
        "SAML%52equest=" + quote(_forged_request(world, force_authn="true", is_passive="true"), safe="")
        + "&Relay%53tate=evil-state&" + world.genuine_query)
    incoming = incoming_from_query(query)
    if isinstance(incoming, RequestRejected):
        return
    outcome = check_saml_outcome(world, incoming)

    if isinstance(outcome, LoginRequest):
        genuine = world.genuine_params
        assert (incoming.saml_request, incoming.relay_state) == (genuine["SAMLRequest"], genuine["RelayState"])


@fuzz_settings(200)
@given(query=st.binary(max_size=300) | st.lists(junk_text(15), max_size=6).map(lambda xs: "&".join(xs).encode()))
def test_raw_params_reads_any_query_or_refuses_it(query: bytes) -> None:
    try:
        params = redirect_signature.raw_params(query)
    except redirect_signature.RedirectSignatureError:
        with pytest.raises(redirect_signature.RedirectSignatureError):
            redirect_signature.decoded_params(query)
        return
    assert all(isinstance(k, str) and isinstance(v, bytes) and v in query for k, v in params.items())
    assert isinstance(redirect_signature.signed_octets(params, "SAMLRequest"), bytes)
    decoded = redirect_signature.decoded_params(query)
    assert decoded.keys() == params.keys() and all(isinstance(v, str) for v in decoded.values())
    # a protocol parameter is only ever read under its literal name, the one the signature covers
    literal_names = {part.partition(b"=")[0] for part in query.split(b"&")}
    assert all(name.encode() in literal_names for name in redirect_signature.PROTOCOL_PARAMS if name in decoded)


@fuzz_settings(150)
@given(query=st.binary(max_size=200), sig_alg=st.sampled_from(SIG_ALGS) | junk_text(),
       signature=junk_text() | st.binary(max_size=300).map(lambda b: base64.b64encode(b).decode()),
       allow_sha1=st.booleans())
def test_verify_accepts_nothing_forged(world: SamlWorld, query: bytes, sig_alg: str, signature: str,
                                       allow_sha1: bool) -> None:
    certs = [redirect_signature.pem_from_base64(cert) for _, cert in
             world.catalog.metadata.certs(world.signing_sp.entity_id, "spsso", "signing")]
    with pytest.raises(redirect_signature.RedirectSignatureError):
        redirect_signature.verify(query, sig_alg, signature, certs, allow_sha1=allow_sha1)


# -- a message that inflates far beyond its size ------------------------------------------------------------


def test_a_deflate_bomb_is_refused_before_it_is_inflated(world: SamlWorld) -> None:
    """Found by these tests: ~57 KB inflated to ~55 MB of XML (14 s and 1.1 GB to refuse one request); fixed in
    fe5b51b (the message is inflated at most to MAX_XML_BYTES before pysaml2 sees it)."""
    xml = "<?xml version='1.0'?><!--" + " " * 20_000_000 + "-->"
    encoded = redirect_encoding(xml)
    assert len(encoded) < MAX_MESSAGE_BYTES
    tracemalloc.start()
    try:
        outcome = check_saml_outcome(world, IncomingRequest(BINDING_HTTP_REDIRECT, encoded, None))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert isinstance(outcome, RequestRejected)
    assert peak < 8 * 1024 * 1024, f"{peak / 2**20:.0f} MiB allocated to refuse a {len(encoded)}-byte request"


# -- through the live broker -----------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=BACKENDS)
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    with live_federation(tmp_path_factory.mktemp("saml-fuzz-live"), request.param) as federation:
        yield federation


@pytest.fixture(scope="module")
def live_browser() -> Iterator[Browser]:
    with Browser() as browser:
        yield browser


@pytest.fixture(scope="module")
def live_messages(live: Federation) -> tuple[str, dict[str, str], str]:
    """sp1's signed POST request (destination, fields) and signed Redirect URL, made once: Hypothesis needs the
    same base for every example to replay and shrink them."""
    sp = live.sps["sp1"]
    _, destination, fields = sp.post_request()
    _, location = sp.redirect_request(relay_state="live")
    return destination, fields, location


@st.composite
def _live_request(draw: st.DrawFn, federation: Federation,
                  messages: tuple[str, dict[str, str], str]) -> tuple[str, dict[str, str] | None]:
    """(URL, form or None for GET): junk, a mutated signed POST request, or a damaged signed Redirect query."""
    destination, fields, location = messages
    kind = draw(st.sampled_from(("junk-get", "junk-post", "mutated-post", "redirect-params")))
    if kind == "junk-get":
        value = draw(text_values() | st.binary(max_size=500).map(lambda b: base64.b64encode(b).decode()))
        extra = draw(st.lists(st.tuples(_name(), junk_text(20)), max_size=3))
        query = "&".join([f"SAMLRequest={quote(value, safe='')}", *(f"{k}={quote(v)}" for k, v in extra)])
        return f"{federation.url}/saml2/idp/sso/redirect?{query}", None
    if kind == "junk-post":
        return federation.url + "/saml2/idp/sso/post", {"SAMLRequest": draw(text_values()),
                                                        "RelayState": draw(junk_text())}
    if kind == "mutated-post":
        xml = draw(mutated(base64.b64decode(fields["SAMLRequest"]).decode()))
        return destination, {**fields, "SAMLRequest": post_encoding(xml)}
    base, _, query = location.partition("?")
    return f"{base}?{draw(mutated(query, max_edits=2))}", None


#: the longest request line the test's HTTP server reads (``http.server.BaseHTTPRequestHandler``: 65536 bytes)
REQUEST_LINE_LIMIT = 65536 - len("GET  HTTP/1.1\r\n")


@fuzz_settings(25, scaled=False)
@given(data=st.data())
def test_live_sso_endpoints_never_fail_with_500(live: Federation, live_browser: Browser,
                                                live_messages: tuple[str, dict[str, str], str],
                                                data: st.DataObject) -> None:
    url, form = data.draw(_live_request(live, live_messages), label="request")
    pending_before = count_rows(live.database_url, PendingStateRow)
    try:
        page = live_browser.get(url, follow=False) if form is None else live_browser.post(url, form, follow=False)
    except requests.exceptions.ConnectionError:
        # a request line over the HTTP server's limit: the test server answers 414 and closes the TLS connection,
        # sometimes before the client has read the answer (an EOF); the broker never saw the request
        assert form is None and len(urlsplit(url).path) + len(urlsplit(url).query) > REQUEST_LINE_LIMIT
        event("request line refused by the HTTP server")
        assert count_rows(live.database_url, PendingStateRow) == pending_before
        return

    assert page.status_code != 500 and "Traceback" not in page.text
    event(f"HTTP {page.status_code}")
    assert page.status_code in (200, 302, 400, 413, 414, 429), page.status_code
    registered_acs = {sp.acs_url for sp in live.sps.values()}
    if page.status_code == 200:  # a SAML error Response, to a registered ACS only
        forms = lxml.html.fromstring(page.text).forms
        assert len(forms) == 1 and forms[0].action in registered_acs
        assert "SAMLResponse" in dict(forms[0].form_values())
    elif page.status_code == 302:  # a request the broker accepted: it goes on to the upstream, nothing else
        target = page.headers["Location"]
        assert urlsplit(target).path.startswith("/login/") or target.startswith(live.op.url + "/"), target
    elif page.status_code != 414:  # 414: the HTTP server refuses the request line before the broker sees it
        assert 'class="reference"' in page.text and "<form" not in page.text
    stored = count_rows(live.database_url, PendingStateRow) - pending_before
    assert stored == (1 if page.status_code == 302 else 0)
    assert live.accounts() == 0


def test_live_smuggled_saml_request_is_refused(live: Federation) -> None:
    sp = live.sps["sp1"]
    _, genuine = sp.redirect_request(relay_state="genuine")
    base, _, genuine_query = genuine.partition("?")
    forged = authn_request_xml(request_id="id-forged", issue_instant=utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
                               destination=base, issuer=sp.entity_id, acs_url=sp.acs_url, force_authn="true")
    smuggled = quote(redirect_encoding(forged), safe="")
    # sent as is: ``requests`` would "normalize" %52 to R, a browser or curl sends what the link says
    connection = http.client.HTTPSConnection("127.0.0.1", live.broker.port, timeout=10,
                                             context=ssl.create_default_context(cafile=throwaway_ca().ca_file))
    try:
        connection.request("GET", f"{urlsplit(base).path}?SAML%52equest={smuggled}&Relay%53tate=evil&{genuine_query}")
        answer = connection.getresponse()
        status, location = answer.status, answer.getheader("Location") or ""
    finally:
        connection.close()

    assert status == 400, f"an unsigned request passed under another request's signature (to {location})"
