"""The claims-key rotation's test instance: keys written as ``broker`` reads them, ``broker init`` on the test
database, the ``rotate-claims`` command run with ``--json``; shared by the rotation tests."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from broker.cli.main import main
from broker.instance import InstanceOptions, init_instance
from broker.keys.keyring import write_private


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI reads BROKER_* variables: none of the caller's may leak in (the test database's excepted)."""
    for name in list(os.environ):
        if name.startswith("BROKER_") and not name.startswith("BROKER_TEST_"):
            monkeypatch.delenv(name)


def write_keys(folder: Path, current: bytes, *previous: bytes) -> None:
    write_private(folder / "certs" / "claims.key", current.hex().encode() + b"\n")
    write_private(folder / "certs" / "claims-previous.keys", b"".join(k.hex().encode() + b"\n" for k in previous))


def instance(tmp_path: Path, database_url: str) -> Path:
    """``broker init`` on the test database, with an empty previous-keys file named in the config."""
    config = init_instance(InstanceOptions(tmp_path / "instance", database_url=database_url))
    write_private(config.parent / "certs" / "claims-previous.keys", b"")
    config.write_text(config.read_text().replace(
        'claims_key_file = "certs/claims.key"\n',
        'claims_key_file = "certs/claims.key"\nclaims_previous_keys_file = "certs/claims-previous.keys"\n'))
    return config


def rotate(config: Path, capsys: pytest.CaptureFixture[str], *flags: str) -> tuple[int, dict[str, object]]:
    capsys.readouterr()
    code = main(["--config", str(config), "keys", "rotate-claims", "--json", "--batch-size", "2", *flags])
    report: dict[str, object] = json.loads(capsys.readouterr().out)
    return code, report
