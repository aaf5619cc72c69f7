"""Counting what each request of the broker sends to its database (issue 21): SQLAlchemy's
``before_cursor_execute`` and ``commit`` events on every engine, attributed to the request that runs on the
thread, and the account store's ``identity_claims`` calls. Flow tests use it to prove needless work stays gone."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from tests.flows.federation import Federation


@dataclass
class Request:
    """One request the broker answered: its method and path, the SQL it sent, its commits."""

    method: str
    path: str
    statements: list[str] = field(default_factory=list)
    commits: int = 0
    identity_claims: int = 0

    def touching(self, table: str, verb: str) -> list[str]:
        """The statements of ``verb`` (SELECT, INSERT, UPDATE, DELETE) that name ``table``."""
        return [s for s in self.statements if s.lstrip().upper().startswith(verb) and table in s]


@dataclass
class Counted:
    requests: list[Request] = field(default_factory=list)

    def at(self, path_start: str) -> list[Request]:
        return [r for r in self.requests if r.path.startswith(path_start)]

    def report(self) -> str:
        return "\n".join(f"{r.method} {r.path}: {len(r.statements)} statements, {r.commits} commits, "
                         f"identity_claims x{r.identity_claims}" for r in self.requests)


@contextmanager
def counting(federation: Federation) -> Iterator[Counted]:
    """Every request the broker answers while this is open, with what it sent to the database."""
    counted = Counted()
    local = threading.local()
    services = federation.app.extensions["broker"]
    accounts = services.journeys.accounts
    inner_claims = accounts.identity_claims

    def current() -> Request | None:
        found: Request | None = getattr(local, "request", None)
        return found

    def statement(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        request = current()
        if request is not None:
            request.statements.append(sql)

    def commit(*_: Any) -> None:
        request = current()
        if request is not None:
            request.commits += 1

    def identity_claims(account_id: str) -> Any:
        request = current()
        if request is not None:
            request.identity_claims += 1
        return inner_claims(account_id)

    target = federation.broker_late.target
    assert target is not None

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        local.request = Request(environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""))
        counted.requests.append(local.request)
        try:
            return list(target(environ, start_response))
        finally:
            local.request = None

    event.listen(Engine, "before_cursor_execute", statement)
    event.listen(Engine, "commit", commit)
    accounts.identity_claims = identity_claims
    federation.broker_late.target = app
    try:
        yield counted
    finally:
        federation.broker_late.target = target
        del accounts.identity_claims
        event.remove(Engine, "before_cursor_execute", statement)
        event.remove(Engine, "commit", commit)
