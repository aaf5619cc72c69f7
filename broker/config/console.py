"""``[console]``: the operator console and the admin API (issue 19; ``broker.core.operators``).

    [console]
    enabled = true                 # serve /console and /api/admin
    upstreams = ["city-idp"]       # where staff may sign in (default: every registered upstream)
    required_acr = "https://refeds.org/profile/mfa"   # the level a console sign-in must reach
    idle_minutes = 15              # a console session ends after this long without a request
    session_hours = 8              # and this long after its sign-in, whatever happens
    reauth_minutes = 5             # a dangerous action needs a sign-in this recent, else a new one

    [[console.role_mappings]]      # a role for members of an upstream's group, while they are members
    role = "support"
    upstream = "entra"
    group = "5f8b6c7e-3c1d-4a47-9b0e-2a1f3c4d5e6f"   # a value of the upstream's groups claim

The required level defaults to ``[assurance] second_factor_level`` (REFEDS MFA): an operator who signed in with a
password alone is stepped up with a second factor of the broker's before the console opens. The console is never
open to a single factor by default: with a scale that has no second factor level and no ``required_acr``, it is
off, and ``enabled = true`` is refused.
"""

from __future__ import annotations

from datetime import timedelta

from broker.config.reader import Reader
from broker.core.assurance import REFEDS_MFA, AssurancePolicy
from broker.core.claims import MAX_VALUE_LENGTH
from broker.core.operators import ConsolePolicy, RoleMapping, parse_role


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
        role_mappings=_role_mappings(read),
    )


def _role_mappings(read: Reader) -> tuple[RoleMapping, ...]:
    """``[[console.role_mappings]]``: each a table of ``role``, ``upstream`` and ``group``, all required."""
    raw = read.setting("console", "role_mappings", [])
    if not isinstance(raw, list):
        read.problems.append("[console] role_mappings must be a list of tables ([[console.role_mappings]])")
        return ()
    found: list[RoleMapping] = []
    for n, entry in enumerate(raw, 1):
        where = f"[[console.role_mappings]] number {n}"
        if not isinstance(entry, dict) or set(entry) != {"role", "upstream", "group"} \
                or not all(isinstance(v, str) and v.strip() for v in entry.values()):
            read.problems.append(f"{where} needs exactly role, upstream and group, each a non-empty string")
            continue
        if len(entry["group"]) > MAX_VALUE_LENGTH:
            read.problems.append(f"{where}: group is longer than {MAX_VALUE_LENGTH} characters")
            continue
        try:
            found.append(RoleMapping(parse_role(entry["role"]), entry["upstream"].strip(), entry["group"]))
        except ValueError as exc:
            read.problems.append(f"{where}: {exc}")
    return tuple(found)
