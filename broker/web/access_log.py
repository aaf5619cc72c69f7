"""Access logs without query strings: a callback's query carries an authorization code and ``state``, which
never belong in a log (they are single-use and bound to the browser, but a log is read by many)."""

from __future__ import annotations

from urllib.parse import urlsplit

from werkzeug.serving import WSGIRequestHandler

#: the same rule for gunicorn (``deploy/gunicorn.conf.py``): %(U)s is the path without the query
GUNICORN_ACCESS_LOG_FORMAT = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)ss'


class PathOnlyRequestHandler(WSGIRequestHandler):
    """The development server's request handler, logging the path only."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        path = urlsplit(self.path).path
        self.log("info", '"%s %s %s" %s %s', self.command, path, self.request_version, code, size)
