"""Alembic scripts of the broker schema (a package so that ``env.py`` ships with the wheel)."""
