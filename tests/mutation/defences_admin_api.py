"""The admin API (issue 19; ``broker.web.admin_api``, ``broker.oidc.admin_tokens``): a client's token opens only what
its scopes allow, only the API's own access tokens are accepted (audience, type, expiry, a client still registered),
and a console session's cookie changes nothing without the CSRF token and the broker's origin."""

from __future__ import annotations

from tests.mutation.defence import Defence

CLIENTS = "tests/flows/test_admin_api_clients.py"
SESSION = "tests/flows/test_admin_api_console_session.py"
TOKENS = "tests/downstream/test_client_credentials.py"
METADATA = "tests/registry/test_oidc_automation_clients.py"
SECRETS = "tests/flows/test_admin_api_client_secrets.py"

DEFENCES: tuple[Defence, ...] = (
    Defence(
        name="registered-client-within-registrar-permissions",
        path="broker/journeys/app_admin.py",
        old="""                 if scope_permission(scope) not in holds)""",
        new="""                 if False)""",
        tests=(f"{SECRETS}::test_a_client_is_given_no_admin_permission_its_registrar_does_not_hold",),
        why="an operator allowed to register apps registers a client that looks citizens up, beyond its own role",
    ),
    Defence(
        name="brought-client-secret-strength",
        path="broker/oidc/client_secret.py",
        old="""    return secret_problems(secret)
""",
        new="""    return []
""",
        tests=(f"{SECRETS}::test_a_weak_brought_secret_is_refused_and_nothing_is_written",),
        why="an app registered from the console or the API keeps a guessable secret like password1234",
    ),
    Defence(
        name="admin-api-scope-check",
        path="broker/web/admin_api/auth.py",
        old="""    if operation.people_only or (needed is not None and needed not in held):""",
        new="""    if operation.people_only:""",
        tests=(f"{CLIENTS}::test_a_ci_pipeline_reads_the_audit_trail_and_nothing_else",),
        why="a CI pipeline allowed to read the audit trail also looks citizens up and disables their accounts",
    ),
    Defence(
        name="admin-token-audience",
        path="broker/oidc/admin_tokens.py",
        old="""    if audience(issuer) not in (aud if isinstance(aud, list) else [aud]):""",
        new="""    if False:""",
        tests=(f"{CLIENTS}::test_tokens_the_api_does_not_accept", f"{TOKENS}::test_tokens_the_admin_api_refuses"),
        why="a token the broker signed for another audience (an ID token's, a logout token's) opens the admin API",
    ),
    Defence(
        name="admin-token-type",
        path="broker/oidc/admin_tokens.py",
        old="""        claims = verify_own_jwt(raw, keys, typ=TYP)""",
        new="""        claims = verify_own_jwt(raw, keys)""",
        tests=(f"{CLIENTS}::test_tokens_the_api_does_not_accept", f"{TOKENS}::test_tokens_the_admin_api_refuses"),
        why="any other JWT the broker signs with the same keys passes for an access token (RFC 9068 §4, RFC 8725 "
            "§3.11)",
    ),
    Defence(
        name="admin-token-expiry",
        path="broker/oidc/admin_tokens.py",
        old="""    if now >= expires_at + LEEWAY:""",
        new="""    if False:""",
        tests=(f"{CLIENTS}::test_an_expired_token_is_refused",),
        why="a token copied from a CI log works for ever",
    ),
    Defence(
        name="admin-token-client-still-registered",
        path="broker/web/admin_api/auth.py",
        old="""    if not registered:
        raise _invalid_token(""",
        new="""    if False:
        raise _invalid_token(""",
        tests=(f"{CLIENTS}::test_a_removed_client_or_a_removed_scope_stops_its_tokens_at_once",),
        why="removing a leaked automation client leaves its tokens working until they expire",
    ),
    Defence(
        name="admin-api-csrf-token",
        path="broker/web/admin_api/auth.py",
        old="""        validate_csrf(request.headers.get(CSRF_HEADER, ""))""",
        new="""        pass""",
        tests=(f"{SESSION}::test_a_change_needs_the_csrf_token_and_the_brokers_origin",),
        why="a script on the broker's own origin (or a request forged with the right Origin) changes things with an "
            "operator's cookie alone",
    ),
    Defence(
        name="admin-api-same-origin",
        path="broker/web/admin_api/auth.py",
        old="""    if kind is not None:
        audit.record_throttled(AuditKind.REQUEST_REFUSED, f"cross-origin""",
        new="""    if False:
        audit.record_throttled(AuditKind.REQUEST_REFUSED, f"cross-origin""",
        tests=(f"{SESSION}::test_a_change_needs_the_csrf_token_and_the_brokers_origin",),
        why="another site's page posts to the admin API with the operator's cookie and a leaked token",
    ),
    Defence(
        name="admin-api-cookie-changes-are-checked",
        path="broker/web/admin_api/auth.py",
        old="""    if operation.changes_state:
        _same_origin_and_token()""",
        new="""    if False:
        _same_origin_and_token()""",
        tests=(f"{SESSION}::test_a_change_needs_the_csrf_token_and_the_brokers_origin",),
        why="cross-site request forgery against the admin API with an operator's console session",
    ),
    Defence(
        name="admin-api-fresh-sign-in",
        path="broker/web/admin_api/auth.py",
        old="""    if operation.fresh and not console.fresh(j, operator):""",
        new="""    if False:""",
        tests=(f"{SESSION}::test_disabling_needs_a_recent_sign_in_reading_does_not",),
        why="a console session left open disables accounts and grants roles hours after its sign-in",
    ),
    Defence(
        name="client-credentials-not-for-dynamic-clients",
        path="broker/oidc/client_grants.py",
        old="""        if dynamic:
            problems.append("grant_types: client_credentials""",
        new="""        if False:
            problems.append("grant_types: client_credentials""",
        tests=(f"{METADATA}::test_dynamic_registration_asks_for_neither",
               f"{CLIENTS}::test_dynamic_registration_asks_for_neither_the_grant_nor_admin_scopes"),
        why="whoever holds the initial access token registers an automation client",
    ),
)
