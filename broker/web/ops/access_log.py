"""Access logs without query strings: a callback's query carries an authorization code and ``state``, which
never belong in a log (they are single-use and bound to the browser, but a log is read by many).

The development server (``broker run``) answers a request line longer than 65,536 bytes with a plain
414 URI Too Long (RFC 9110 §15.5.15) before the broker sees the request; http.server logs that answer before a
path was ever read, so the access log names no path then. Control characters a client puts in the method or
the path (an ANSI escape, DEL) are escaped on their way to the log like every record's
(``broker.logging_setup.escape_record``).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from werkzeug.serving import WSGIRequestHandler

#: the same rule for gunicorn (``deploy/gunicorn.conf.py``): %(U)s is the path without the query
GUNICORN_ACCESS_LOG_FORMAT = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)ss'


class PathOnlyRequestHandler(WSGIRequestHandler):
    """The development server's request handler, logging the path only."""

    #: http.server's own error answers (414, 400 for a malformed request line): plain text, no markup
    error_content_type = "text/plain; charset=utf-8"
    error_message_format = "%(code)d %(message)s\n"

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # ``path`` is unset when the request line was refused unread (414): werkzeug's ``__getattr__`` would
        # raise, and http.server would drop the connection with a traceback instead of sending the 414
        raw_path = getattr(self, "path", None)
        path = urlsplit(raw_path).path if isinstance(raw_path, str) else "-"
        self.log("info", '"%s %s %s" %s %s', self.command or "-", path, self.request_version or "-", code, size)
