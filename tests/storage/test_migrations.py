"""The migrations build exactly the schema ``broker.storage.tables`` describes, and re-running them is harmless."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from broker.storage import create_engine_for, current_revision, upgrade
from broker.storage.migrate import alembic_config, head_revision
from broker.storage.tables import Base


def test_upgrade_from_empty_database(database_url: str) -> None:
    assert current_revision(database_url) is None
    upgrade(database_url)
    assert current_revision(database_url) == head_revision()
    engine = create_engine_for(database_url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"accounts", "linked_identities", "pending_states", "alembic_version"} <= tables


def test_second_upgrade_is_a_no_op(database_url: str) -> None:
    upgrade(database_url)
    upgrade(database_url)
    assert current_revision(database_url) == head_revision()


def test_migrated_schema_equals_table_definitions(database_url: str) -> None:
    upgrade(database_url)
    engine = create_engine_for(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_table_definitions_differ_from_a_changed_schema(database_url: str) -> None:
    """Guard for the comparison itself: it does notice a difference."""
    upgrade(database_url)
    engine = create_engine_for(database_url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP INDEX ix_pending_states_expires_at")
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    finally:
        engine.dispose()
    assert [d[0] for d in differences] == ["add_index"]


def test_environment_connects_by_itself_when_given_only_a_url(database_url: str) -> None:
    """The ``alembic`` command-line path: no connection passed, env.py opens (and closes) its own."""
    config = alembic_config()
    config.attributes["url"] = database_url
    command.upgrade(config, "head")
    assert current_revision(database_url) == head_revision()
