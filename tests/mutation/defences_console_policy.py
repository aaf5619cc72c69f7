"""The release policy changed at the console and the admin API (issue 19; ``broker.web.console_policy``,
``broker.journeys.policy_edit``): "Apply" only after a recent sign-in, and it writes exactly the text previewed."""

from __future__ import annotations

from tests.mutation.defence import Defence

CONSOLE = "tests/flows/test_console_policy_edit.py"

DEFENCES: tuple[Defence, ...] = (
    Defence(
        name="console-policy-apply-needs-a-fresh-sign-in",
        path="broker/web/console_policy.py",
        old="""        if not console.fresh(j, op):""",
        new="""        if False:""",
        tests=(f"{CONSOLE}::test_applying_needs_a_recent_sign_in",),
        why="a console left open for hours rewrites what every app receives without the operator signing in again",
    ),
    Defence(
        name="console-policy-applies-the-previewed-text",
        path="broker/web/console_policy.py",
        old="""            applied = policy_edit.apply(j, op.by, record.document.encode())""",
        new="""            applied = policy_edit.apply(j, op.by, _document() or record.document.encode())""",
        tests=(f"{CONSOLE}::test_apply_writes_the_previewed_text_not_a_second_one",),
        why="a second text posted with \"Apply\" is written unchecked by the operator's eyes",
    ),
)
