"""The journeys: login, link offer, consent and portal linking as plain steps over the ports (issue 16).

A journey never touches HTTP: the web layer hands it what the browser sent and renders the ``Outcome`` it
returns (``broker.core.outcomes``). It imports the standard library and ``broker.core`` only
(``tests/core/test_architecture.py``); protocols are reached through ``UpstreamAdapter`` and
``DownstreamAdapter``, storage through the core's ports, the browser's session through ``Browser``.
"""
