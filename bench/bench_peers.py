"""The peers of ``bench/gunicorn_bench.py`` as WSGI app factories for their own gunicorn processes.

``op_app()``: the demo OpenID provider (``broker.demo``, authlib, auto-login, in-memory codes: serve it with one
worker). ``idp_app()``: the pysaml2 test IdP (``tests.peers.saml_idp.TestIdp``, auto-login) with pysaml2's
signing swapped for the in-process xmlsec backend (``broker.saml.xmlsec_backend``) instead of one ``xmlsec1``
program run per signature (about 14 signed Responses/s, which would make the peer the bottleneck).

Both peers know ``BENCH_CITIZENS`` citizens (``bench/bench_citizens.py``: N distinct people, so that concurrent
logins do not all queue on one account's row lock as they did with one citizen) and auto-log in the one the
request's ``bench_citizen`` cookie names (a WSGI wrapper sets a context variable per request; gthread workers
serve each request on one thread). Configuration comes from environment variables set by the bench (see each
factory).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def op_app() -> Any:
    """BENCH_OP_ISSUER, BENCH_OP_CLIENT_ID, BENCH_OP_SECRET_FILE, BENCH_OP_REDIRECT_URI, BENCH_CITIZENS.

    ``auto_login`` names citizen 0; the store's look-up of that name answers with the request's citizen."""
    from bench.bench_citizens import choosing, count_from_env, current, op_user
    from broker.demo.oidc_provider import create_demo_provider
    from broker.demo.oidc_provider_config import DemoClient, DemoProviderSettings, DemoUser

    env = os.environ
    count = count_from_env()
    users = tuple(op_user(n) for n in range(count))
    provider = create_demo_provider(DemoProviderSettings(
        issuer=env["BENCH_OP_ISSUER"],
        clients=(DemoClient(env["BENCH_OP_CLIENT_ID"], Path(env["BENCH_OP_SECRET_FILE"]).read_text(),
                            (env["BENCH_OP_REDIRECT_URI"],)),),
        users=users,
        auto_login=users[0].username,
    ))
    look_up = provider.store.user

    def user(username: str) -> DemoUser | None:
        return users[current()] if username == users[0].username else look_up(username)

    provider.store.user = user  # type: ignore[method-assign]
    return choosing(provider.app, count)


def idp_app() -> Any:
    """BENCH_IDP_ENTITY_ID, BENCH_IDP_KEY, BENCH_IDP_CERT, BENCH_IDP_SP_METADATA (the broker's SP metadata file),
    BENCH_CITIZENS. The app's one user is a ``RequestCitizen``: its values are the request's citizen's."""
    from bench.bench_citizens import RequestCitizen, choosing, count_from_env, idp_user
    from broker.saml.xmlsec_backend import install_in_process_backend
    from tests.peers.saml_idp import IdpUser, TestIdp

    env = os.environ
    idp = TestIdp(env["BENCH_IDP_ENTITY_ID"], env["BENCH_IDP_KEY"], env["BENCH_IDP_CERT"],
                  sp_metadata=Path(env["BENCH_IDP_SP_METADATA"]).read_text())
    install_in_process_backend(idp.server)
    count = count_from_env()
    app = idp.app(cast(IdpUser, RequestCitizen([idp_user(n) for n in range(count)])))
    state = app.extensions["test_idp"]

    def forgetful(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if len(state.seen) > 1000:  # the app records every request for tests; a bench must not grow without end
            del state.seen[:]
        return app(environ, start_response)

    return choosing(forgetful, count)


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
