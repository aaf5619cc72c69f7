"""The peers of ``bench/gunicorn_bench.py`` as WSGI app factories for their own gunicorn processes.

``op_app()``: the demo OpenID provider (``broker.demo``, authlib, auto-login, in-memory codes: serve it with one
worker). ``idp_app()``: the pysaml2 test IdP (``tests.peers.saml_idp.TestIdp``, auto-login) with pysaml2's
signing swapped for the in-process xmlsec backend (``broker.saml.xmlsec_backend``) instead of one ``xmlsec1``
program run per signature (about 14 signed Responses/s, which would make the peer the bottleneck).

Configuration comes from environment variables set by the bench (see each factory).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def op_app() -> Any:
    """BENCH_OP_ISSUER, BENCH_OP_CLIENT_ID, BENCH_OP_SECRET_FILE, BENCH_OP_REDIRECT_URI."""
    from broker.demo.oidc_provider import create_demo_provider
    from broker.demo.oidc_provider_config import DemoClient, DemoProviderSettings
    from tests.flows.federation import CITIZEN

    env = os.environ
    provider = create_demo_provider(DemoProviderSettings(
        issuer=env["BENCH_OP_ISSUER"],
        clients=(DemoClient(env["BENCH_OP_CLIENT_ID"], Path(env["BENCH_OP_SECRET_FILE"]).read_text(),
                            (env["BENCH_OP_REDIRECT_URI"],)),),
        users=(CITIZEN,),
        auto_login=CITIZEN.username,
    ))
    return provider.app


def idp_app() -> Any:
    """BENCH_IDP_ENTITY_ID, BENCH_IDP_KEY, BENCH_IDP_CERT, BENCH_IDP_SP_METADATA (the broker's SP metadata file)."""
    from broker.saml.xmlsec_backend import install_in_process_backend
    from tests.flows.saml_upstream import CITIZEN
    from tests.peers.saml_idp import TestIdp

    env = os.environ
    idp = TestIdp(env["BENCH_IDP_ENTITY_ID"], env["BENCH_IDP_KEY"], env["BENCH_IDP_CERT"],
                  sp_metadata=Path(env["BENCH_IDP_SP_METADATA"]).read_text())
    install_in_process_backend(idp.server)
    app = idp.app(CITIZEN)
    state = app.extensions["test_idp"]

    def forgetful(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if len(state.seen) > 1000:  # the app records every request for tests; a bench must not grow without end
            del state.seen[:]
        return app(environ, start_response)

    return forgetful


def counted_broker_app() -> Any:
    """The broker with an ``X-Bench-Sql: <statements> <commits>`` response header counting what each request sent
    to the database (SQLAlchemy events on every engine), for the access log; the bench's ``--count-sql``."""
    import threading

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from broker import create_app

    counts = threading.local()

    def statement(*_: Any) -> None:
        counts.statements = getattr(counts, "statements", 0) + 1

    def commit(*_: Any) -> None:
        counts.commits = getattr(counts, "commits", 0) + 1

    event.listen(Engine, "before_cursor_execute", statement)
    event.listen(Engine, "commit", commit)
    app = create_app()
    inner = app.wsgi_app

    def counting(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        counts.statements = counts.commits = 0

        def starting(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
            # the response starts after the view (and its commits) ran
            headers.append(("X-Bench-Sql", f"{counts.statements} {counts.commits}"))
            return start_response(status, headers, *rest)

        return inner(environ, starting)

    app.wsgi_app = counting  # type: ignore[method-assign]
    return app
