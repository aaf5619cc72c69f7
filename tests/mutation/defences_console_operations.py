"""The console's federations and signing keys (issue 19; ``broker.web.console_federations``,
``broker.web.console_keys``): "Refresh now" only with ``manage-parties``, a rotation step only with ``manage-keys``
and a recent sign-in; an uploaded IdP metadata file with its signer's certificate is signature-checked in the preview
(``broker.registry.source_checks``)."""

from __future__ import annotations

from tests.mutation.defence import Defence

FEDERATIONS = "tests/flows/test_console_federations.py"
KEYS = "tests/flows/test_console_keys.py"
SOURCES = "tests/flows/test_console_federation_sources.py"

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
    Defence(
        name="console-uploaded-idp-file-signature-checked",
        path="broker/registry/source_checks.py",
        old="""signing_cert_file=pem if certificate else None""",
        new="""signing_cert_file=None""",
        tests=(f"{SOURCES}::test_a_tampered_or_expired_file_is_refused_with_its_problems_and_nothing_written",),
        why="a tampered IdP metadata file passes the preview with its certificate and is applied, pinned or not",
    ),
)
