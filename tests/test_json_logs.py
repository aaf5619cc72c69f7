"""JSON log lines (``[broker] log_format = "json"``, ``broker.logging_setup``): one object per line, each with the
request id; one login id follows a login across its separate requests; ``X-Request-ID`` is kept only when
well-formed, and it is the support reference on error pages."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from broker.config.settings import ConfigError, load_settings
from broker.logging_setup import REQUEST_ID_PATTERN, JsonFormatter, accepted_request_id, login_id, request_id
from tests.flows.federation import Federation, make_keys, running_federation
from tests.peers.browser import Browser

GENERATED = re.compile(r"[0-9A-F]{16}")


@pytest.fixture(scope="module")
def key_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_keys(tmp_path_factory.mktemp("keys"))


def json_handlers() -> list[logging.Handler]:
    return [h for h in logging.getLogger().handlers if isinstance(h.formatter, JsonFormatter)]


@pytest.fixture
def json_federation(tmp_path: Path, key_folder: Path) -> Iterator[tuple[Federation, io.StringIO]]:
    """A federation whose broker logs JSON; what it writes goes to the returned buffer."""
    root = logging.getLogger()
    level = root.level
    try:
        with running_federation(tmp_path / "instance", key_folder, f"sqlite:///{tmp_path / 'b.db'}",
                                extra_config='log_format = "json"\n') as federation:
            handlers = json_handlers()
            assert len(handlers) == 1, "create_app installs one JSON handler on the root logger"
            buffer = io.StringIO()
            assert isinstance(handlers[0], logging.StreamHandler)
            handlers[0].setStream(buffer)
            yield federation, buffer
    finally:
        for handler in json_handlers():
            root.removeHandler(handler)
        root.setLevel(level)


def lines_of(buffer: io.StringIO) -> list[dict[str, Any]]:
    text = buffer.getvalue()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]  # every line is one JSON object, or this fails


def test_every_line_is_json_with_request_id_and_one_login_id_per_login(
        json_federation: tuple[Federation, io.StringIO]) -> None:
    federation, buffer = json_federation
    with Browser() as browser:
        _, page = federation.login(browser)
        assert browser.is_self_submitting(page)
        with Browser() as other:
            federation.login(other)  # a second login, in another browser: another login id
    lines = lines_of(buffer)

    for line in lines:
        assert {"time", "level", "logger", "message", "request_id", "login_id"} <= set(line), line
    broker_lines = [line for line in lines if line["logger"].startswith("broker")]
    assert broker_lines and all(line["request_id"] for line in broker_lines), broker_lines
    begins = [line for line in broker_lines if line["message"].startswith("login begin")]
    callbacks = [line for line in broker_lines if line.get("step") == "upstream_verify"]
    answers = [line for line in broker_lines if line.get("step") == "answer"]
    assert len(begins) == len(callbacks) == len(answers) == 2
    for n in range(2):
        one_login = {begins[n]["login_id"], callbacks[n]["login_id"], answers[n]["login_id"]}
        assert len(one_login) == 1 and GENERATED.fullmatch(one_login.pop() or "")
        # separate requests of the browser: begin, then the callback that also answers
        assert begins[n]["request_id"] != callbacks[n]["request_id"] == answers[n]["request_id"]
    assert begins[0]["login_id"] != begins[1]["login_id"]
    for name in ("go_upstream", "complete_login", "parse_request"):
        assert any(line.get("step") == name for line in broker_lines), name
    ok = next(line for line in broker_lines if line["message"].startswith("login ok"))
    assert ok["login_id"] == begins[0]["login_id"] and ok["level"] == "INFO"
    assert isinstance(answers[0]["duration_ms"], float)


def test_request_id_header_is_kept_only_when_well_formed(json_federation: tuple[Federation, io.StringIO]) -> None:
    federation, buffer = json_federation
    url = federation.url + "/login/no-such-handle"  # an error page, logged
    good = requests.get(url, headers={"X-Request-ID": "lb-0c4f1e2a-7b"}, timeout=10)
    garbage = requests.get(url, headers={"X-Request-ID": 'x" injected=1 {"level":"ERROR"}'}, timeout=10)
    short = requests.get(url, headers={"X-Request-ID": "ab"}, timeout=10)
    none = requests.get(url, timeout=10)

    assert good.headers["X-Request-ID"] == "lb-0c4f1e2a-7b"
    for reply in (garbage, short, none):
        assert GENERATED.fullmatch(reply.headers["X-Request-ID"]), reply.headers["X-Request-ID"]
    assert len({r.headers["X-Request-ID"] for r in (good, garbage, short, none)}) == 4
    for reply in (good, garbage, none):  # the page's support reference is the request id, found in the log
        assert reply.status_code == 400 and reply.headers["X-Request-ID"] in reply.text
    errors = [line for line in lines_of(buffer) if line["logger"] == "broker.errors"]
    assert [line["request_id"] for line in errors] == [r.headers["X-Request-ID"] for r in (good, garbage, short, none)]
    assert all(line["request_id"] in line["message"] for line in errors)  # "ref=..." is the same id
    assert "injected" not in buffer.getvalue()


def test_the_request_id_pattern() -> None:
    assert accepted_request_id("0123456789abcdef") == "0123456789abcdef"
    assert accepted_request_id("f47ac10b-58cc-4372-a567-0e02b2c3d479") == "f47ac10b-58cc-4372-a567-0e02b2c3d479"
    for bad in ("", "short", "a" * 65, "has space 1234", "new\nline12345", "-leading-dash", "ünïcode-id-1234"):
        assert not REQUEST_ID_PATTERN.fullmatch(bad)
        assert GENERATED.fullmatch(accepted_request_id(bad))


def test_formatter_keeps_only_safe_extras_and_one_line_per_record() -> None:
    token_request, token_login = request_id.set("REQ1234567890"), login_id.set("LOGIN123")
    try:
        record = logging.LogRecord("broker.login", logging.WARNING, __file__, 1, "two\nlines %s", ("here",), None)
        record.step, record.email, record.duration_ms = "answer", "anna@example.org", 1.5
        line = JsonFormatter().format(record)
    finally:
        request_id.reset(token_request)
        login_id.reset(token_login)
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["message"] == "two\\nlines here"  # escaped before JSON, as in the text format (issue 15)
    assert (parsed["request_id"], parsed["login_id"], parsed["step"], parsed["duration_ms"]) == (
        "REQ1234567890", "LOGIN123", "answer", 1.5)
    assert "email" not in parsed and "anna" not in line


def test_log_format_is_validated(tmp_path: Path) -> None:
    config = tmp_path / "broker.toml"
    config.write_text('[broker]\nlog_format = "xml"\n')
    env = {"BROKER_SECRET_KEY": "s" * 40, "BROKER_PAIRWISE_SECRET": "p" * 40, "BROKER_CLAIMS_KEY": "ab" * 32}
    with pytest.raises(ConfigError) as caught:
        load_settings(config, env)
    assert any("log_format" in p for p in caught.value.problems)
    assert load_settings(config, {**env, "BROKER_LOG_FORMAT": "json"}).log_format == "json"
