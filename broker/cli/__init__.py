"""The ``broker`` command: ``main`` builds the argparse parser and runs a subcommand (the console script is
``broker.cli.main:main``; ``python -m broker.cli`` runs the same), ``common`` holds what every subcommand shares
(``--config``, ``--json``, loading settings), and each other module adds one topic's subcommands (``audit``,
``delivery``, ``metadata``, ``rotation``, ``sps``, ``parties``, ``clients``, ``client_import``). Composition: it
may import any layer, and nothing but ``__main__`` imports it. Nothing is re-exported here; import the module that
defines a name."""
