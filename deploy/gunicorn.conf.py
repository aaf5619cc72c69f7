"""gunicorn settings for the broker: ``gunicorn -c deploy/gunicorn.conf.py "broker:create_app()"``.

Back-channel logouts and event pushes are sent by ``broker worker``, a separate process beside gunicorn (never a
gunicorn worker): ``deploy/systemd/broker-worker.service``, deploy/README.md "Delivery worker".

The access log leaves out query strings (%(U)s is the path alone): a sign-in callback's query carries an
authorization code and state, which never belong in a log.
"""

import os
from typing import Any

access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)ss'
accesslog = "-"
bind = "0.0.0.0:8000"
workers = 4
forwarded_allow_ips = "127.0.0.1"

# JSON lines from gunicorn's own loggers too when BROKER_LOG_FORMAT=json (the app's lines follow
# [broker] log_format either way; broker.logging_setup). The access log keeps its path-only format, as the
# message of a JSON line that carries the request id.
if os.environ.get("BROKER_LOG_FORMAT") == "json":
    from broker.logging_setup import GUNICORN_JSON_LOGCONFIG

    logconfig_dict = GUNICORN_JSON_LOGCONFIG


def child_exit(server: object, worker: Any) -> None:
    """With ``PROMETHEUS_MULTIPROC_DIR`` set (several workers, one /metrics: broker.web.ops.metrics), an exited
    worker's live gauges are dropped; its counters stay in the sum."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
