"""``[console]``: the operator console and the admin API (issue 19; ``broker.core.operators``).

    [console]
    enabled = true                 # serve /console and /api/admin
    upstreams = ["city-idp"]       # where staff may sign in (default: every registered upstream)
    required_acr = "https://refeds.org/profile/mfa"   # the level a console sign-in must reach
    idle_minutes = 15              # a console session ends after this long without a request
    session_hours = 8              # and this long after its sign-in, whatever happens
    reauth_minutes = 5             # a dangerous action needs a sign-in this recent, else a new one

The required level defaults to ``[assurance] second_factor_level`` (REFEDS MFA): an operator who signed in with a
password alone is stepped up with a second factor of the broker's before the console opens. The console is never
open to a single factor by default: with a scale that has no second factor level and no ``required_acr``, it is
off, and ``enabled = true`` is refused.
"""

from __future__ import annotations

from datetime import timedelta

from broker.config.reader import Reader
from broker.core.assurance import REFEDS_MFA, AssurancePolicy
from broker.core.operators import ConsolePolicy


def console_section(read: Reader, assurance: AssurancePolicy) -> ConsolePolicy:
    default_acr = assurance.second_factor_level or ""
    acr = read.text("console", "required_acr", default_acr)
    enabled = read.flag("console", "enabled", bool(acr))
    if not acr:
        if enabled:
            read.problems.append("[console] required_acr is needed: [assurance] names no second_factor_level")
        acr = REFEDS_MFA
    elif assurance.aliases.get(acr, acr) not in assurance.order:
        read.problems.append(f"[console] required_acr {acr!r:.80} is not in the [assurance] order")
    idle = read.number("console", "idle_minutes", 15, 1, 240)
    hours = read.number("console", "session_hours", 8, 1, 24)
    reauth = read.number("console", "reauth_minutes", 5, 1, 60)
    return ConsolePolicy(
        enabled=enabled,
        upstreams=tuple(sorted(read.text_list("console", "upstreams"))),
        required_acr=assurance.aliases.get(acr, acr),
        idle=timedelta(minutes=idle),
        lifetime=timedelta(hours=hours),
        reauth=timedelta(minutes=reauth),
    )
