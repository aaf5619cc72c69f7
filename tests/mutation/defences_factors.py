"""Second factors and step-up (issue 17; docs/security.md "Step-up and second factors")."""

from __future__ import annotations

from tests.mutation.defence import Defence

STORE_TESTS = "tests/storage/test_authenticators.py"
STEP_UP_TESTS = "tests/journeys/test_step_up_journey.py"

DEFENCES: tuple[Defence, ...] = (
    Defence(
        name="totp-time-step-accepted-once",
        path="broker/storage/authenticators.py",
        old="""                       or_(AuthenticatorRow.last_step.is_(None), AuthenticatorRow.last_step < step))""",
        new="""                       )""",
        tests=(f"{STORE_TESTS}::test_two_requests_with_one_code_at_once_pass_once[sqlite]",),
        why="two requests with one authenticator-app code both pass (RFC 6238 §5.2 replay)",
    ),
    Defence(
        name="recovery-code-spent-once",
        path="broker/storage/authenticators.py",
        old=".where(RecoveryCodeRow.id == code_id, RecoveryCodeRow.used_at.is_(None))",
        new=".where(RecoveryCodeRow.id == code_id)",
        tests=(f"{STORE_TESTS}::test_two_requests_with_one_recovery_code_at_once_pass_once[sqlite]",),
    ),
    Defence(
        name="step-up-wrong-code-never-passes",
        path="broker/journeys/step_up.py",
        old="""    if used is None:
        return _wrong(j, browser, waiting, factors, now)""",
        new="""    if used is None:
        used = factors.of(waiting.account)[0]""",
        tests=(f"{STEP_UP_TESTS}::test_a_code_is_accepted_once_and_a_wrong_one_counts_against_the_sign_in",),
        why="a wrong (or replayed) code continues the sign-in at the stepped-up level",
    ),
    Defence(
        name="step-up-wrong-codes-capped",
        path="broker/journeys/step_up.py",
        old="""    if attempts >= MAX_ATTEMPTS:""",
        new="""    if False:""",
        tests=(f"{STEP_UP_TESTS}::test_too_many_wrong_codes_end_the_sign_in_with_the_level_not_met",),
        why="codes can be guessed on one waiting sign-in without limit",
    ),
)
