"""What every ``broker`` subcommand module shares: the instance's settings from ``--config`` and the texts of
the options all of them take."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from broker.config.settings import Settings, load_settings
from broker.journeys.context import Journeys

CONFIG_HELP = "config file (default: $BROKER_CONFIG or ./broker.toml)"
JSON_HELP = "print JSON instead of text"


def settings_of(args: argparse.Namespace) -> Settings:
    """The settings of the instance the command names (``--config``, else ``BROKER_CONFIG``, else ./broker.toml),
    validated as the broker validates them at start-up."""
    return load_settings(Path(args.config) if args.config else None)


@contextmanager
def journeys_of(args: argparse.Namespace) -> Iterator[Journeys]:
    """The journeys wired as the web app wires them (the same stores, outbox and event streams), for one command."""
    from broker.app import close_app, create_app

    app = create_app(settings_of(args))
    try:
        with app.app_context():
            yield app.extensions["broker"].journeys
    finally:
        close_app(app)
