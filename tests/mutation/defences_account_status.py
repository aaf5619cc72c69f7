"""A disabled account signs in nowhere and its apps are told (issue 18; README "Disabling an account"): the checks
of the login journey, the sessions ended, the tokens refused, and the RISC events."""

from __future__ import annotations

from tests.mutation.defence import Defence

JOURNEY = "tests/journeys/test_account_status_journey.py"
FLOW = "tests/flows/test_account_status.py"

DEFENCES: tuple[Defence, ...] = (
    Defence(
        name="disabled-account-refused-at-sign-in",
        path="broker/journeys/login.py",
        old="""    account_status.refuse_disabled(j, known, login, identity.upstream)""",
        new="""    pass""",
        tests=(f"{JOURNEY}::test_a_disabled_account_signs_in_nowhere_until_it_is_enabled",
               f"{FLOW}::test_a_disabled_account_signs_in_nowhere_and_its_app_is_told"),
        why="the operator disables a hijacked account and the attacker signs in again at once",
    ),
    Defence(
        name="disabled-account-refused-from-a-session",
        path="broker/journeys/login.py",
        old="""    account_status.refuse_disabled(j, result.account, login, sso.upstream)""",
        new="""    pass""",
        tests=(f"{JOURNEY}::test_a_session_the_disabling_missed_answers_no_app",),
        why="a session that raced the disabling keeps answering apps",
    ),
    Defence(
        name="disabled-account-refused-with-a-passkey",
        path="broker/journeys/passwordless.py",
        old="""    account_status.refuse_disabled(j, result.account, waiting, PASSKEY_UPSTREAM)""",
        new="""    pass""",
        tests=(f"{JOURNEY}::test_a_disabled_accounts_passkey_signs_in_no_one",),
    ),
    Defence(
        name="disabling-ends-the-sessions",
        path="broker/journeys/account_status.py",
        old="""    ended = j.sso_sessions.end_all(account_id, now)""",
        new="""    ended = 0""",
        tests=(f"{JOURNEY}::test_disabling_ends_the_sessions_revokes_the_grants_and_tells_the_apps",
               f"{FLOW}::test_a_disabled_account_signs_in_nowhere_and_its_app_is_told"),
        why="the disabled account's browsers stay signed in to the portal",
    ),
    Defence(
        name="disabled-account-gets-no-tokens",
        path="broker/downstream/oidc/provider.py",
        old="""        if account is None or account.disabled_at is not None:
            raise invalid_grant(""",
        new="""        if account is None:
            raise invalid_grant(""",
        tests=(f"{FLOW}::test_the_token_endpoint_and_userinfo_refuse_a_disabled_account",),
        why="a refresh token that outlived the disabling keeps minting tokens",
    ),
    Defence(
        name="disabling-pushes-account-disabled",
        path="broker/journeys/account_status.py",
        old="""    pushed = _emit(j, SecurityEvent.ACCOUNT_DISABLED, account_id, now, details)""",
        new="""    pushed = 0""",
        tests=(f"{FLOW}::test_a_disabled_account_signs_in_nowhere_and_its_app_is_told",),
        why="an app that subscribed never learns the account it holds was disabled",
    ),
    Defence(
        name="changed-address-pushes-identifier-changed",
        path="broker/journeys/login.py",
        old="""        account_status.identifier_changed(j, result.account.account_id, now)""",
        new="""        pass""",
        tests=(f"{FLOW}::test_a_changed_verified_address_is_told_without_the_address",),
    ),
)
