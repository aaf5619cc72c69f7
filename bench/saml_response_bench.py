"""Throughput of upstream SAML Response verification: ``broker.upstream.saml_response`` against pysaml2's SP.

Run from the repository root: ``python bench/saml_response_bench.py [--seconds 3] [--max-iterations 20000]``.
A pysaml2 IdP (``tests.peers.saml_idp``, RSA 2048, rsa-sha256) issues realistic signed responses (3 attributes);
each line verifies the same base64 SAMLResponse in a loop, in one thread, and prints responses per second.
pysaml2's ``Saml2Client.parse_authn_request_response`` runs with its stock ``xmlsec1`` backend and with the
broker's in-process backend (``install_in_process_backend``); it always validates with the pure-Python
``xmlschema`` package. The broker's verifier runs with and without libxml2 schema validation.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

warnings.filterwarnings("ignore", module="saml2")  # pysaml2 imports a deprecated cryptography API

from saml2 import BINDING_HTTP_POST  # noqa: E402
from saml2.client import Saml2Client  # noqa: E402
from saml2.config import SPConfig  # noqa: E402

from broker.saml.attributes import converters  # noqa: E402
from broker.saml.xmlsec_backend import install_in_process_backend  # noqa: E402
from broker.upstream.saml_response import ResponseExpectations, verify_response  # noqa: E402
from tests.peers.saml_idp import IdpWorld, make_idp_world  # noqa: E402

REQUEST_ID = "id-bench-request-0001"
IDENTITY = {"mail": ["alice.liddell@example.org"], "givenName": ["Alice"], "sn": ["Liddell"]}


def pysaml2_sp(world: IdpWorld, xmlsec1: str, *, in_process: bool) -> Any:
    conf = SPConfig().load({
        "entityid": world.sp_entity_id,
        "key_file": world.sp_key_file,
        "cert_file": world.sp_cert_file,
        "encryption_keypairs": [{"key_file": world.sp_key_file, "cert_file": world.sp_cert_file}],
        "xmlsec_binary": xmlsec1,
        "metadata": {"inline": [world.idp.metadata()]},
        "service": {"sp": {
            "endpoints": {"assertion_consumer_service": [(world.acs_url, BINDING_HTTP_POST)]},
            "want_response_signed": False,
            "want_assertions_signed": False,
            "want_assertions_or_response_signed": True,
            "allow_unsolicited": False,
        }},
    })
    conf.attribute_converters = converters()
    client = Saml2Client(config=conf)
    if in_process:
        install_in_process_backend(client)
    return client


def verify_now(response: str, expected: ResponseExpectations) -> object:
    return verify_response(response, expected, datetime.now(UTC))


def rate(label: str, fn: Callable[[], object], max_iterations: int, seconds: float) -> float:
    fn()  # warm-up (and fail fast)
    done, start = 0, time.perf_counter()
    deadline = start + seconds
    while done < max_iterations and time.perf_counter() < deadline:
        fn()
        done += 1
    elapsed = time.perf_counter() - start
    per_second = done / elapsed
    print(f"| {label:<92} | {per_second:>9.1f} | {1000 / per_second:>7.3f} |")
    return per_second


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time budget per line (default 3)")
    parser.add_argument("--max-iterations", type=int, default=20_000, help="iteration cap per line")
    args = parser.parse_args()
    xmlsec1 = shutil.which("xmlsec1")
    if xmlsec1 is None:
        print("xmlsec1 is not installed (apt-get install xmlsec1); pysaml2 needs it", file=sys.stderr)
        return 2
    n, s = args.max_iterations, args.seconds
    with tempfile.TemporaryDirectory() as tmp:
        world = make_idp_world(Path(tmp))
        expected = ResponseExpectations(
            sp_entity_id=world.sp_entity_id, acs_urls=frozenset({world.acs_url}), idp_entity_id=world.idp.entity_id,
            signing_certs=(world.cert_b64(),), in_response_to=REQUEST_ID,
            decryption_keys=(Path(world.sp_key_file).read_bytes(),))
        no_schema = replace(expected, validate_schema=False)

        def issue(**kwargs: Any) -> str:
            return world.idp.respond(destination=world.acs_url, in_response_to=REQUEST_ID,
                                     sp_entity_id=world.sp_entity_id, name_id="alice-7f3a9c", attributes=IDENTITY,
                                     **kwargs)

        cases = {
            "both signed": issue(),
            "Response signed": issue(sign_assertion=False),
            "Assertion signed": issue(sign_response=False),
            "both signed, encrypted (aes256-cbc)": issue(encrypt_assertion=True),
        }
        stock, fast = pysaml2_sp(world, xmlsec1, in_process=False), pysaml2_sp(world, xmlsec1, in_process=True)
        print(f"budget: at most {n} iterations or {s:g} s per line; one thread\n")
        print(f"| {'verifier, message':<92} | {'resp/s':>9} | {'ms':>7} |")
        print(f"|{'-' * 94}|{'-' * 11}|{'-' * 9}|")
        results: dict[str, float] = {}
        for name, response in cases.items():
            results[f"broker+schema {name}"] = rate(f"broker verify_response, schema on:  {name}",
                                                    partial(verify_now, response, expected), n, s)
            results[f"broker {name}"] = rate(f"broker verify_response, schema off: {name}",
                                             partial(verify_now, response, no_schema), n, s)
            for label, client in (("in-process xmlsec", fast), ("xmlsec1 binary", stock)):
                results[f"pysaml2 {label} {name}"] = rate(
                    f"pysaml2 parse_authn_request_response, {label}: {name}",
                    partial(client.parse_authn_request_response, response, BINDING_HTTP_POST,
                            outstanding={REQUEST_ID: "/"}), max(n // 10, 50), s)
    best = results["broker+schema both signed"] / results["pysaml2 in-process xmlsec both signed"]
    print(f"\nboth signed: broker (schema on) x{best:.1f} pysaml2 with the in-process backend, "
          f"x{results['broker+schema both signed'] / results['pysaml2 xmlsec1 binary both signed']:.0f} "
          "pysaml2 with xmlsec1")
    return 0


if __name__ == "__main__":
    sys.exit(main())
