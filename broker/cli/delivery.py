"""``broker worker`` and ``broker outbox``: the delivery worker beside the web workers, and the operator's view of
the outbox (issue 18; ``broker.delivery``, ``broker.storage.outbox``).

    broker worker [--once] [--poll SECONDS] [--json]   send queued back-channel logouts and events until SIGTERM
    broker outbox list [--state dead|pending|held|delivered] [--limit N] [--json]
    broker outbox retry MESSAGE_ID                     put a dead letter back in the queue, due now

``--state held``: the events held for paused event streams (SSF 1.0 §8.1.2), sent once their stream is enabled;
they have no next attempt. No listing shows a message's body (it holds a signed token) or its URL.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from dataclasses import asdict
from datetime import datetime
from types import FrameType
from typing import Any

from broker.cli.common import JSON_HELP, settings_of
from broker.core.outbox import MessageState, QueuedMessage


def cmd_worker(args: argparse.Namespace) -> int:
    """Run the delivery loop until SIGTERM or SIGINT (a pass in progress finishes first), or one pass."""
    from broker.delivery.worker import WorkerError, run_worker
    from broker.logging_setup import install as install_logging

    settings = settings_of(args)
    install_logging(settings.log_format)
    if not logging.getLogger().handlers:  # text: the outcome of each attempt on standard error
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    previous: dict[int, Any] = {}
    if not args.once:
        def on_signal(signum: int, _frame: FrameType | None) -> None:
            stop.set()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        report = run_worker(settings, stop, once=args.once, poll_seconds=args.poll)
    except WorkerError as exc:
        print(f"broker: {exc}", file=sys.stderr)
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if args.json:
        print(json.dumps(asdict(report)))
    else:
        print(f"claimed {report.claimed}: delivered {report.delivered}, to retry {report.retried}, "
              f"dead {report.dead}; purged {report.purged} old delivered messages")
    return 0


def cmd_outbox_list(args: argparse.Namespace) -> int:
    """The messages in one state, newest first: id, attempts, times, receiver, kind, jti, last error."""
    from broker.storage import SqlOutbox, create_engine_for

    engine = create_engine_for(settings_of(args).database_url)
    try:
        messages = SqlOutbox(engine).listing(MessageState(args.state), limit=args.limit)
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps([_shown(m) for m in messages], indent=2))
        return 0
    for m in messages:
        when = m.delivered_at if m.state is MessageState.DELIVERED else _next_attempt(m)
        error = f" last_error={m.last_error!r}" if m.last_error else ""
        print(f"{m.message_id} {m.state.value} attempts={m.attempts} created={m.created_at.isoformat()} "
              f"{'delivered' if m.state is MessageState.DELIVERED else 'next'}={when.isoformat() if when else '-'} "
              f"receiver={m.message.receiver} kind={m.message.kind} jti={m.message.jti}{error}")
    return 0


def _shown(m: QueuedMessage) -> dict[str, Any]:
    next_attempt = _next_attempt(m)
    return {"id": m.message_id, "state": m.state.value, "attempts": m.attempts, "receiver": m.message.receiver,
            "kind": m.message.kind, "jti": m.message.jti, "created_at": m.created_at.isoformat(),
            "next_attempt_at": next_attempt.isoformat() if next_attempt else None,
            "delivered_at": m.delivered_at.isoformat() if m.delivered_at else None, "last_error": m.last_error}


def _next_attempt(m: QueuedMessage) -> datetime | None:
    """None for a held message: it waits for its stream to be enabled, not for a time."""
    return None if m.state is MessageState.HELD else m.next_attempt_at


def cmd_outbox_retry(args: argparse.Namespace) -> int:
    """Put a dead letter back in the queue, due now, with a fresh count of attempts; 1 if it is not one."""
    from broker.core.model import utcnow
    from broker.storage import SqlOutbox, create_engine_for

    engine = create_engine_for(settings_of(args).database_url)
    try:
        outbox = SqlOutbox(engine)
        if outbox.retry_dead(args.message_id, utcnow()):
            print(f"{args.message_id} is back in the queue")
            return 0
        found = outbox.find(args.message_id)
    finally:
        engine.dispose()
    what = "no such message" if found is None else f"not a dead letter (it is {found.state.value})"
    print(f"broker: {args.message_id}: {what}", file=sys.stderr)
    return 1


def _limit(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 10_000:
        raise argparse.ArgumentTypeError("must be a whole number from 1 to 10000")
    return int(text)


def _poll(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 0.1 <= seconds <= 300:
        raise argparse.ArgumentTypeError("must be a number of seconds from 0.1 to 300")
    return seconds


def add_commands(sub: Any) -> None:
    p = sub.add_parser("worker", help="send queued back-channel logouts and events (beside the web workers)")
    p.add_argument("--once", action="store_true", help="one pass over the due messages, then exit")
    p.add_argument("--poll", type=_poll, default=5.0, help="seconds between passes (default 5)")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(func=cmd_worker)

    outbox = sub.add_parser("outbox", help="the queue of messages owed to other parties").add_subparsers(
        dest="outbox", required=True)
    p = outbox.add_parser("list", help="messages in one state, newest first (never their bodies)")
    p.add_argument("--state", choices=[s.value for s in MessageState], default=MessageState.DEAD.value,
                   help="which messages (default: dead, the ones that need the operator)")
    p.add_argument("--limit", type=_limit, default=50, help="how many (default 50)")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(func=cmd_outbox_list)
    p = outbox.add_parser("retry", help="put a dead letter back in the queue, due now")
    p.add_argument("message_id", help="the id `broker outbox list` shows")
    p.set_defaults(func=cmd_outbox_retry)
