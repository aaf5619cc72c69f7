"""The delivery worker (issue 18): sends what the web workers queued in the outbox (``broker.core.outbox``,
``broker.storage.outbox``) — back-channel logout tokens (OpenID Connect Back-Channel Logout 1.0 §2.5) and
Security Event Tokens (RFC 8417, pushed as in RFC 8935) — with retries at exponential back-off and a dead-letter
state. It runs as its own process (``broker worker``) beside the web workers, builds its own database engine from
the settings and shares nothing in memory with them; the web workers never call a receiver.

- ``schedule``: when to try again, and when to give up (pure functions of the attempt count);
- ``http``: the HTTP POST (requests; short timeouts, no redirects, TLS verified) and what an answer means;
- ``worker``: one pass (``deliver_due``) and the loop (``run_worker``).

Composition: it may import the storage adapter; nothing but the CLI imports it.
"""
