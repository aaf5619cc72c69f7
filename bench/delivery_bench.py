"""What the outbox costs a sign-out, and how fast one delivery worker empties it, on this machine.

    python bench/delivery_bench.py [--messages 2000] [--seconds 60] [--database-url URL]

Queues ``--messages`` back-channel-logout-sized messages one at a time through ``SqlOutbox.enqueue`` (what a
sign-out pays per app: one insert, committed), then runs ``deliver_due`` passes (claim under a lease, POST, mark
delivered) against a receiver on 127.0.0.1 that answers 200, and reports both rates and the receiver's count.
Loops are bounded by count and time. Default: a fresh SQLite file; with ``--database-url`` a throwaway
PostgreSQL schema.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from broker.core.model import utcnow
from broker.core.outbox import OutgoingMessage
from broker.delivery.http import requests_post
from broker.delivery.worker import deliver_due
from broker.storage import SqlOutbox, create_engine_for, upgrade
from tests.databases import postgres_schema

TOKEN = "eyJ" + "x" * 700  # the size of a signed logout token


class Receiver(BaseHTTPRequestHandler):
    count = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        Receiver.count += 1
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/backchannel-logout"
    with tempfile.TemporaryDirectory() as scratch:
        database = postgres_schema(args.database_url) if args.database_url else iter(
            [f"sqlite:///{Path(scratch) / 'outbox.db'}"])
        database_url = next(database)
        upgrade(database_url)
        engine = create_engine_for(database_url)
        outbox = SqlOutbox(engine)
        started, queued = time.perf_counter(), 0
        while queued < args.messages and time.perf_counter() - started < args.seconds:
            outbox.enqueue(OutgoingMessage(f"app-{queued % 20}", f"jti-{queued}", "backchannel-logout", url,
                                           f"logout_token={TOKEN}", "application/x-www-form-urlencoded"), utcnow())
            queued += 1
        enqueue_seconds = time.perf_counter() - started
        post = requests_post()
        started, delivered = time.perf_counter(), 0
        while delivered < queued and time.perf_counter() - started < args.seconds:
            delivered += deliver_due(outbox, post, utcnow()).delivered
        deliver_seconds = time.perf_counter() - started
        engine.dispose()
        for _ in database:
            pass
    server.shutdown()
    backend = "postgresql" if args.database_url else "sqlite"
    print(f"backend {backend}: {queued} messages queued in {enqueue_seconds:.2f} s "
          f"({1000 * enqueue_seconds / max(queued, 1):.2f} ms each, what a sign-out pays per app)")
    print(f"one worker delivered {delivered} in {deliver_seconds:.2f} s ({delivered / deliver_seconds:.0f}/s); "
          f"the receiver got {Receiver.count}")


if __name__ == "__main__":
    main()
