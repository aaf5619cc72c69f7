"""XML-signature throughput: the in-process backend against pysaml2's stock xmlsec1 backend.

Run from the repository root: ``python bench/xmlsig_bench.py [--seconds 5] [--max-iterations 20000]``.
Builds a throw-away RSA 2048 key, a pysaml2 IdP, and a realistic AuthnResponse (several attributes, signed
assertion and signed response), then prints operations per second. Each loop stops at the iteration cap or
the time budget, whichever comes first.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

warnings.filterwarnings("ignore", module="saml2")  # pysaml2 imports a deprecated cryptography API

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, class_name  # noqa: E402
from saml2.config import IdPConfig, SPConfig  # noqa: E402
from saml2.metadata import entity_descriptor  # noqa: E402
from saml2.saml import AUTHN_PASSWORD_PROTECTED, NAME_FORMAT_URI, NAMEID_FORMAT_PERSISTENT, NameID  # noqa: E402
from saml2.server import Server  # noqa: E402
from saml2.sigver import CryptoBackendXmlSec1, pre_signature_part  # noqa: E402
from saml2.xml.schema import validate as schema_validate  # noqa: E402
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256  # noqa: E402

from broker.keys.keyring import generate_keyring  # noqa: E402
from broker.saml.xmlsec_backend import InProcessXmlSecBackend, install_in_process_backend  # noqa: E402

IDP = "https://idp.bench.example/saml/metadata"
SP = "https://sp.bench.example/saml/metadata"
ACS = "https://sp.bench.example/saml/acs"
IDENTITY = {
    "mail": ["alice.liddell@example.org"],
    "givenName": ["Alice"],
    "sn": ["Liddell"],
    "displayName": ["Alice Liddell"],
    "eduPersonPrincipalName": ["alice@example.org"],
    "eduPersonAffiliation": ["member", "staff", "employee"],
    "o": ["City of Example"],
    "telephoneNumber": ["+31 20 555 0100"],
}


def make_keys(directory: Path) -> tuple[str, str]:
    keys = generate_keyring(directory, "xmlsig-bench", bits=2048)
    return str(keys.key_file), str(keys.cert_file)


def make_idp(key_file: str, cert_file: str, xmlsec1: str) -> Server:
    algs = {"signing_algorithm": SIG_RSA_SHA256, "digest_algorithm": DIGEST_SHA256}
    sp_conf = {
        "entityid": SP,
        "xmlsec_binary": xmlsec1,
        "service": {"sp": {"endpoints": {"assertion_consumer_service": [(ACS, BINDING_HTTP_POST)]}}},
    }
    sp_md = str(entity_descriptor(SPConfig().load(sp_conf)))
    idp_conf = {
        "entityid": IDP,
        "key_file": key_file,
        "cert_file": cert_file,
        "xmlsec_binary": xmlsec1,
        "metadata": {"inline": [sp_md]},
        "service": {
            "idp": {
                "endpoints": {"single_sign_on_service": [(IDP + "/sso", BINDING_HTTP_REDIRECT)]},
                "policy": {"default": {"lifetime": {"minutes": 5}, "name_form": NAME_FORMAT_URI}},
                **algs,
            }
        },
    }
    return Server(config=IdPConfig().load(idp_conf))


def authn_response(idp: Server, **signing: bool) -> Any:
    return idp.create_authn_response(
        IDENTITY,
        in_response_to="id-bench-request",
        destination=ACS,
        sp_entity_id=SP,
        name_id=NameID(format=NAMEID_FORMAT_PERSISTENT, text="alice-7f3a9c"),
        authn={"class_ref": AUTHN_PASSWORD_PROTECTED},
        **signing,
    )


def rate(label: str, fn: Callable[[], object], max_iterations: int, seconds: float) -> float:
    fn()  # warm-up (and fail fast)
    done, start = 0, time.perf_counter()
    deadline = start + seconds
    while done < max_iterations and time.perf_counter() < deadline:
        fn()
        done += 1
    elapsed = time.perf_counter() - start
    per_second = done / elapsed
    print(f"{label:<58} {per_second:>10.1f} /s   ({done} in {elapsed:.2f} s)")
    return per_second


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="time budget per measurement (default 5)")
    parser.add_argument("--max-iterations", type=int, default=20_000, help="iteration cap per measurement")
    args = parser.parse_args()
    xmlsec1 = shutil.which("xmlsec1")
    if xmlsec1 is None:
        print("xmlsec1 is not installed (apt-get install xmlsec1); it is needed for the comparison", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory() as tmp:
        key_file, cert_file = make_keys(Path(tmp))
        idp = make_idp(key_file, cert_file, xmlsec1)
        stock = CryptoBackendXmlSec1(xmlsec1)
        fast = InProcessXmlSecBackend(xmlsec1)

        # A response with signature templates on both the assertion and the response, not yet signed.
        response = authn_response(idp, sign_response=False, sign_assertion=False)
        cert_b64 = "".join(Path(cert_file).read_text().splitlines()[1:-1])
        for number, item in ((1, response), (2, response.assertion)):  # distinct Signature Ids, as pysaml2 does
            item.signature = pre_signature_part(
                item.id, cert_b64, number, sign_alg=SIG_RSA_SHA256, digest_alg=DIGEST_SHA256
            )
        template = str(response)
        assertion_node, assertion_id = class_name(response.assertion), response.assertion.id
        response_node, response_id = class_name(response), response.id
        signed = fast.sign_statement(
            fast.sign_statement(template, assertion_node, key_file, assertion_id), response_node, key_file, response_id
        )
        print(f"document: signed AuthnResponse, {len(signed)} bytes, {len(IDENTITY)} attributes, 2 signatures")
        print(f"budget: at most {args.max_iterations} iterations or {args.seconds:g} s per line\n")

        n, s = args.max_iterations, args.seconds
        sign_fast = rate("sign (1 signature), in-process", lambda: fast.sign_statement(
            template, assertion_node, key_file, assertion_id), n, s)
        sign_bin = rate("sign (1 signature), xmlsec1 binary", lambda: stock.sign_statement(
            template, assertion_node, key_file, assertion_id), n, s)
        verify_fast = rate("verify (1 signature), in-process", lambda: fast.validate_signature(
            signed, cert_file, "pem", response_node, response_id), n, s)
        verify_bin = rate("verify (1 signature), xmlsec1 binary", lambda: stock.validate_signature(
            signed, cert_file, "pem", response_node, response_id), n, s)
        rate("pysaml2 schema validation (saml2.xml.schema.validate)", lambda: schema_validate(signed), n, s)

        full = dict(sign_response=True, sign_assertion=True)
        rate("IdP create_authn_response, 2 signatures, xmlsec1 binary", lambda: authn_response(idp, **full), n, s)
        install_in_process_backend(idp)
        rate("IdP create_authn_response, 2 signatures, in-process", lambda: authn_response(idp, **full), n, s)

    print(f"\nspeed-up: signing x{sign_fast / sign_bin:.0f}, verification x{verify_fast / verify_bin:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
