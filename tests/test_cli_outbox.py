"""``broker worker`` and ``broker outbox`` (issue 18): a message a receiver refuses (400) is a dead letter at once,
the operator sees it in ``broker outbox list --state dead`` (never its token), ``broker outbox retry`` puts it back
and the next ``broker worker --once`` delivers it; ``broker worker`` stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from broker.config.settings import load_settings
from broker.core.model import utcnow
from broker.core.outbox import OutgoingMessage
from broker.instance import InstanceOptions, init_instance
from broker.storage import SqlOutbox, create_engine_for
from tests.cli_support import Result, clean_environment  # noqa: F401 - an autouse fixture
from tests.databases import BACKENDS, POSTGRES_ENV, database_for, postgres_schema
from tests.delivery.receiver_support import Receiver, message

TOKEN = "logout_token=token-permits-logout-1"
#: read before ``clean_environment`` removes every BROKER_* variable
POSTGRES_URL = os.environ.get(POSTGRES_ENV, "")



@pytest.fixture(params=BACKENDS)
def config(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An instance on SQLite (and on PostgreSQL when configured); HTTP to 127.0.0.1 goes through no proxy."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    urls = postgres_schema(POSTGRES_URL) if request.param == "postgresql" else database_for("sqlite", tmp_path)
    for url in urls:
        yield init_instance(InstanceOptions(tmp_path / "instance", database_url=url))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver().start() as running:
        yield running


def _enqueue(config: Path, *messages: OutgoingMessage) -> None:
    engine = create_engine_for(load_settings(config).database_url)
    try:
        for each in messages:
            assert SqlOutbox(engine).enqueue(each, utcnow())
    finally:
        engine.dispose()


def test_a_refused_message_is_a_dead_letter_the_operator_can_retry(cli: Any, config: Path,
                                                                   receiver: Receiver) -> None:
    _enqueue(config, message(receiver, "logout-1"))
    receiver.status = 400  # Back-Channel Logout 1.0 §2.8: the RP rejected the logout token

    worked = cli("--config", str(config), "worker", "--once", "--json")
    assert worked.code == 0, worked.err
    assert worked.json() == {"claimed": 1, "delivered": 0, "retried": 0, "dead": 1, "purged": 0}

    listed = cli("--config", str(config), "outbox", "list", "--state", "dead")
    assert listed.code == 0
    (line,) = listed.out.splitlines()
    message_id = line.split()[0]
    assert " dead attempts=1 " in line and "receiver=permits kind=backchannel-logout jti=logout-1" in line
    assert "last_error='HTTP 400: refused by the receiver'" in line
    assert TOKEN not in listed.out and receiver.url not in listed.out
    (shown,) = cli("--config", str(config), "outbox", "list", "--state", "dead", "--json").json()
    assert (shown["id"], shown["state"], shown["jti"], shown["attempts"]) == (message_id, "dead", "logout-1", 1)
    assert "body" not in shown and "url" not in shown
    assert cli("--config", str(config), "outbox", "list").out == listed.out  # dead letters by default
    assert cli("--config", str(config), "outbox", "list", "--state", "pending").out == ""

    receiver.status = 200  # the operator got the receiver fixed
    retried = cli("--config", str(config), "outbox", "retry", message_id)
    assert (retried.code, retried.out) == (0, f"{message_id} is back in the queue\n")
    assert cli("--config", str(config), "outbox", "list", "--state", "pending").out.startswith(
        f"{message_id} pending attempts=0 ")
    again = cli("--config", str(config), "worker", "--once")
    assert again.code == 0 and again.out.startswith("claimed 1: delivered 1, to retry 0, dead 0")
    assert cli("--config", str(config), "outbox", "list", "--state", "delivered").out.startswith(
        f"{message_id} delivered attempts=1 ")
    assert receiver.accepted == {TOKEN: 1} and len(receiver.received) == 2


def test_retry_of_what_is_not_a_dead_letter_fails(cli: Any, config: Path, receiver: Receiver) -> None:
    _enqueue(config, message(receiver, "logout-1"))
    (shown,) = cli("--config", str(config), "outbox", "list", "--state", "pending", "--json").json()
    result = cli("--config", str(config), "outbox", "retry", shown["id"])
    assert (result.code, result.err) == (1, f"broker: {shown['id']}: not a dead letter (it is pending)\n")
    result = cli("--config", str(config), "outbox", "retry", "no-such-id")
    assert (result.code, result.err) == (1, "broker: no-such-id: no such message\n")


def test_held_messages_are_listed_and_not_sent_until_released(cli: Any, config: Path, receiver: Receiver) -> None:
    """SSF 1.0 §8.1.2: what a paused stream holds is in ``broker outbox list --state held``, with no next attempt;
    the worker never sends it until it is released."""
    engine = create_engine_for(load_settings(config).database_url)
    try:
        assert SqlOutbox(engine).enqueue(message(receiver, "held-1", client="stream-1"), utcnow(), held=True)
        worked = cli("--config", str(config), "worker", "--once", "--json")
        assert worked.code == 0 and worked.json()["claimed"] == 0 and receiver.received == []
        listed = cli("--config", str(config), "outbox", "list", "--state", "held")
        (line,) = listed.out.splitlines()
        assert " held attempts=0 " in line and " next=- receiver=stream-1 " in line and "jti=held-1" in line
        (shown,) = cli("--config", str(config), "outbox", "list", "--state", "held", "--json").json()
        assert (shown["state"], shown["next_attempt_at"]) == ("held", None)
        assert SqlOutbox(engine).release_held("stream-1", utcnow()) == 1
    finally:
        engine.dispose()
    again = cli("--config", str(config), "worker", "--once")
    assert again.code == 0 and again.out.startswith("claimed 1: delivered 1")
    assert receiver.accepted == {"logout_token=token-stream-1-held-1": 1}


def test_options_are_checked(cli: Any, config: Path) -> None:
    for argv in (["outbox", "list", "--state", "lost"], ["outbox", "list", "--limit", "0"],
                 ["worker", "--poll", "0"], ["worker", "--poll", "soon"]):
        with pytest.raises(SystemExit) as exit_:
            cli("--config", str(config), *argv)
        assert exit_.value.code == 2


def test_the_worker_needs_the_current_schema(cli: Any, tmp_path: Path) -> None:
    config = init_instance(InstanceOptions(tmp_path / "old"))
    (tmp_path / "old" / "broker.db").unlink()
    result = cli("--config", str(config), "worker", "--once")
    assert result.code == 1 and "run 'broker migrate' first" in result.err


def test_the_worker_process_delivers_and_stops_on_sigterm(config: Path, receiver: Receiver) -> None:
    """``broker worker`` as its own process, as under Compose, Kubernetes or systemd."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROKER_")}
    process = subprocess.Popen([sys.executable, "-m", "broker.cli", "--config", str(config), "worker",
                                "--poll", "0.2"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        _enqueue(config, message(receiver, "logout-1"))
        deadline = time.monotonic() + 60
        while not receiver.accepted and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert receiver.accepted == {TOKEN: 1}
    assert out.startswith("claimed 1: delivered 1")
    assert "outbox: backchannel-logout jti=logout-1 to permits: delivered" in err and TOKEN not in err
