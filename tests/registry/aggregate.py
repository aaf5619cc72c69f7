"""Signed SAML metadata aggregates for the registry tests and ``bench/metadata_bench.py``.

Entities reuse a few real RSA certificates made once with ``cryptography`` (generating a key per entity for
20,000 entities would take minutes and test nothing more); the federation's signing key is made per test
session. The aggregate is signed with python-xmlsec: enveloped, exclusive c14n, RSA-SHA256, SHA-256 digest,
Reference to the root's ID, as federations publish them.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from xml.sax.saxutils import escape, quoteattr

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree  # type: ignore[import-untyped]

REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
ASSURANCE = "urn:oasis:names:tc:SAML:attribute:assurance-certification"
BROKEN_KINDS = ("no-sso", "bad-cert", "no-entity-id", "duplicate")


@dataclass(frozen=True)
class FederationKey:
    key_pem: bytes
    cert_pem: bytes


def _self_signed(common_name: str) -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=365)).sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def make_federation_key(common_name: str = "Test Federation Signer") -> FederationKey:
    return FederationKey(*_self_signed(common_name))


def make_entity_certs(count: int = 3) -> tuple[str, ...]:
    """``count`` real certificates as base64 DER (what ds:X509Certificate holds)."""
    out = []
    for i in range(count):
        pem = _self_signed(f"idp-cert-{i}")[1]
        der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
        out.append(base64.b64encode(der).decode("ascii"))
    return tuple(out)


def entity_id(i: int) -> str:
    return f"https://idp{i}.example.org/idp/shibboleth"


def _entity(i: int, certs: tuple[str, ...], names: tuple[str, str], broken: str | None) -> str:
    eid = "" if broken == "no-entity-id" else entity_id(0 if broken == "duplicate" else i)
    sign_cert = "not*base64!" if broken == "bad-cert" else certs[i % len(certs)]
    enc_cert = certs[(i + 1) % len(certs)]
    host = f"https://idp{i}.example.org"
    sso = "" if broken == "no-sso" else (
        f'<md:SingleSignOnService Binding="{REDIRECT}" Location="{host}/sso/redirect"/>'
        f'<md:SingleSignOnService Binding="{POST}" Location="{host}/sso/post"/>')
    en, fr = (escape(n) for n in names)
    return f"""<md:EntityDescriptor entityID={quoteattr(eid)}>
<md:Extensions><mdrpi:RegistrationInfo registrationAuthority="https://federation.example.org/"/>
<mdattr:EntityAttributes>
<saml:Attribute Name="{ASSURANCE}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri">
<saml:AttributeValue>https://refeds.org/sirtfi</saml:AttributeValue></saml:Attribute></mdattr:EntityAttributes>
</md:Extensions>
<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"
 WantAuthnRequestsSigned="{str(i % 2 == 0).lower()}">
<md:Extensions><mdui:UIInfo>
<mdui:DisplayName xml:lang="en">{en}</mdui:DisplayName><mdui:DisplayName xml:lang="fr">{fr}</mdui:DisplayName>
<mdui:Description xml:lang="en">Identity provider number {i} of the test federation.</mdui:Description>
<mdui:InformationURL xml:lang="en">{host}/about</mdui:InformationURL>
<mdui:Logo height="60" width="80">{host}/logo.png</mdui:Logo>
<mdui:Logo height="16" width="16">http://insecure.example.org/logo.png</mdui:Logo>
<mdui:Keywords xml:lang="en">university research campus{i} city+hall</mdui:Keywords>
</mdui:UIInfo></md:Extensions>
<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data>
<ds:X509Certificate>{sign_cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
<md:KeyDescriptor use="encryption"><ds:KeyInfo><ds:X509Data>
<ds:X509Certificate>{enc_cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
<md:SingleLogoutService Binding="{REDIRECT}" Location="{host}/slo" ResponseLocation="{host}/slo/response"/>
<md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</md:NameIDFormat>
{sso}
</md:IDPSSODescriptor>
<md:Organization><md:OrganizationName xml:lang="en">Org {i}</md:OrganizationName>
<md:OrganizationDisplayName xml:lang="en">Organisation {i}</md:OrganizationDisplayName>
<md:OrganizationURL xml:lang="en">{host}/</md:OrganizationURL></md:Organization>
</md:EntityDescriptor>
"""


def default_names(i: int) -> tuple[str, str]:
    return f"University of Example {i}", f"Université d'Exemple {i}"


def make_aggregate(
    count: int,
    key: FederationKey | None,
    certs: tuple[str, ...],
    *,
    valid_until: datetime | None = None,
    cache_duration: str | None = "PT6H",
    broken: dict[int, str] | None = None,
    names: dict[int, tuple[str, str]] | None = None,
    tamper: bool = False,
    reference_uri: str | None = None,
    sha1: bool = False,
) -> bytes:
    """An EntitiesDescriptor of ``count`` IdPs, signed with ``key`` (unsigned when None).

    ``broken`` maps an entity number to one of :data:`BROKEN_KINDS`; ``names`` overrides (en, fr) display
    names; ``tamper`` changes a display name after signing; ``reference_uri`` defaults to ``#<root ID>``;
    ``sha1`` signs with RSA-SHA1 and a SHA-1 digest (which the registry must refuse).
    """
    broken = broken or {}
    names = names or {}
    attrs = ' ID="_fed20261124"'
    if valid_until is not None:
        attrs += f' validUntil="{valid_until.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}"'
    if cache_duration:
        attrs += f' cacheDuration="{cache_duration}"'
    head = ('<?xml version="1.0" encoding="UTF-8"?>\n<md:EntitiesDescriptor '
            'xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" '
            'xmlns:mdui="urn:oasis:names:tc:SAML:metadata:ui" xmlns:mdrpi="urn:oasis:names:tc:SAML:metadata:rpi" '
            'xmlns:mdattr="urn:oasis:names:tc:SAML:metadata:attribute" '
            f'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" Name="https://federation.example.org"{attrs}>\n')
    body = "".join(_entity(i, certs, names.get(i) or default_names(i), broken.get(i)) for i in range(count))
    document = (head + body + "</md:EntitiesDescriptor>\n").encode("utf-8")
    if key is None:
        return document
    signed = sign(document, key, reference_uri=reference_uri, sha1=sha1)
    if tamper:
        first = (names.get(0) or default_names(0))[0]
        signed = signed.replace(f">{escape(first)}<".encode(), b">Evil Twin IdP<", 1)
    return signed


def sign(document: bytes, key: FederationKey, *, reference_uri: str | None = None, sha1: bool = False) -> bytes:
    c = xmlsec.constants
    root = etree.fromstring(document, etree.XMLParser(huge_tree=True, resolve_entities=False))
    method = c.TransformRsaSha1 if sha1 else c.TransformRsaSha256
    signature = xmlsec.template.create(root, c.TransformExclC14N, method, ns="ds")
    root.insert(0, signature)
    uri = f"#{root.get('ID')}" if reference_uri is None else reference_uri
    ref = xmlsec.template.add_reference(signature, c.TransformSha1 if sha1 else c.TransformSha256, uri=uri)
    xmlsec.template.add_transform(ref, c.TransformEnveloped)
    xmlsec.template.add_transform(ref, c.TransformExclC14N)
    xmlsec.template.add_x509_data(xmlsec.template.ensure_key_info(signature))
    ctx = xmlsec.SignatureContext()
    ctx.key = xmlsec.Key.from_memory(key.key_pem, c.KeyDataFormatPem)
    ctx.key.load_cert_from_memory(key.cert_pem, c.KeyDataFormatCertPem)
    xmlsec.tree.add_ids(root, ["ID"])
    ctx.sign(signature)
    out: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return out


@dataclass(frozen=True)
class Material:
    federation: FederationKey
    other: FederationKey  # a key the federation never pinned: what an attacker would sign with
    certs: tuple[str, ...]


_material: list[Material] = []


def session_material() -> Material:
    """Keys made once per test process (i.e. per test session) and shared by the registry tests."""
    if not _material:
        _material.append(Material(make_federation_key(), make_federation_key("Not The Federation"),
                                  make_entity_certs(3)))
    return _material[0]
