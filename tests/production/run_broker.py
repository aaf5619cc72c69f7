"""One broker instance as its own OS process, for the statelessness tests.

    python -m tests.production.run_broker CONFIG

serves ``create_app(CONFIG)`` on 127.0.0.1 with an OS-chosen port (threaded werkzeug server) and prints
``PORT <n>`` on its first line of output once it accepts connections. It stops on SIGTERM.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType

from werkzeug.serving import make_server

from broker.app import close_app, create_app


def main(config: str) -> None:
    app = create_app(config)
    server = make_server("127.0.0.1", 0, app, threaded=True)

    def stop(_signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    print(f"PORT {server.server_port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
        close_app(app)


if __name__ == "__main__":
    main(sys.argv[1])
