"""The protocol-neutral core of the broker.

Everything here uses the standard library only: no web framework, no protocol library, no database.
Adapters (``broker.upstream``, ``broker.downstream``, ``broker.storage``, ``broker.registry``) turn their
protocol's messages into these types and back; ``tests/core/test_architecture.py`` enforces the rule.
"""
