"""A federation and single sign-on broker for cities and public services."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["create_app"]


def create_app(*args: Any, **kwargs: Any) -> Flask:
    """See ``broker.app.create_app``; imported lazily so ``import broker`` stays light."""
    from broker.app import create_app as _create_app

    return _create_app(*args, **kwargs)
