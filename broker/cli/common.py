"""What every ``broker`` subcommand module shares: the instance's settings from ``--config`` and the texts of
the options all of them take."""

from __future__ import annotations

import argparse
from pathlib import Path

from broker.config.settings import Settings, load_settings

CONFIG_HELP = "config file (default: $BROKER_CONFIG or ./broker.toml)"
JSON_HELP = "print JSON instead of text"


def settings_of(args: argparse.Namespace) -> Settings:
    """The settings of the instance the command names (``--config``, else ``BROKER_CONFIG``, else ./broker.toml),
    validated as the broker validates them at start-up."""
    return load_settings(Path(args.config) if args.config else None)
