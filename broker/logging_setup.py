"""Log lines an operator can follow: a request id and a login id on every line, and JSON when asked for.

``[broker] log_format = "json"`` (or ``BROKER_LOG_FORMAT=json``) makes ``create_app`` install one handler on
the root logger that writes one JSON object per line to standard error: ``time``, ``level``, ``logger``,
``message``, ``request_id``, ``login_id`` and the safe extras listed in ``SAFE_EXTRAS``. With "text" (the
default) the host's handlers and formats are left as they are (records are escaped all the same, below); the ids
are still set on every record (``ContextFilter``), so a text format may name ``%(request_id)s`` and
``%(login_id)s``.

The ids live in context variables: ``request_id`` is set for each HTTP request (``broker.web.ops.request_ids``),
``login_id`` follows one login across the browser's separate requests (begin, go upstream, callback or ACS,
answer). Neither is personal data; no token, code or assertion is ever put on a record by this module.

Log injection: a CR or LF in untrusted text (a SAML ``IssueInstant`` that pysaml2 quotes in its error, a header,
a claim) would start a forged line in a text log, and a bidirectional control (U+202E) would make a terminal
show the line reordered. ``install`` therefore puts an escaping factory (``install_escaping``) in front of the process's
log-record factory: every record, whichever library (pysaml2, werkzeug, gunicorn, authlib) or logger creates
it, has its message and traceback escaped (``broker.core.unsafe_text.escape``) before any handler or format
sees it: in a text format a record is one line, plus one more for a traceback (its line breaks written out as
``\\n``); in JSON one line. The JSON format escapes message and exception again, for records made earlier.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import sys
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any

from broker.core.unsafe_text import escape

#: the id of the HTTP request being handled ("" outside a request)
request_id: ContextVar[str] = ContextVar("broker_request_id", default="")
#: the id of the login the request belongs to ("" when it belongs to none)
login_id: ContextVar[str] = ContextVar("broker_login_id", default="")

#: what an incoming ``X-Request-ID`` (from a proxy) must look like to be kept; anything else is replaced
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{7,63}")
#: ``extra={...}`` keys that may appear in a JSON line: names from the registry, counts, durations; never values
#: a person or a party typed
SAFE_EXTRAS = ("step", "outcome", "upstream", "downstream", "endpoint", "status", "duration_ms", "error")
_MARK = "_broker_json_handler"


def new_id() -> str:
    """A fresh id: 16 upper-case hexadecimal digits (readable aloud as a support reference)."""
    return secrets.token_hex(8).upper()


def accepted_request_id(incoming: str | None) -> str:
    """``incoming`` if it matches ``REQUEST_ID_PATTERN``, else a new id."""
    if incoming and REQUEST_ID_PATTERN.fullmatch(incoming):
        return incoming
    return new_id()


class ContextFilter(logging.Filter):
    """Puts ``request_id`` and ``login_id`` on every record that passes (``-`` when there is none)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get() or "-"
        record.login_id = login_id.get() or "-"
        return True


def escape_record(record: logging.LogRecord) -> logging.LogRecord:
    """Escape the record's message, traceback and stack in place (see the module docstring)."""
    try:
        message = record.getMessage()
    except (TypeError, ValueError):  # arguments that do not fit: logging reports it when the record is handled
        return record
    escaped = escape(message)
    if escaped != message:
        record.msg, record.args = escaped, None
    if record.exc_info and not record.exc_text:
        record.exc_text = escape(logging.Formatter().formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = escape(record.stack_info)
    return record


class _EscapingFactory:
    """A log-record factory: the one it replaced, then ``escape_record``."""

    def __init__(self, inner: Callable[..., logging.LogRecord]) -> None:
        self.inner = inner

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        return escape_record(self.inner(*args, **kwargs))


def install_escaping() -> None:
    """Escape every record of the process from now on (once per process)."""
    current = logging.getLogRecordFactory()
    if not isinstance(current, _EscapingFactory):
        logging.setLogRecordFactory(_EscapingFactory(current))


class JsonFormatter(logging.Formatter):
    """One JSON object per line; newlines in messages are escaped by JSON, so one record is one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": escape(record.getMessage()),
            "request_id": getattr(record, "request_id", None) or request_id.get() or None,
            "login_id": getattr(record, "login_id", None) or login_id.get() or None,
        }
        for key in ("request_id", "login_id"):
            if line[key] == "-":
                line[key] = None
        for key in SAFE_EXTRAS:
            value = getattr(record, key, None)
            if isinstance(value, str | int | float | bool):
                line[key] = value
        if record.exc_info:
            line["exception"] = escape(record.exc_text or self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False, default=str)


def install(log_format: str, stream: IO[str] | None = None, level: int = logging.INFO) -> logging.Handler | None:
    """Set up logging for ``log_format``: "json" adds (once per process) a JSON handler on the root logger
    (``stream``: standard error by default) and returns it; "text" leaves handlers alone. Both add the
    ``ContextFilter`` to the root logger's handlers so every line can carry the ids, and both escape every
    record (``install_escaping``)."""
    install_escaping()
    root = logging.getLogger()
    handler: logging.Handler | None = None
    if log_format == "json":
        # once: a handler of an earlier app, or gunicorn's ``GUNICORN_JSON_LOGCONFIG``, already writes JSON
        handler = next((h for h in root.handlers
                        if getattr(h, _MARK, False) or isinstance(h.formatter, JsonFormatter)), None)
        if handler is None:
            handler = logging.StreamHandler(stream or sys.stderr)
            setattr(handler, _MARK, True)
            handler.setFormatter(JsonFormatter())
            root.addHandler(handler)
            if root.level > level or root.level == logging.NOTSET:
                root.setLevel(level)
    for existing in root.handlers:
        if not any(isinstance(f, ContextFilter) for f in existing.filters):
            existing.addFilter(ContextFilter())
    return handler


#: gunicorn's ``logconfig_dict`` for JSON lines from gunicorn's own loggers too (``deploy/gunicorn.conf.py``)
GUNICORN_JSON_LOGCONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"ids": {"()": "broker.logging_setup.ContextFilter"}},
    "formatters": {"json": {"()": "broker.logging_setup.JsonFormatter"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["ids"],
                            "stream": "ext://sys.stderr"}},
    "root": {"level": "INFO", "handlers": ["stderr"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
    },
}
