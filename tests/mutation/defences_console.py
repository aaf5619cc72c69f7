"""The operator console's sign-in and sessions (issue 19; ``broker.journeys.console``): a fresh sign-in at the
console's level, a role for every page, and a console session that ends with its SSO session and its roles."""

from __future__ import annotations

from tests.mutation.defence import Defence

CONSOLE = "tests/flows/test_console_sign_in.py"
HELP_DESK = "tests/flows/test_console_help_desk.py"

DEFENCES: tuple[Defence, ...] = (
    Defence(
        name="console-sign-in-is-fresh",
        path="broker/journeys/console.py",
        old="""                           force_authn=True)""",
        new="""                           force_authn=False)""",
        tests=(f"{CONSOLE}::test_an_admin_signs_in_afresh_with_a_second_factor_and_sees_the_console",),
        why="a citizen's session left open in a shared browser opens the console without a new sign-in",
    ),
    Defence(
        name="console-needs-a-role",
        path="broker/journeys/console.py",
        old="""    if not roles:
        j.audit(AuditKind.OPERATOR_REFUSED, account_id=sso.account_id, downstream=CONSOLE_PARTY_ID,""",
        new="""    if False:
        j.audit(AuditKind.OPERATOR_REFUSED, account_id=sso.account_id, downstream=CONSOLE_PARTY_ID,""",
        tests=(f"{CONSOLE}::test_an_account_without_a_role_is_refused_and_audited",),
        why="any citizen with a second factor opens the console",
    ),
    Defence(
        name="console-page-needs-its-permission",
        path="broker/journeys/console.py",
        old="""    if permission is not None and not operator.may(permission):""",
        new="""    if False:""",
        tests=(f"{CONSOLE}::test_support_may_not_see_the_audit_trail_or_the_operators",),
        why="a help-desk operator reads the audit trail and the list of operators",
    ),
    Defence(
        name="console-session-follows-its-sso-session",
        path="broker/journeys/console.py",
        old="""    if sso is None or sso.sid != record.sid or sso.account_id != record.account_id \\""",
        new="""    if False \\""",
        tests=(f"{CONSOLE}::test_signing_out_of_the_account_ends_the_console_session",),
        why="signing out of the account leaves the console open in that browser",
    ),
    Defence(
        name="console-session-follows-the-roles",
        path="broker/journeys/console.py",
        old="""    roles = grants(j).roles_of(record.account_id)
    if not roles:""",
        new="""    roles = grants(j).roles_of(record.account_id) or frozenset(Role)
    if not roles:""",
        tests=(f"{CONSOLE}::test_a_revoked_role_ends_the_console_session_at_the_next_request",),
        why="an operator whose role was revoked keeps the console until the session expires",
    ),
    Defence(
        name="console-session-idle-deadline",
        path="broker/journeys/console.py",
        old="""    return min(_time(session.last_seen) + policy.idle, _time(session.signed_in_at) + policy.lifetime)""",
        new="""    return _time(session.signed_in_at) + policy.lifetime""",
        tests=(f"{CONSOLE}::test_the_console_session_ends_when_idle_and_after_its_lifetime",),
        why="a console left open on an unattended desk stays usable for hours",
    ),
    Defence(
        name="console-reveal-needs-a-recent-sign-in",
        path="broker/web/console.py",
        old="""        if not console.fresh(journeys(), op):""",
        new="""        if False:""",
        tests=(f"{HELP_DESK}::test_an_admin_reveals_the_claims_only_after_a_recent_sign_in",),
        why="a console left open shows any citizen's personal data to whoever sits down at it",
    ),
    Defence(
        name="console-look-up-is-audited",
        path="broker/journeys/citizen_lookup.py",
        old="""        j.audit(AuditKind.OPERATOR_LOOKUP, account_id=account_id,""",
        new="""        if False: j.audit(AuditKind.OPERATOR_LOOKUP, account_id=account_id,""",
        tests=(f"{HELP_DESK}::test_support_finds_why_a_named_citizens_sign_in_failed_without_seeing_her_claims",),
        why="the help desk can browse citizens' accounts with no trace in their history",
    ),
)
