"""Broker configuration the benches share.

``ORDINARY_RISK``: the benches sign each citizen in many times an hour (one citizen in ``login_bench`` and
``login_cost_bench``; a few hundred, each many times, in ``gunicorn_bench``). Under the default risk rule (more
than 20 logins of one account in the window → step-up, ``broker.core.risk.VELOCITY_RULE``) every login after the
20th became a risk challenge: a forced step-up signed in without a second factor, with two more audit records in
transactions of their own, which an ordinary citizen's login never has (about 2 ms of the broker's CPU per login
in ``bench/gunicorn_bench.py``). The rule stays, with a bound no bench reaches, so each login still reads the
risk signals and evaluates the rule as a usual login does.
"""

from __future__ import annotations

ORDINARY_RISK = """
[[risk.rules]]
name = "account velocity"
when = ["logins_by_account > 1000000"]
then = "step-up"
"""
