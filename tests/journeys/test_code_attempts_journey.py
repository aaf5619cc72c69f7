"""Brute force on the step-up's code entry (issue 17; ``broker.journeys.code_attempts``, ``core.backoff``): wrong
answers across many sign-ins of one account, or one guess over many accounts from one address, meet a back-off
that grows and ends with time; parallel entries count against each other. Fakes only, the clock injected."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from broker.core import errors
from broker.core.assurance import REFEDS_MFA, Comparison
from broker.core.backoff import ACCOUNT, ADDRESS
from broker.core.model import DownstreamParty, Protocol
from broker.core.outcomes import Outcome, Page, Redirect
from broker.journeys import code_attempts, login, step_up
from broker.journeys.context import DownstreamFailure
from broker.journeys.upstream_answers import upstream_answer
from tests.journeys.fakes_support import SETTINGS, UPSTREAMS, FakeBrowser, World, app, login_request, totp_code

SECRET = "JBSWY3DPEHPK3PXP"
UP = UPSTREAMS[Protocol.OIDC]
SECOND = timedelta(seconds=1)


def world() -> tuple[World, DownstreamParty]:
    party = app(Protocol.OIDC, allowed=(UP,))
    return World([party], settings=replace(SETTINGS, risk_key=b"k" * 32)), party


def through_upstream(w: World, browser: FakeBrowser, party: DownstreamParty, **request: object) -> Outcome:
    outgoing = login.begin(w.journeys, browser, login_request(party, **request))
    assert isinstance(outgoing, Redirect)
    handle, reply = w.oidc.reply(outgoing)
    return upstream_answer(w.journeys, browser, Protocol.OIDC, handle, reply, UP.name)


def enrolled(w: World, party: DownstreamParty, subject: str) -> str:
    """``subject`` has an account (a first sign-in, no level asked) and an authenticator app; the account's id."""
    w.person(UP, subject)
    through_upstream(w, w.browser(), party)
    account_id = w.downstream(party.protocol).answered.pop().result.account.account_id
    w.authenticators.add_totp(account_id, "phone", SECRET, w.clock.now())
    return account_id


def enter(w: World, party: DownstreamParty, subject: str, code: str = "000000", address: str = "192.0.2.10") -> str:
    """A new sign-in of ``subject`` from ``address`` that stops at the step-up page, and ``code`` entered there:
    "wrong", "refused" (the back-off), "ended" (the sign-in's own limit) or "signed in"."""
    w.person(UP, subject)
    browser = w.browser()
    browser.client_address = address
    page = through_upstream(w, browser, party, acr_values=(REFEDS_MFA,), acr_comparison=Comparison.MINIMUM)
    assert isinstance(page, Page) and page.template == "step_up.html", page
    try:
        outcome = step_up.verify(w.journeys, browser, str(page.data["handle"]), code)
    except DownstreamFailure as failure:
        return "refused" if isinstance(failure.error, errors.LoginRefused) else "ended"
    return "wrong" if isinstance(outcome, Page) else "signed in"


def test_guessing_across_sign_ins_of_one_account_meets_a_growing_back_off() -> None:
    w, party = world()
    enrolled(w, party, "anna")
    assert [enter(w, party, "anna") for _ in range(ACCOUNT.free)] == ["wrong"] * ACCOUNT.free  # each a new sign-in

    for wait in (30 * SECOND, 60 * SECOND, 120 * SECOND, 240 * SECOND):  # doubling after every wrong answer
        assert enter(w, party, "anna", totp_code(SECRET, w.clock.now())) == "refused"  # even the right code
        w.clock.advance(wait - SECOND)
        assert enter(w, party, "anna") == "refused"
        w.clock.advance(SECOND)
        assert enter(w, party, "anna") == "wrong"

    w.clock.advance(ACCOUNT.wait(ACCOUNT.free + 4))  # the wait is over: the right code signs in
    assert enter(w, party, "anna", totp_code(SECRET, w.clock.now())) == "signed in"


def test_the_refusal_says_when_to_try_again_and_a_refused_entry_is_no_guess() -> None:
    w, party = world()
    anna = enrolled(w, party, "anna")
    for _ in range(ACCOUNT.free + 2):  # 7 wrong answers, a minute apart: the 7th makes the next wait 2 minutes
        assert enter(w, party, "anna") == "wrong"
        w.clock.advance(timedelta(minutes=1))
    browser = w.browser()

    locked = code_attempts.check(w.journeys, browser, anna, w.clock.now())
    again = code_attempts.check(w.journeys, browser, anna, w.clock.now())

    assert locked is not None and again == locked  # the refused entry did not add to the count
    assert locked.refusal.scope == "account"
    assert locked.message == "Too many wrong codes were entered for this account. Please try again in 1 minute."


def test_one_guess_over_many_accounts_from_one_address_is_refused() -> None:
    w, party = world()
    people = [f"person-{n}" for n in range(ADDRESS.free + 1)]
    for person in people:
        enrolled(w, party, person)
    assert [enter(w, party, person) for person in people[:-1]] == ["wrong"] * ADDRESS.free  # one guess each

    last = people[-1]
    assert enter(w, party, last, totp_code(SECRET, w.clock.now())) == "refused"  # its first answer, and right
    assert enter(w, party, last, "000000", address="198.51.100.7") == "wrong"  # another address is not held up
    w.clock.advance(ADDRESS.wait(ADDRESS.free))
    assert enter(w, party, last, totp_code(SECRET, w.clock.now())) == "signed in"


def test_entries_made_at_once_count_against_each_other() -> None:
    """Two tabs (or a script's parallel requests): each entry is recorded before the back-off is checked, so the
    second of two entries made at once sees the first, whose code has not been checked yet."""
    w, party = world()
    anna = enrolled(w, party, "anna")
    for _ in range(ACCOUNT.free - 1):
        assert enter(w, party, "anna") == "wrong"
    first, second = w.browser(), w.browser()

    assert code_attempts.check(w.journeys, first, anna, w.clock.now()) is None  # its code is being checked
    parallel = code_attempts.check(w.journeys, second, anna, w.clock.now())

    assert parallel is not None and parallel.refusal.until == w.clock.now() + ACCOUNT.wait(ACCOUNT.free)


def test_a_right_answer_is_not_counted_as_a_wrong_one() -> None:
    w, party = world()
    anna = enrolled(w, party, "anna")
    for _ in range(ACCOUNT.free - 1):
        assert enter(w, party, "anna") == "wrong"
    w.clock.advance(timedelta(minutes=1))
    assert enter(w, party, "anna", totp_code(SECRET, w.clock.now())) == "signed in"
    w.clock.advance(timedelta(minutes=1))  # the right answer's entry is no longer in flight

    assert enter(w, party, "anna") == "wrong"
    locked = code_attempts.check(w.journeys, w.browser(), anna, w.clock.now())

    assert locked is not None and locked.refusal.until == w.clock.now() + ACCOUNT.wait(ACCOUNT.free)  # 5, not 6
