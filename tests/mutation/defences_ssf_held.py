"""A paused event stream holds its events, a disabled one drops them (issue 18, SSF 1.0 §8.1.2; docs/security.md
"Events lost while a stream is paused, or flooding the outbox"): held messages never claimed, released on enable,
dropped on disable and delete, and the bound on what one stream holds."""

from __future__ import annotations

from tests.mutation.defence import Defence

PAUSED = "tests/flows/test_ssf_paused.py"
HELD = "tests/storage/test_outbox_held.py"
CLI = "tests/test_cli_outbox.py"

DEFENCES: tuple[Defence, ...] = (
    Defence(
        name="held-message-never-claimed",
        path="broker/storage/outbox.py",
        old="""        state = MessageState.HELD if held else MessageState.PENDING""",
        new="""        state = MessageState.PENDING""",
        tests=(f"{PAUSED}::test_a_paused_stream_gets_the_events_it_held_once_it_is_enabled",
               f"{HELD}::test_a_held_message_is_never_claimed",
               f"{CLI}::test_held_messages_are_listed_and_not_sent_until_released"),
        why="a held message queued as pending: the worker claims it and the paused stream gets its events",
    ),
    Defence(
        name="paused-stream-events-held",
        path="broker/downstream/ssf/transmitter.py",
        old="""        for stream in self.streams.receiving(apps, event.value):""",
        new="""        for stream in self.streams.enabled_for(apps, event.value):""",
        tests=(f"{PAUSED}::test_a_paused_stream_gets_the_events_it_held_once_it_is_enabled",),
        why="a paused stream's events are lost instead of held",
    ),
    Defence(
        name="enabled-stream-releases-held",
        path="broker/downstream/ssf/transmitter.py",
        old="""        if status is StreamStatus.ENABLED:
            self._release_held(stream_id, now)""",
        new="""        if False:
            self._release_held(stream_id, now)""",
        tests=(f"{PAUSED}::test_a_paused_stream_gets_the_events_it_held_once_it_is_enabled",),
        why="the held events stay held after the stream is enabled",
    ),
    Defence(
        name="disabled-stream-drops-held",
        path="broker/downstream/ssf/transmitter.py",
        old="""        elif status is StreamStatus.DISABLED:
            self._drop_held(stream_id)""",
        new="""        elif False:
            self._drop_held(stream_id)""",
        tests=(f"{PAUSED}::test_disabling_or_deleting_a_paused_stream_drops_what_it_held",),
        why="a disabled stream's held events are delivered once it is enabled again",
    ),
    Defence(
        name="deleted-stream-drops-held",
        path="broker/downstream/ssf/transmitter.py",
        old="""            raise not_found()
        self._drop_held(stream_id)""",
        new="""            raise not_found()""",
        tests=(f"{PAUSED}::test_disabling_or_deleting_a_paused_stream_drops_what_it_held",),
        why="a deleted stream's held events stay in the outbox for ever",
    ),
    Defence(
        name="held-events-bounded-per-stream",
        path="broker/downstream/ssf/transmitter.py",
        old="""        if held < MAX_HELD_PER_STREAM:""",
        new="""        if True:""",
        tests=(f"{PAUSED}::test_a_paused_stream_holds_a_bounded_number_of_events",),
        why="a paused stream fills the outbox without end",
    ),
    Defence(
        name="drop-held-only-held",
        path="broker/storage/outbox.py",
        old="""delete(_row).where(_row.receiver == receiver, _row.state == MessageState.HELD.value)""",
        new="""delete(_row).where(_row.receiver == receiver)""",
        tests=(f"{HELD}::test_drop_deletes_only_the_receivers_held_messages",),
        why="dropping what a stream held deletes its pending messages and dead letters too",
    ),
)
