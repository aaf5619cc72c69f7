"""Defences of the journeys themselves (issue 16), proven by the journeys' own tests (``tests/journeys``), which run
them over in-memory ports without Flask."""

from __future__ import annotations

from tests.mutation.defence import Defence

LOGIN_TESTS = "tests/journeys/test_login_journey.py"

DEFENCES: tuple[Defence, ...] = (
    Defence(
        name="stray-upstream-answer-strands-no-login",
        path="broker/journeys/upstream_answers.py",
        old="""    if handle and browser.holds(handle):""",
        new="""    if handle and browser.unbind(handle):""",
        tests=(f"{LOGIN_TESTS}::test_an_answer_for_one_protocol_does_not_complete_a_login_of_the_other",),
        why="a handle posted to the other protocol's endpoint is unbound first, so its own login can never finish",
    ),
)
