"""``python -m broker.cli``: the ``broker`` command (``broker.cli.main``)."""

from broker.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
