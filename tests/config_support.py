"""An instance folder with the three secret files and a ``broker.toml``, for the tests of one settings section."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.config.settings import ConfigError, load_settings
from broker.keys.keyring import write_private

SECRETS = """
[broker]
secret_key_file = "certs/session.secret"
pairwise_secret_file = "certs/pairwise.secret"
claims_key_file = "certs/claims.key"
"""


def instance(folder: Path, sections: str) -> Path:
    """``broker.toml`` in ``folder``: the secret files' settings, then ``sections``."""
    folder.mkdir(parents=True, exist_ok=True)
    write_private(folder / "certs" / "session.secret", b"session-secret-" + b"s" * 40)
    write_private(folder / "certs" / "pairwise.secret", b"pairwise-secret-" + b"p" * 40)
    write_private(folder / "certs" / "claims.key", b"0123456789abcdef" * 4)
    config = folder / "broker.toml"
    config.write_text(SECRETS + "\n" + sections)
    return config


def problems(config: Path, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(config, environ or {})
    return caught.value.problems
