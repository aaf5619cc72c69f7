"""The SQLite database and its ``-wal`` and ``-shm`` files are created readable by their owner only (issue 15,
point 2: they hold browser sessions, grants and sealed claims), whatever the process's umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from broker.storage import create_engine_for


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The most permissive umask: without the defence SQLite would create the files 0666."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_database_and_its_wal_and_shm_files_are_created_0600(tmp_path: Path, open_umask: None) -> None:
    database = tmp_path / "broker.db"
    engine = create_engine_for(f"sqlite:///{database}")
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE t (x TEXT)"))
            connection.execute(text("INSERT INTO t VALUES ('written through the WAL')"))
        files = [database, tmp_path / "broker.db-wal", tmp_path / "broker.db-shm"]
        assert all(f.exists() for f in files)
        assert {f.name: oct(_mode(f)) for f in files} == {f.name: "0o600" for f in files}
    finally:
        engine.dispose()


def test_an_existing_database_keeps_its_mode(tmp_path: Path) -> None:
    database = tmp_path / "broker.db"
    database.touch()
    database.chmod(0o640)  # the operator's choice (a backup group may read it)
    create_engine_for(f"sqlite:///{database}").dispose()
    assert _mode(database) == 0o640


def test_a_database_in_a_missing_folder_fails_as_before(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'missing' / 'broker.db'}")
    try:
        with pytest.raises(Exception, match="unable to open database file"):
            engine.connect().close()
    finally:
        engine.dispose()
