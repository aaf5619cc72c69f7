"""Log injection (issue 15, item 7): a CR/LF or a bidirectional control (U+202E RIGHT-TO-LEFT OVERRIDE) in
attacker input reaches no log line unescaped, in the text and the JSON format, whichever library logs it.

The attack: an AuthnRequest whose ``IssueInstant`` is ``2026-01-01T00:00:00Z&#13;&#10;FORGED ...``; pysaml2
refuses it and quotes the value in its own ERROR line (``saml2.request``: "Request not valid: ..."), which
without the defence starts a second, forged line in a text log.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest

from broker.downstream.saml_requests import RequestRejected
from broker.logging_setup import JsonFormatter, install
from tests.security.fuzz_support import SamlWorld, build_saml_world, incoming_post, post_encoding

FORGED = "FORGED admin signed in"
#: CR LF, then a forged line ending in RIGHT-TO-LEFT OVERRIDE (Unicode TR#9 §2.2)
EVIL_INSTANT = f"2026-01-01T00:00:00Z&#13;&#10;{FORGED}&#8238;gpj.exe"
TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"
UNSAFE = re.compile("[\r\x0b\x0c\x1b\x7f\x85\u2028\u2029\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> SamlWorld:
    return build_saml_world(tmp_path_factory.mktemp("log-injection"))


@pytest.fixture
def logs() -> Iterator[tuple[io.StringIO, io.StringIO]]:
    """A text and a JSON handler on the root logger, as an operator's ``log_format`` would set them up."""
    install("text")  # what create_app does first
    text, lines = io.StringIO(), io.StringIO()
    text_handler, json_handler = logging.StreamHandler(text), logging.StreamHandler(lines)
    text_handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    json_handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(text_handler)
    root.addHandler(json_handler)
    try:
        yield text, lines
    finally:
        root.removeHandler(text_handler)
        root.removeHandler(json_handler)


def _assert_one_line_per_record(text: str) -> None:
    """Every line of the text log is a record's first line (``LEVEL logger: ...``) or a whole traceback on one
    line; nothing was forged."""
    assert text, "the attack must have been logged"
    for line in text.splitlines():
        assert re.match(r"(DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: |Traceback \(most recent call last\):\\n",
                        line), f"a forged line: {line!r}"
    assert not UNSAFE.search(text), "an unescaped control or bidirectional character is in the text log"


def test_crlf_and_rlo_in_an_issue_instant_reach_no_log_line_unescaped(
        world: SamlWorld, logs: tuple[io.StringIO, io.StringIO]) -> None:
    text, lines = logs
    xml = re.sub(r'IssueInstant="[^"]*"', f'IssueInstant="{EVIL_INSTANT}"', world.open_post_xml)
    with pytest.raises(RequestRejected):
        world.parse(incoming_post(post_encoding(xml)))

    _assert_one_line_per_record(text.getvalue())
    saml2_lines = [line for line in text.getvalue().splitlines() if line.startswith("ERROR saml2")]
    assert any(f"\\r\\n{FORGED}\\u202egpj.exe" in line for line in saml2_lines), saml2_lines  # pysaml2's own line

    raw = lines.getvalue()
    assert not UNSAFE.search(raw), "an unescaped control or bidirectional character is in the JSON log"
    records = [json.loads(line) for line in raw.splitlines()]
    quoted = [r["message"] for r in records if r["logger"].startswith("saml2") and FORGED in r["message"]]
    assert quoted and all("\n" not in m and "\r" not in m and "\u202e" not in m for m in quoted), quoted


def test_a_claim_or_header_value_in_any_library_logger_is_escaped(logs: tuple[io.StringIO, io.StringIO]) -> None:
    """The broker's loggers, werkzeug's and authlib's alike: the record is escaped when it is made."""
    text, lines = logs
    for name in ("broker.login", "werkzeug", "authlib.integrations", "saml2.response"):
        logging.getLogger(name).warning("claim given_name=%s header=%s", f"Eve\r\n{FORGED}\u202e",
                                        f"curl\x1b[2J\x85{FORGED}")
    try:
        raise ValueError(f"bad value\r\n{FORGED}\u2028x")
    except ValueError:
        logging.getLogger("broker.web").exception("refused")
    _assert_one_line_per_record(text.getvalue())
    assert "\\x1b[2J\\x85" in text.getvalue()
    assert "\\r\\nFORGED" in text.getvalue()
    raw = lines.getvalue()
    assert not UNSAFE.search(raw)
    records = [json.loads(line) for line in raw.splitlines()]
    assert len(records) == 5 and "\\u2028" in records[-1]["exception"]


def test_the_json_format_escapes_a_record_made_before_the_defence_was_installed() -> None:
    """A record made without the escaping factory (``LogRecord`` directly): the JSON line is escaped anyway."""
    record = logging.LogRecord("saml2.request", logging.ERROR, __file__, 1, "Request not valid: %s",
                               (f"x\r\n{FORGED}\u202e\u2028",), None)
    line = JsonFormatter().format(record)
    assert "\n" not in line and not UNSAFE.search(line)
    assert json.loads(line)["message"] == f"Request not valid: x\\r\\n{FORGED}\\u202e\\u2028"


def test_the_escape_is_exact() -> None:
    from broker.core.unsafe_text import escape

    assert escape("plain ASCII and Ünïcödé, tab-free") == "plain ASCII and Ünïcödé, tab-free"
    assert escape("a\r\nb\tc\x00\x7f\x9b\u202e\u2066\u200f\u061c\u2029") == (
        "a\\r\\nb\\tc\\x00\\x7f\\x9b\\u202e\\u2066\\u200f\\u061c\\u2029")

