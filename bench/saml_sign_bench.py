"""Milliseconds per signed SAML Response: pysaml2's stock sign path against the broker's one-pass signing.

Run from the repository root: ``python bench/saml_sign_bench.py [-n 200] [--rounds 5] [--bits 3072]``.
One IdP (the broker's ``IdpServers``, in-process xmlsec backend, RSA 3072 by default like ``broker init``) answers
one registered SP (3 attributes). Each line makes N Responses per round, in one thread, the two paths alternating
round by round, and prints the mean CPU time (``time.process_time``) of the best round and of the median round.

- stock: the broker's code path as it was, ``Server._authn_response(sign_response=True, sign_assertion=True)``:
  pysaml2 serialises the Response, then parses, signs and serialises it once per signature.
- one pass: ``broker.downstream.saml_responses.session_answer``: built unsigned, serialised once, both signatures
  made on one parsed tree (``broker.saml.message_signing``), serialised once.
The same two for error Responses (one signature), and the signing step alone on the same unsigned document.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

warnings.filterwarnings("ignore", module="saml2")  # pysaml2 imports a deprecated cryptography API
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the test SP and IdP world live in tests/

from saml2 import samlp  # noqa: E402
from saml2.assertion import authn_statement  # noqa: E402
from saml2.sigver import signed_instance_factory  # noqa: E402
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256  # noqa: E402

from broker.core import errors  # noqa: E402
from broker.core.model import LoginResult  # noqa: E402
from broker.downstream.saml_responses import AC_UNSPECIFIED, _name_id, error_response, session_answer  # noqa: E402
from broker.saml.attributes import to_ava  # noqa: E402
from broker.saml.message_signing import add_templates  # noqa: E402
from tests.saml.idp_answer_support import IdpWorld, make_idp_world  # noqa: E402

UPSTREAM = "https://city.example.org/idp"


def stock_answer(world: IdpWorld, result: LoginResult) -> str:
    """``session_answer`` before issue 21: pysaml2 signs (``Entity.sign`` -> ``signed_instance_factory``)."""
    server = world.servers.server(world.catalog)
    statement = authn_statement(authn_class=AC_UNSPECIFIED, authn_auth=UPSTREAM,
                                authn_instant=int(result.auth_time.timestamp()))
    statement.session_index = "sid-1"
    request = result.request
    xml = server._authn_response(
        request.request_id, request.return_to, request.downstream, identity=to_ava(result.released),
        name_id=_name_id(world.servers, request, result.account.account_id), authn_statement=statement,
        policy=server.config.getattr("policy", "idp"), sign_response=True, sign_assertion=True,
        sign_alg=SIG_RSA_SHA256, digest_alg=DIGEST_SHA256)
    return str(xml)


def stock_error(world: IdpWorld, result: LoginResult) -> str:
    status = samlp.Status(status_code=samlp.StatusCode(value=errors.SAML_RESPONDER),
                          status_message=samlp.StatusMessage(text="no"))
    request = result.request
    xml = world.servers.server(world.catalog)._response(
        request.request_id, request.return_to, status, sign=True, sp_entity_id=request.downstream,
        sign_alg=SIG_RSA_SHA256, digest_alg=DIGEST_SHA256)
    return str(xml)


def unsigned_document(world: IdpWorld, result: LoginResult) -> tuple[bytes, list[tuple[str, str | None]]]:
    """An unsigned Response with both templates, as the one-pass signer receives it, and the parts to sign."""
    server = world.servers.server(world.catalog)
    request = result.request
    response = server._authn_response(
        request.request_id, request.return_to, request.downstream, identity=to_ava(result.released),
        name_id=_name_id(world.servers, request, result.account.account_id),
        policy=server.config.getattr("policy", "idp"), sign_response=False, sign_assertion=False)
    parts = add_templates(server, response, (response.assertion,), sign_alg=SIG_RSA_SHA256, digest_alg=DIGEST_SHA256)
    return response.to_string(), parts


def per_call_ms(stock: Callable[[], object], one_pass: Callable[[], object], n: int,
                rounds: int) -> tuple[list[float], list[float]]:
    """Mean CPU ms per call of each round, the two alternating round by round (other load then hits both alike)."""
    stock(), one_pass()  # warm-up, and fail fast
    means: tuple[list[float], list[float]] = ([], [])
    for _ in range(rounds):
        for fn, out in ((stock, means[0]), (one_pass, means[1])):
            start = time.process_time()  # CPU time of this process: the other load on the machine counts less
            for _ in range(n):
                fn()
            out.append((time.process_time() - start) / n * 1000)
    return means


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="Responses per round (default 200)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per path and line (default 5)")
    parser.add_argument("--bits", type=int, default=3072, help="RSA key size of the IdP (default 3072)")
    args = parser.parse_args()
    if shutil.which("xmlsec1") is None:
        print("xmlsec1 is not installed (apt-get install xmlsec1); the test SP needs it", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        world = make_idp_world(Path(tmp), bits=args.bits)
        result = world.login()
        server = world.servers.server(world.catalog)
        document, parts = unsigned_document(world, result)
        key_file = server.sec.key_file
        lines: list[tuple[str, Callable[[], object], Callable[[], object]]] = [
            ("Response + Assertion signed (session_answer)",
             lambda: stock_answer(world, result),
             lambda: session_answer(world.servers, world.catalog, result, UPSTREAM, "sid-1")),
            ("error Response, Response signed (error_response)",
             lambda: stock_error(world, result),
             lambda: error_response(world.servers, world.catalog, result.request, errors.ConsentDeclined())),
            ("signing alone, same unsigned document, 2 signatures",
             lambda: signed_instance_factory(document.decode(), server.sec, parts),
             lambda: server.sec.crypto.sign_statements(document, parts, key_file)),
        ]
        print(f"RSA {args.bits}, N={args.n} per round, {args.rounds} rounds alternating, one thread; "
              "CPU ms per Response: best round (median round)\n")
        print(f"| {'what':<52} | {'stock':>15} | {'one pass':>15} | {'saved (best)':>12} |")
        print(f"|{'-' * 54}|{'-' * 17}|{'-' * 17}|{'-' * 14}|")
        for label, stock, one_pass in lines:
            before, after = per_call_ms(stock, one_pass, args.n, args.rounds)
            cells = [f"{min(m):.3f} ({statistics.median(m):.3f})" for m in (before, after)]
            print(f"| {label:<52} | {cells[0]:>15} | {cells[1]:>15} | {min(before) - min(after):>12.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
