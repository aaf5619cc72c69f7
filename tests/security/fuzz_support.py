"""What the property-based (fuzz) tests of ``tests/security/test_fuzz_*.py`` share: their Hypothesis settings,
strategies for hostile input, mutations of real messages, and small real worlds to run the parsers in.

Determinism. Every fuzz test runs with ``derandomize=True``: the examples are drawn from a seed derived from
the test itself, so a CI run tests exactly what the last local run tested and a red build is never a new
random draw on an unrelated change. ``derandomize`` also turns the example database off, so no
``.hypothesis/`` folder is written into the checkout. The price is that CI never looks beyond those examples;
to search further, run with ``BROKER_FUZZ_EXPLORE=1`` (fresh random examples each run) and raise
``BROKER_FUZZ_SCALE`` (a multiplier of every test's ``max_examples``), e.g.
``BROKER_FUZZ_EXPLORE=1 BROKER_FUZZ_SCALE=20 pytest tests/security/test_fuzz_*.py``. A failure found that way
is pinned with ``@example`` so it is checked on every run afterwards.

Deadlines are off (``deadline=None``): most of these tests cross a socket or a database, and a deadline on a
loaded two-core CI machine only produces flaky failures; the run time is bounded by ``max_examples`` instead.
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, quote, urlsplit
from xml.sax.saxutils import escape, quoteattr

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from flask import Flask
from hypothesis import HealthCheck, currently_in_test_context, event, settings
from hypothesis import strategies as st
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from sqlalchemy import func, select

from broker.config.settings import Settings, load_settings
from broker.core import errors
from broker.core.model import LoginRequest, utcnow
from broker.demo.oidc_provider import DemoClient, DemoProvider, DemoProviderSettings, DemoUser, create_demo_provider
from broker.downstream.saml_requests import IncomingRequest, RequestRejected, parse_authn_request, redirect_request
from broker.downstream.saml_server import IdpServers
from broker.keys.keyring import generate_keyring
from broker.registry.saml_sps import SP_FOLDER, load_sp_catalog
from broker.saml.catalog import SpCatalog
from broker.storage import create_engine_for
from broker.upstream.github import GitHubSettings, GitHubUpstream
from broker.upstream.http_pool import UpstreamHttp
from broker.upstream.oidc import OidcUpstream, OidcUpstreamSettings
from broker.web.services import idp_settings
from tests.databases import database_for
from tests.flows.federation import Federation, make_keys, running_federation
from tests.flows.saml_peers import SpKeys, TestSp
from tests.peers.browser import Browser
from tests.peers.github_sim import GitHubEmail, GitHubSim, GitHubUser
from tests.peers.servers import LateApp, serve

# -- Hypothesis settings ---------------------------------------------------------------------------------------

EXPLORE = os.environ.get("BROKER_FUZZ_EXPLORE") == "1"
SCALE = float(os.environ.get("BROKER_FUZZ_SCALE", "1"))


def fuzz_settings(max_examples: int, *, scaled: bool = True) -> settings:
    """The settings of every fuzz test: deterministic unless exploring, no deadline, ``max_examples`` scaled.

    The tests through the live broker pass ``scaled=False``: more examples would run into its rate limit
    (``[limits] per_ip``, 120 sign-in requests a minute by default) and be answered 429."""
    return settings(
        max_examples=max(1, int(max_examples * (SCALE if scaled else 1))),
        derandomize=not EXPLORE,
        database=None,
        deadline=None,
        print_blob=EXPLORE,
        # hostile inputs are large and some examples cross a socket: neither is a problem of the test
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )


# -- hostile values --------------------------------------------------------------------------------------------

#: fragments that mean something to an XML, URL, JSON or base64 parser
MARKUP = (
    "<", ">", "&", '"', "'", "]]>", "<![CDATA[x]]>", "&a;", "&#0;", "&#x10FFFF;", "&#xD800;", "<!-- c -->",
    "<?pi x?>", "<?xml version='1.0'?>", '<!DOCTYPE r [<!ENTITY a "aaaaaaaa">]>',
    '<!DOCTYPE r SYSTEM "http://127.0.0.1:9/dtd">', "xmlns:ns0='urn:evil'", "\x00", "\ufeff", "\r\n", "%", "%00",
    "%zz", "%C0%AE", "+", "=", "&&", "==", "\\", "\u202e", "null", "true", "[]", "{}", '{"a":', "NaN", "1e999",
)


def junk_text(max_size: int = 60) -> st.SearchStrategy[str]:
    """Any text (no lone surrogates: no HTTP or file layer can deliver one), often with markup in it."""
    plain = st.text(max_size=max_size)
    marked = st.lists(st.one_of(st.sampled_from(MARKUP), st.text(max_size=8)), max_size=6).map("".join)
    return st.one_of(plain, marked)


def huge_text() -> st.SearchStrategy[str]:
    """A long value (to 200 000 characters) built from a short one, as an attacker would pad a field."""
    return st.builds(lambda unit, times: (unit * times)[:200_000],
                     st.text(min_size=1, max_size=4), st.integers(min_value=500, max_value=100_000))


def text_values() -> st.SearchStrategy[str]:
    return st.one_of(junk_text(), huge_text())


def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Any value ``json.loads`` can return, NaN and infinities included (Python's json reads them)."""
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(), st.integers(min_value=-(2**80), max_value=2**80),
        st.floats(allow_nan=True, allow_infinity=True), junk_text(),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(junk_text(12), inner, max_size=4)),
        max_leaves=max_leaves,
    )


def json_documents(max_leaves: int = 12) -> st.SearchStrategy[str]:
    """Text that is sometimes JSON (any value), sometimes JSON-ish, sometimes anything."""
    return st.one_of(json_values(max_leaves).map(json.dumps), junk_text(), deep_nesting())


def deep_nesting() -> st.SearchStrategy[str]:
    """``[[[[...]]]]`` and ``{"a":{"a":...}}`` deep enough to exhaust a recursive parser."""
    depth = st.integers(min_value=900, max_value=100_000)
    return st.one_of(depth.map(lambda n: "[" * n + "]" * n), depth.map(lambda n: '{"a":' * n + "1" + "}" * n))


def json_text(max_size: int = 40) -> st.SearchStrategy[str]:
    """Text a JSON file can hold: any code point, lone surrogates included (``"\\ud800"`` is valid JSON)."""
    return junk_text(max_size) | st.text(st.characters(min_codepoint=0xD7F0, max_codepoint=0xE010), max_size=4)


def env_text(max_size: int = 40) -> st.SearchStrategy[str]:
    """An environment variable's value as ``os.environ`` gives it: undecodable bytes as U+DC80-U+DCFF."""
    return junk_text(max_size) | st.binary(max_size=20).map(lambda b: b.decode("utf-8", "surrogateescape"))


# -- TOML documents --------------------------------------------------------------------------------------------


def toml_value(value: object) -> str:
    """``value`` as a TOML value (TOML 1.0): strings escaped, floats' nan and inf spelled as TOML spells them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_string(str(k))} = {toml_value(v)}" for k, v in value.items()) + "}"
    return str(value)  # dates and times: their ISO form is TOML's


def toml_string(text: str) -> str:
    escaped = []
    for char in text:
        if char in '"\\':
            escaped.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            escaped.append(f"\\u{ord(char):04X}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'


def toml_document(tables: Mapping[str, Mapping[str, object]]) -> str:
    lines = []
    for name, table in tables.items():
        lines.append(f"[{toml_string(name)}]")
        lines.extend(f"{toml_string(key)} = {toml_value(value)}" for key, value in table.items())
    return "\n".join(lines) + "\n"


def toml_values(max_leaves: int = 6) -> st.SearchStrategy[Any]:
    """Any value a TOML document holds (integers within TOML's 64 bits, as ``tomllib`` reads them)."""
    scalars = st.one_of(
        st.booleans(), st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.sampled_from((0, -1, 1, 2**31, 2**63 - 1, -(2**63))), st.floats(), junk_text(),
        st.sampled_from(("~nosuchuser-fuzz/x", "~", "a\x00b", "/dev/null", "", "..", "secret", "/", "\\\\?\\x",
                         "redis://127.0.0.1:1/0", "sqlite://", "http://[::1", "60/minute", "1/0second")),
        st.datetimes(), st.dates(), st.times(),
    )
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(junk_text(6), inner,
                                                                                                max_size=2),
                        max_leaves=max_leaves)


# -- mutations of a real message -------------------------------------------------------------------------------

_ATTRIBUTE = re.compile(r"""\s[\w:.-]+=(?:"[^"]*"|'[^']*')""")
_ELEMENT = re.compile(r"<(ns\d+:\w+)[^>]*>[^<]*</\1>")
_TAG_END = re.compile(r">")
_SURROGATES: tuple[Literal["Cs"]] = ("Cs",)  # Unicode category of lone surrogates, which cannot be encoded


@st.composite
def mutated(draw: st.DrawFn, original: str, max_edits: int = 4) -> str:
    """``original`` after one to ``max_edits`` edits: characters flipped, inserted or deleted, attributes
    duplicated, removed or rewritten, elements duplicated, a DOCTYPE, comment or processing instruction put in.
    Always different from ``original``."""
    text = original
    for _ in range(draw(st.integers(min_value=1, max_value=max_edits))):
        kind = draw(st.sampled_from(("flip", "insert", "delete", "dup-attr", "drop-attr", "set-attr", "dup-element",
                                     "doctype", "comment", "pi")))
        text = _edit(draw, text, kind)
    if text == original:
        text = original + draw(st.sampled_from(("<", "&", " ", "<x/>")))
    return text


def _edit(draw: st.DrawFn, text: str, kind: str) -> str:
    position = draw(st.integers(min_value=0, max_value=len(text)))
    attributes = list(_ATTRIBUTE.finditer(text))
    if kind == "flip" and text:
        position = min(position, len(text) - 1)
        return text[:position] + draw(st.characters(exclude_categories=_SURROGATES)) + text[position + 1:]
    if kind == "insert":
        return text[:position] + draw(junk_text(20)) + text[position:]
    if kind == "delete":
        length = draw(st.integers(min_value=1, max_value=40))
        return text[:position] + text[position + length:]
    if kind in ("dup-attr", "drop-attr", "set-attr") and attributes:
        match = draw(st.sampled_from(attributes))
        if kind == "dup-attr":
            return text[:match.end()] + match.group(0) + text[match.end():]
        if kind == "drop-attr":
            return text[:match.start()] + text[match.end():]
        name = match.group(0).split("=", 1)[0]
        return text[:match.start()] + name + "=" + quoteattr(draw(junk_text(40))) + text[match.end():]
    if kind == "dup-element" and (elements := list(_ELEMENT.finditer(text))):
        match = draw(st.sampled_from(elements))
        return text[:match.end()] + match.group(0) + text[match.end():]
    if kind in ("doctype", "comment", "pi"):
        snippet = {
            "doctype": '<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>',
            "comment": "<!--" + draw(st.text(max_size=10)).replace("--", "") + "-->",
            "pi": "<?" + draw(st.sampled_from(("xml-stylesheet", "x", "xml"))) + " a?>",
        }[kind]
        ends = [m.end() for m in _TAG_END.finditer(text)] or [0]
        at = draw(st.sampled_from([0, *ends]))
        return text[:at] + snippet + text[at:]
    return text


# -- SAML encodings --------------------------------------------------------------------------------------------

def deflate(data: bytes) -> bytes:
    """Raw DEFLATE (RFC 1951), as the HTTP-Redirect binding sends (SAML 2.0 Bindings §3.4.4.1)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


def redirect_encoding(xml: str) -> str:
    return base64.b64encode(deflate(xml.encode("utf-8"))).decode("ascii")


def post_encoding(xml: str) -> str:
    return base64.b64encode(xml.encode("utf-8")).decode("ascii")


def redirect_query(saml_request: str, relay_state: str | None, key: rsa.RSAPrivateKey | None,
                   sig_alg: str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256") -> str:
    """A Redirect-binding query string, signed over its raw octets with ``key`` when given (§3.4.4.1)."""
    parts = ["SAMLRequest=" + quote(saml_request, safe="")]
    if relay_state is not None:
        parts.append("RelayState=" + quote(relay_state, safe=""))
    if key is None:
        return "&".join(parts)
    parts.append("SigAlg=" + quote(sig_alg, safe=""))
    signature = key.sign("&".join(parts).encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return "&".join([*parts, "Signature=" + quote(base64.b64encode(signature).decode("ascii"), safe="")])


def incoming_from_query(raw_query: bytes | str) -> IncomingRequest | RequestRejected:
    """What ``broker.web.saml_idp.sso_redirect`` makes of this raw query string (``redirect_request``): the
    request to parse, or its refusal (an ambiguous query, no SAMLRequest), which can only be a page."""
    raw = raw_query.encode("utf-8") if isinstance(raw_query, str) else raw_query
    try:
        return redirect_request(raw)
    except RequestRejected as rejected:
        assert isinstance(rejected.error, errors.BrokerError) and rejected.reply is None
        note_refusal(rejected.error)
        return rejected


def redirect_outcome(world: SamlWorld, raw_query: bytes | str) -> LoginRequest | RequestRejected:
    """``check_saml_outcome`` of a raw Redirect-binding query string, as the broker's view reads it."""
    incoming = incoming_from_query(raw_query)
    return incoming if isinstance(incoming, RequestRejected) else check_saml_outcome(world, incoming)


def incoming_post(saml_request: str, relay_state: str | None = None) -> IncomingRequest:
    return IncomingRequest(binding=BINDING_HTTP_POST, saml_request=saml_request, relay_state=relay_state)


# -- a SAML IdP and its registered SPs, without a web server ---------------------------------------------------

BASE_URL = "http://127.0.0.1:5000"
SSO_REDIRECT = BASE_URL + "/saml2/idp/sso/redirect"
SSO_POST = BASE_URL + "/saml2/idp/sso/post"


@dataclass(repr=False)
class SamlWorld:
    """The broker's IdP (built like ``broker.web.services.idp_settings``) over a real SP catalog.

    ``signing_sp`` registers with ``AuthnRequestsSigned="true"``; ``open_sp`` may send unsigned requests.
    The genuine messages are pysaml2's own, made once.
    """

    idp: IdpServers
    catalog: SpCatalog
    now: datetime
    signing_sp: TestSp
    open_sp: TestSp
    signing_key: rsa.RSAPrivateKey
    #: pysaml2's signed HTTP-POST AuthnRequest of ``signing_sp``
    signed_post_xml: str
    #: pysaml2's unsigned AuthnRequest of ``open_sp`` (its Destination is the POST endpoint)
    open_post_xml: str
    #: the same for the Redirect endpoint
    open_redirect_xml: str
    #: pysaml2's signed Redirect-binding query of ``signing_sp`` (RelayState "genuine-state")
    genuine_query: str

    @property
    def genuine_params(self) -> dict[str, str]:
        return dict(parse_qsl(self.genuine_query, keep_blank_values=True))

    def __repr__(self) -> str:
        return f"SamlWorld({', '.join(self.catalog.sps)})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # how Hypothesis prints a failing example
        printer.text(repr(self))

    def parse(self, incoming: IncomingRequest) -> LoginRequest:
        return parse_authn_request(self.idp, self.catalog, incoming, self.now)


def _settings(folder: Path) -> Settings:
    """The broker's settings with every SAML default (read by ``load_settings``, as ``create_app`` does)."""
    (folder / "secret").write_bytes(b"s" * 48)
    (folder / "claims.key").write_bytes(b"c" * 64)  # 64 hex digits
    (folder / "broker.toml").write_text(f'[broker]\nbase_url = "{BASE_URL}"\nsecret_key_file = "secret"\n'
                                        'pairwise_secret_file = "secret"\nclaims_key_file = "claims.key"\n')
    return load_settings(folder / "broker.toml", environ={})


def build_saml_world(folder: Path) -> SamlWorld:
    broker_keys = generate_keyring(folder / "broker", "fuzz broker", bits=2048)
    sp_rings = {name: generate_keyring(folder / name, f"fuzz {name}", bits=2048) for name in ("signing", "open")}
    signing_sp = TestSp("http://127.0.0.1:9/signing", SpKeys(sp_rings["signing"].key_file,
                                                              sp_rings["signing"].cert_file))
    open_sp = TestSp("http://127.0.0.1:9/open", SpKeys(sp_rings["open"].key_file, sp_rings["open"].cert_file),
                     sign_requests=False)
    metadata_dir = folder / "metadata"
    (metadata_dir / SP_FOLDER).mkdir(parents=True)
    for name, sp in (("signing", signing_sp), ("open", open_sp)):
        (metadata_dir / SP_FOLDER / f"{name}.xml").write_text(sp.metadata())
    catalog = load_sp_catalog(metadata_dir)
    assert set(catalog.sps) == {signing_sp.entity_id, open_sp.entity_id}, catalog.problems
    idp = IdpServers(idp_settings(_settings(folder), broker_keys))
    idp_metadata = idp.metadata_xml(catalog)
    for sp in (signing_sp, open_sp):
        sp.connect(idp_metadata)
    now = utcnow()
    _, _, fields = signing_sp.post_request()
    signed_post_xml = base64.b64decode(fields["SAMLRequest"]).decode()
    _, request = open_sp.client.create_authn_request(SSO_POST, binding=BINDING_HTTP_POST, sign=False)
    # the same message for the Redirect endpoint (the ACS binding stays HTTP-POST, the only one the broker answers)
    redirect_request = str(request).replace(f'Destination="{SSO_POST}"', f'Destination="{SSO_REDIRECT}"')
    _, location = signing_sp.redirect_request(relay_state="genuine-state")
    key = serialization.load_pem_private_key(sp_rings["signing"].key_file.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    world = SamlWorld(idp, catalog, now, signing_sp, open_sp, key, signed_post_xml, str(request), redirect_request,
                      urlsplit(location).query)
    # the genuine messages are accepted: every refusal of a fuzz test is the fuzzing's doing
    assert world.parse(incoming_post(post_encoding(signed_post_xml))).downstream == signing_sp.entity_id
    assert world.parse(incoming_post(post_encoding(world.open_post_xml))).downstream == open_sp.entity_id
    genuine = incoming_from_query(world.genuine_query)
    assert isinstance(genuine, IncomingRequest) and world.parse(genuine).relay_state == "genuine-state"
    incoming = IncomingRequest(BINDING_HTTP_REDIRECT, redirect_encoding(world.open_redirect_xml), None)
    assert world.parse(incoming).downstream == open_sp.entity_id
    return world


def authn_request_xml(*, request_id: str, issue_instant: str, destination: str | None, issuer: str | None,
                      acs_url: str | None = None, acs_index: str | None = None, protocol_binding: str | None = None,
                      force_authn: str | None = None, is_passive: str | None = None,
                      name_id_format: str | None = None, authn_context_refs: tuple[str, ...] = (),
                      idp_entries: tuple[str, ...] = (), version: str = "2.0") -> str:
    """An AuthnRequest (SAML 2.0 Core §3.4.1) from its fields, each escaped, for structure-aware fuzzing."""
    attributes = {
        "ID": request_id, "Version": version, "IssueInstant": issue_instant, "Destination": destination,
        "AssertionConsumerServiceURL": acs_url, "AssertionConsumerServiceIndex": acs_index,
        "ProtocolBinding": protocol_binding, "ForceAuthn": force_authn, "IsPassive": is_passive,
    }
    head = "".join(f" {name}={quoteattr(value)}" for name, value in attributes.items() if value is not None)
    body = f"<saml:Issuer>{escape(issuer)}</saml:Issuer>" if issuer is not None else ""
    if name_id_format is not None:
        body += f"<samlp:NameIDPolicy Format={quoteattr(name_id_format)} AllowCreate=\"true\"/>"
    if authn_context_refs:
        body += "<samlp:RequestedAuthnContext>" + "".join(
            f"<saml:AuthnContextClassRef>{escape(ref)}</saml:AuthnContextClassRef>" for ref in authn_context_refs
        ) + "</samlp:RequestedAuthnContext>"
    if idp_entries:
        entries = "".join(f"<samlp:IDPEntry ProviderID={quoteattr(entry)}/>" for entry in idp_entries)
        body += f"<samlp:Scoping><samlp:IDPList>{entries}</samlp:IDPList></samlp:Scoping>"
    return ('<?xml version="1.0"?><samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
            f'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"{head}>{body}</samlp:AuthnRequest>')


def check_saml_outcome(world: SamlWorld, incoming: IncomingRequest) -> LoginRequest | RequestRejected:
    """The property of every AuthnRequest intake test: a ``LoginRequest`` or ``RequestRejected`` carrying a
    ``BrokerError`` (any other exception propagates and fails the test), and whatever would go back to an SP
    goes only to an AssertionConsumerService URL of its metadata."""
    try:
        login = world.parse(incoming)
    except RequestRejected as rejected:
        assert isinstance(rejected.error, errors.BrokerError)
        note_refusal(rejected.error)
        if rejected.reply is not None:
            _assert_answerable(world, rejected.reply)
        return rejected
    note("accepted")
    _assert_answerable(world, login)
    assert login.relay_state == incoming.relay_state
    # ``begin`` stores the request as JSON and the callback reads it back: it must survive that
    assert LoginRequest.from_json(login.to_json()) == login
    return login


def note_refusal(error: errors.BrokerError) -> None:
    """Counts which check refused (``pytest --hypothesis-show-statistics``): how deep the examples got."""
    detail = re.sub(r"[^A-Za-z: ]+.*", "", error.detail or "")[:60]
    note(f"refused: {type(error).__name__}: {detail!a}")


def note(text: str) -> None:
    """``hypothesis.event`` where there is a Hypothesis test to count it, nothing elsewhere."""
    if currently_in_test_context():
        event(text)


def _assert_answerable(world: SamlWorld, login: LoginRequest) -> None:
    sp = world.catalog.sps[login.downstream]
    assert login.return_to in sp.acs_post_urls, login.return_to


# -- a whole federation for the few examples that go through HTTP -----------------------------------------------

@contextmanager
def live_federation(folder: Path, backend: str) -> Iterator[Federation]:
    """``tests.flows.federation.running_federation`` on a fresh database of ``backend``, with its own keys."""
    keys = make_keys(folder / "keys")
    database = database_for(backend, folder)
    try:
        with running_federation(folder / "instance", keys, next(database)) as federation:
            yield federation
    finally:
        for _ in database:  # drops the PostgreSQL schema
            pass


def count_rows(database_url: str, table: type[Any]) -> int:
    engine = create_engine_for(database_url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(table)).scalar_one())
    finally:
        engine.dispose()


# -- an OpenID provider and the adapter under test -------------------------------------------------------------

CLIENT_ID, CLIENT_SECRET = "fuzz-broker", "fuzz secret: with spaces%"


@dataclass(repr=False)
class OidcWorld:
    """The demo OpenID provider on 127.0.0.1 (auto login), a stand-in callback server, and one adapter."""

    provider: DemoProvider
    upstream: OidcUpstream
    browser: Browser
    #: the signed-in person's claims: the provider reads them for every answer, so a test may change them
    claims: dict[str, object]

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # how Hypothesis prints a failing example
        printer.text(f"OidcWorld({self.provider.issuer})")

    def authorize(self, now: datetime) -> tuple[Any, dict[str, str]]:
        """``start``, then the browser through the provider to the callback: (pending, the callback's params)."""
        url, pending = self.upstream.start(now)
        answer = self.browser.get(url)
        assert answer.status_code == 200, answer.text
        return pending, dict(parse_qsl(urlsplit(answer.url).query, keep_blank_values=True))


def callback_app() -> Flask:
    """Stands in for the broker's redirect URI: answers 200, so the browser stops there with the params."""
    app = Flask("fuzz-callback")
    app.add_url_rule("/callback", "callback", lambda: "ok")
    return app


@contextmanager
def oidc_world() -> Iterator[OidcWorld]:
    claims: dict[str, object] = {"sub": "fuzz-0001", "email": "fuzz@example.org", "email_verified": True,
                                 "given_name": "Fuzz", "family_name": "Tester", "name": "Fuzz Tester"}
    with serve(callback_app()) as callback:
        late = LateApp()
        server = serve(late)
        http, browser = UpstreamHttp(), Browser()
        try:
            redirect_uri = callback.url + "/callback"
            provider = create_demo_provider(DemoProviderSettings(
                issuer=server.url, clients=(DemoClient(CLIENT_ID, CLIENT_SECRET, (redirect_uri,)),),
                users=(DemoUser("fuzz", "pw", claims),), auto_login="fuzz",
            ))
            late.target = provider.app
            upstream = OidcUpstream(OidcUpstreamSettings(
                name="demo", display_name="Demo", issuer=server.url, client_id=CLIENT_ID,
                client_secret=CLIENT_SECRET, redirect_uri=redirect_uri), http)
            yield OidcWorld(provider, upstream, browser, claims)
        finally:
            browser.close()
            http.close()
            server.stop()


# -- a simulated GitHub and the adapter under test -------------------------------------------------------------

GITHUB_USER = GitHubUser(id=583231, login="octocat", name="The Octocat", email="public@example.org",
                         emails=(GitHubEmail("octocat@example.org", primary=True, verified=True),))


@dataclass(repr=False)
class GitHubWorld:
    sim: GitHubSim
    upstream: GitHubUpstream
    browser: Browser

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # how Hypothesis prints a failing example
        printer.text("GitHubWorld()")

    def authorize(self, now: datetime) -> tuple[Any, dict[str, str]]:
        url, pending = self.upstream.start(now)
        answer = self.browser.get(url)
        assert answer.status_code == 200, answer.text
        return pending, dict(parse_qsl(urlsplit(answer.url).query, keep_blank_values=True))


@contextmanager
def github_world() -> Iterator[GitHubWorld]:
    """``tests.peers.github_sim`` on 127.0.0.1 and a ``GitHubUpstream`` pointed at it."""
    with serve(callback_app()) as callback:
        redirect_uri = callback.url + "/callback"
        sim = GitHubSim(client_id="Iv1.fuzz", client_secret="fuzz-secret-0123456789", redirect_uris=(redirect_uri,),
                        users=(GITHUB_USER,))
        http, browser = UpstreamHttp(), Browser()
        try:
            with serve(sim.app) as server:
                upstream = GitHubUpstream(GitHubSettings(
                    name="github", display_name="GitHub", client_id=sim.client_id, client_secret=sim.client_secret,
                    redirect_uri=redirect_uri, authorize_url=server.url + "/login/oauth/authorize",
                    token_url=server.url + "/login/oauth/access_token", api_url=server.url + "/api/v3"), http)
                yield GitHubWorld(sim, upstream, browser)
        finally:
            browser.close()
            http.close()

