"""The operator console's sign-in and sessions (issue 19; ``broker.journeys.console``): a fresh sign-in at the
console's level, a role for every page, and a console session that ends with its SSO session and its roles."""

from __future__ import annotations

from tests.mutation.defence import Defence

CONSOLE = "tests/flows/test_console_sign_in.py"
HELP_DESK = "tests/flows/test_console_help_desk.py"
UPSTREAMS = "tests/flows/test_console_upstreams.py"
MAPPINGS = "tests/flows/test_console_role_mappings.py"
BY_APP_ID = "tests/flows/test_citizen_lookup_by_app_id.py"

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
        old="""    if not granted | mapped:""",
        new="""    if False:""",
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
        old="""    roles = grants(j).roles_of(record.account_id) | _known_roles(record.mapped_roles)""",
        new="""    roles = grants(j).roles_of(record.account_id) or frozenset(Role)""",
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
    Defence(
        name="console-role-mapping-needs-the-group",
        path="broker/core/operators.py",
        old="""    return frozenset(m.role for m in mappings if m.upstream == upstream and m.group in member)""",
        new="""    return frozenset(m.role for m in mappings if m.upstream == upstream)""",
        tests=(f"{MAPPINGS}::test_without_the_group_the_same_person_is_refused",),
        why="anyone who signs in through the staff IdP gets the role mapped from one of its groups",
    ),
    Defence(
        name="look-up-by-app-id-compares-the-id",
        path="broker/journeys/citizen_lookup.py",
        old="""    matches = [a for a in candidates if hmac.compare_digest(j.app_subject(app, a) or "", subject)]""",
        new="""    matches = list(candidates)""",
        tests=(f"{BY_APP_ID}::test_support_finds_a_citizen_by_the_id_a_saml_or_openid_app_knows",),
        why="any id typed for an app lists that app's citizens: the help desk browses accounts it was not asked about",
    ),
    Defence(
        name="upstream-document-carries-no-secret",
        path="broker/registry/upstream_registrations.py",
        old="""    if "client_secret" in raw:  # for every protocol""",
        new="""    if False:  # for every protocol""",
        tests=(f"{UPSTREAMS}::test_a_document_the_broker_would_not_use_is_refused_and_writes_nothing",),
        why="a SAML upstream's registration written from the console keeps a client secret in metadata/",
    ),
    Defence(
        name="console-app-settings-apply-is-fresh",
        path="broker/web/console_app_settings.py",
        old="""        if not console.fresh(j, op):""",
        new="""        if False:""",
        tests=(f"{UPSTREAMS}::test_applying_settings_needs_a_recent_sign_in",),
        why="a console left open changes which upstreams and claims an app gets without a recent sign-in",
    ),
    Defence(
        name="console-app-settings-need-manage-parties",
        path="broker/web/console_app_settings.py",
        old="""        return page("console_app_settings_preview.html", operator=op, preview=shown, handle=handle,
                    party_id=party_id)
    return operator_page(Permission.MANAGE_PARTIES, view)""",
        new="""        return page("console_app_settings_preview.html", operator=op, preview=shown, handle=handle,
                    party_id=party_id)
    return operator_page(None, view)""",
        tests=(f"{UPSTREAMS}::test_roles_without_manage_parties_cannot_register_upstreams_nor_change_settings",),
        why="support or an auditor previews (and so prepares) an app's settings change",
    ),
)
