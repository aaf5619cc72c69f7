"""E-mail codes as a fallback second factor (issue 17; docs/security.md "Step-up and second factors")."""

from __future__ import annotations

from tests.mutation.defence import Defence

CODES = "tests/journeys/test_email_codes_journey.py"
ENROL = "tests/journeys/test_email_enrolment_journey.py"
STORE = "tests/storage/test_authenticators.py"

DEFENCES: tuple[Defence, ...] = (
    Defence(
        name="email-code-expires",
        path="broker/journeys/email_codes.py",
        old="""    if parsed is None or not EMAIL_CODE.fullmatch(entered) or now.timestamp() >= until:""",
        new="""    if parsed is None or not EMAIL_CODE.fullmatch(entered):""",
        tests=(f"{CODES}::test_an_expired_code_is_refused",),
        why="an e-mail code works after its ten minutes",
    ),
    Defence(
        name="email-code-compared",
        path="broker/journeys/email_codes.py",
        old="""    return hmac.compare_digest(hashed(entered, bytes.fromhex(parsed.group(1))), stored)""",
        new="""    return True""",
        tests=(f"{CODES}::test_a_code_works_only_for_the_sign_in_it_was_sent_for",),
        why="any eight digits pass once a code was sent",
    ),
    Defence(
        name="email-code-sends-capped",
        path="broker/journeys/step_up.py",
        old="""    if waiting.email_sends >= email_codes.MAX_SENDS:""",
        new="""    if False:""",
        tests=(f"{CODES}::test_at_most_three_codes_are_sent_for_one_sign_in",),
        why="one waiting sign-in sends codes without limit",
    ),
    Defence(
        name="email-address-only-of-its-account",
        path="broker/storage/authenticators.py",
        old="""                                               AuthenticatorRow.account_id == account_id,
                                               AuthenticatorRow.kind == FactorKind.EMAIL.value)""",
        new="""                                               AuthenticatorRow.kind == FactorKind.EMAIL.value)""",
        tests=(f"{STORE}::test_an_email_address_is_sealed_at_rest_and_bound_to_its_row[sqlite]",),
        why="a step-up page could send codes to another account's address",
    ),
    Defence(
        name="email-enrolment-proves-the-address",
        path="broker/journeys/email_enrolment.py",
        old="""    if email_codes.matches("".join(code.split()), record.code, record.until, now):""",
        new="""    if True:""",
        tests=(f"{ENROL}::test_a_wrong_code_adds_nothing_and_attempts_are_limited",),
        why="an address is added without the code sent to it",
    ),
    Defence(
        name="email-enrolment-starts-limited",
        path="broker/journeys/email_enrolment.py",
        old="""    if _recent_starts(j, sso.account_id) >= MAX_STARTS_PER_HOUR:""",
        new="""    if False:""",
        tests=(f"{ENROL}::test_codes_sent_for_enrolments_are_limited_per_hour",),
        why="the portal mails codes to any address without limit",
    ),
    Defence(
        name="email-factor-last-removal-needs-second-factor",
        path="broker/journeys/authenticators.py",
        old="""    if (last_app or last_email) and not reached_second_factor(j, sso):""",
        new="""    if last_app and not reached_second_factor(j, sso):""",
        tests=(f"{ENROL}::test_removing_the_last_second_factor_needs_a_fresh_one_but_not_beside_an_app",),
        why="the upstream sign-in alone removes the last second factor",
    ),
    Defence(
        name="email-address-sealed",
        path="broker/storage/authenticators.py",
        old="""        return self._add_sealed(account_id, FactorKind.EMAIL, name, address, now)""",
        new="""        row = self._add_sealed(account_id, FactorKind.EMAIL, name, address, now)
        with self._sessions.begin() as session:
            session.execute(update(AuthenticatorRow).where(AuthenticatorRow.authenticator_id == row.authenticator_id)
                            .values(secret_sealed=address))
        return row""",
        tests=(f"{STORE}::test_an_email_address_is_sealed_at_rest_and_bound_to_its_row[sqlite]",),
        why="the address is kept in plain text",
    ),
)
