"""The console's federations and signing keys (issue 19; ``broker.web.console_federations``,
``broker.web.console_keys``): "Refresh now" only with ``manage-parties``, a rotation step only with ``manage-keys``
and a recent sign-in."""

from __future__ import annotations

from tests.mutation.defence import Defence

FEDERATIONS = "tests/flows/test_console_federations.py"
KEYS = "tests/flows/test_console_keys.py"

DEFENCES: tuple[Defence, ...] = (
    Defence(
        name="console-refresh-needs-manage-parties",
        path="broker/web/console_federations.py",
        old="""    return operator_page(Permission.MANAGE_PARTIES, view)""",
        new="""    return operator_page(Permission.VIEW_PARTIES, view)""",
        tests=(f"{FEDERATIONS}::test_roles_without_manage_parties_may_look_but_not_refresh",),
        why="a help-desk or auditor role makes the broker fetch every federation feed on demand",
    ),
    Defence(
        name="console-rotation-needs-manage-keys",
        path="broker/web/console_keys.py",
        old="""    return operator_page(Permission.MANAGE_KEYS, view)""",
        new="""    return operator_page(Permission.VIEW_PARTIES, view)""",
        tests=(f"{KEYS}::test_roles_without_manage_keys_may_look_but_not_rotate",),
        why="any operator who may look at the keys rotates them",
    ),
    Defence(
        name="console-rotation-needs-a-fresh-sign-in",
        path="broker/web/console_keys.py",
        old="""        if not console.fresh(j, op):""",
        new="""        if False:""",
        tests=(f"{KEYS}::test_a_step_needs_a_recent_sign_in_and_runs_only_in_order",),
        why="a console left open for hours rotates the signing keys without the operator signing in again",
    ),
)
