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

PASSKEY_TESTS = "tests/storage/test_passkeys.py"
PASSWORDLESS_TESTS = "tests/journeys/test_passwordless_journey.py"

DEFENCES += (
    Defence(
        name="passkey-of-the-account-at-step-up",
        path="broker/storage/passkeys.py",
        old="""        if ceremony.account_id is not None and entry.account_id != ceremony.account_id:""",
        new="""        if False:""",
        tests=(f"{PASSKEY_TESTS}::test_step_up_refuses_a_passkey_of_another_account[sqlite]",),
        why="any enrolled passkey passes another account's step-up",
    ),
    Defence(
        name="passkey-counter-decides-concurrent-uses",
        path="broker/storage/passkeys.py",
        old="""                                             PasskeyRow.sign_count == old_count)""",
        new="""                                             )""",
        tests=(f"{PASSKEY_TESTS}::test_a_use_meanwhile_wins_over_this_one[sqlite]",),
        why="two uses of one assertion both pass",
    ),
    Defence(
        name="step-up-passkey-must-verify-the-person",
        path="broker/journeys/step_up.py",
        old="""    return use if use.account_id == waiting.account and use.user_verified else None""",
        new="""    return use if use.account_id == waiting.account else None""",
        tests=(f"{STEP_UP_TESTS}::test_a_passkey_assertion_that_does_not_fit_this_page_is_a_wrong_answer"
               "[no user verification]",),
        why="a passkey without user verification (possession only) passes as a second factor",
    ),
    Defence(
        name="passwordless-passkey-must-verify-the-person",
        path="broker/journeys/passwordless.py",
        old="""    if use is None or not use.user_verified:""",
        new="""    if use is None:""",
        tests=(f"{PASSWORDLESS_TESTS}::test_a_passkey_that_did_not_verify_the_person_or_answers_another_challenge_"
               "signs_in_no_one",),
    ),
)

RISK_TESTS = "tests/journeys/test_risk_journey.py"
CODE_ATTEMPT_TESTS = "tests/journeys/test_code_attempts_journey.py"

DEFENCES += (
    Defence(
        name="risk-refusal-is-enforced",
        path="broker/journeys/risk_check.py",
        old="""    if decision.decision is Decision.REFUSE:""",
        new="""    if False:""",
        tests=(f"{RISK_TESTS}::test_a_refusing_rule_refuses_and_the_app_hears_it",),
    ),
    Defence(
        name="risk-step-up-is-enforced",
        path="broker/journeys/login.py",
        old="""    forced = risk is not None and risk.decision is Decision.STEP_UP""",
        new="""    forced = False""",
        tests=(f"{RISK_TESTS}::test_a_new_device_and_network_after_a_velocity_trip_must_show_a_second_factor",),
    ),
)

DEFENCES += (
    Defence(
        name="step-up-account-lock",
        path="broker/journeys/step_up.py",
        old="""    locked = code_attempts.check(j, browser, waiting.account, now)""",
        new="""    locked = None""",
        tests=(f"{RISK_TESTS}::test_an_account_with_too_many_wrong_answers_is_locked_even_for_the_right_code",
               f"{CODE_ATTEMPT_TESTS}::test_guessing_across_sign_ins_of_one_account_meets_a_growing_back_off"),
        why="guessing codes across many sign-ins and addresses is unlimited",
    ),
    Defence(
        name="step-up-back-off-per-address",
        path="broker/core/backoff.py",
        old="""("address", per_address.refused_until(address))""",
        new="""("address", None)""",
        tests=(f"{CODE_ATTEMPT_TESTS}::test_one_guess_over_many_accounts_from_one_address_is_refused",),
        why="one guess sprayed over many accounts from one address is unlimited",
    ),
)
