"""Databases for tests: a fresh SQLite file always, and PostgreSQL when ``BROKER_TEST_DATABASE_URL`` is set.

On PostgreSQL every use gets its own schema (reached through ``search_path`` in the URL), dropped
afterwards, so tests never see each other's rows and the database is left as it was. A configured but
unreachable server fails the run instead of skipping it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.exc import OperationalError

from broker.storage import create_engine_for
from broker.storage.migrate import upgrade

POSTGRES_ENV = "BROKER_TEST_DATABASE_URL"
BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get(POSTGRES_ENV) else [])


def database_for(backend: str, folder: Path) -> Iterator[str]:
    """Yield an empty database URL of ``backend``; clean up after."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'broker.db'}"
        return
    yield from postgres_schema(os.environ[POSTGRES_ENV])


def migrated(url: str) -> None:
    """``upgrade(url)`` to the newest revision. A SQLite database not created yet becomes a copy of one migrated
    once per test process: running every migration takes about a second per database, most of a flow test's
    set-up. The copy is the very file the migrations wrote (``tests/storage/test_migrations.py`` still runs them
    one by one); other databases are migrated."""
    database = make_url(url).database if make_url(url).get_backend_name() == "sqlite" else None
    if not database or database.startswith("file:") or database == ":memory:" or (
            Path(database).exists() and Path(database).stat().st_size > 0):
        upgrade(url)
        return
    shutil.copyfile(_sqlite_template(), database)
    os.chmod(database, 0o600)


_TEMPLATE: list[Path] = []


def _sqlite_template() -> Path:
    if not _TEMPLATE:
        path = Path(tempfile.mkdtemp(prefix="broker-template-")) / "migrated.db"
        upgrade(f"sqlite:///{path}")
        engine = create_engine_for(f"sqlite:///{path}")
        try:
            with engine.connect() as connection:  # everything into the main file: the copy takes no -wal file
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            engine.dispose()
        _TEMPLATE.append(path)
    return _TEMPLATE[0]


def postgres_schema(base_url: str) -> Iterator[str]:
    schema = f"t_{secrets.token_hex(8)}"
    admin = create_engine_for(base_url)
    try:
        try:
            with admin.begin() as connection:
                connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        except OperationalError as exc:
            pytest.fail(f"{POSTGRES_ENV} is set but the database is unreachable: {exc}", pytrace=False)
        url = make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()
