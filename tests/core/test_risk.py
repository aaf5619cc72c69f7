"""Risk signals, score and rules (``broker.core.risk``; issue 17): table-driven over signal sets and rules, the
per-app overrides, score thresholds, the defaults that never challenge a first or a usual login, the rule
language's problems, and the keyed places that keep raw addresses out of the history."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from broker.core.risk import (
    DEFAULT_RULES,
    Condition,
    Decision,
    LoginSignals,
    RiskRules,
    decide,
    fired_signals,
    login_place,
    network_prefix,
    score,
)
from broker.core.risk_rules import parse_condition, parse_risk

ALLOW, STEP_UP, REFUSE = Decision.ALLOW, Decision.STEP_UP, Decision.REFUSE
FIRST = LoginSignals(new_device=True, new_network=True, first_login=True)
USUAL = LoginSignals(logins_by_account=2, logins_by_address=2)
NEW_PHONE = LoginSignals(new_device=True)
TRAVELLING = LoginSignals(new_device=True, new_network=True)
BUSY = LoginSignals(logins_by_account=21)
GUESSING = LoginSignals(failed_second_factors=3)
SHARED = LoginSignals(logins_by_address=101)
TWO_PLACES = LoginSignals(new_network=True, distant_networks=True)
TAX = "https://tax.city.example"


def _rules(table: dict[str, Any]) -> RiskRules:
    rules, problems = parse_risk(table)
    assert problems == []
    return rules


OPERATOR = _rules({
    "rules": [
        {"when": ["new_device", "new_network", "not first_login"], "then": "step-up"},
        {"name": "account velocity", "when": ["logins_by_account > 10"], "then": "refuse"},
        {"when": ["failed_second_factors >= 3"], "then": "refuse"},
        {"when": ["score >= 40"], "then": "step-up"},
    ],
    "apps": {TAX: {"default": "step-up"}, "https://library.city.example": {"rules": []}},
})


@pytest.mark.parametrize(("signals", "rules", "party", "decision", "rule"), [
    # the defaults: only a clear velocity trip asks for more
    (FIRST, DEFAULT_RULES, None, ALLOW, "default"),
    (USUAL, DEFAULT_RULES, None, ALLOW, "default"),
    (NEW_PHONE, DEFAULT_RULES, None, ALLOW, "default"),
    (TRAVELLING, DEFAULT_RULES, None, ALLOW, "default"),
    (TWO_PLACES, DEFAULT_RULES, None, ALLOW, "default"),
    (LoginSignals(logins_by_account=20), DEFAULT_RULES, None, ALLOW, "default"),
    (BUSY, DEFAULT_RULES, None, STEP_UP, "account velocity"),
    (BUSY, DEFAULT_RULES, TAX, STEP_UP, "account velocity"),
    # an operator's rules, first match wins
    (FIRST, OPERATOR, None, ALLOW, "default"),
    (USUAL, OPERATOR, None, ALLOW, "default"),
    (NEW_PHONE, OPERATOR, None, ALLOW, "default"),
    (TRAVELLING, OPERATOR, None, STEP_UP, "new_device and new_network and not first_login"),
    (LoginSignals(new_device=True, new_network=True, logins_by_account=11), OPERATOR, None, STEP_UP,
     "new_device and new_network and not first_login"),
    (LoginSignals(logins_by_account=11), OPERATOR, None, REFUSE, "account velocity"),
    (GUESSING, OPERATOR, None, REFUSE, "failed_second_factors >= 3"),
    (LoginSignals(failed_second_factors=2), OPERATOR, None, ALLOW, "default"),
    (TWO_PLACES, OPERATOR, None, ALLOW, "default"),  # score 30
    (LoginSignals(new_device=True, distant_networks=True, logins_by_account=1), OPERATOR, None, ALLOW, "default"),
    (SHARED, OPERATOR, None, ALLOW, "default"),  # score 30
    (LoginSignals(logins_by_address=101, new_device=True), OPERATOR, None, STEP_UP, "score >= 40"),
    # per app: the tax office's own default, the library's empty rules
    (USUAL, OPERATOR, TAX, STEP_UP, "app default"),
    (FIRST, OPERATOR, TAX, STEP_UP, "app default"),
    (LoginSignals(logins_by_account=11), OPERATOR, TAX, REFUSE, "account velocity"),
    (LoginSignals(logins_by_account=11), OPERATOR, "https://library.city.example", ALLOW, "default"),
    (USUAL, OPERATOR, "https://unknown.example", ALLOW, "default"),
])
def test_decisions(signals: LoginSignals, rules: RiskRules, party: str | None, decision: Decision,
                   rule: str) -> None:
    decided = decide(signals, rules, party)

    assert (decided.decision, decided.rule) == (decision, rule)


@pytest.mark.parametrize(("signals", "fired", "total"), [
    (USUAL, (), 0),
    (FIRST, ("new_device", "new_network", "first_login"), 0),  # expected on a first login: no weight
    (TRAVELLING, ("new_device", "new_network"), 20),
    (TWO_PLACES, ("new_network", "distant_networks"), 30),
    (BUSY, ("logins_by_account",), 40),
    (LoginSignals(logins_by_account=20), (), 0),  # at the threshold: not above it
    (GUESSING, ("failed_second_factors",), 30),
    (SHARED, ("logins_by_address",), 30),
    (LoginSignals(True, True, 50, 500, 9, True, False), ("new_device", "new_network", "logins_by_account",
                                                         "logins_by_address", "failed_second_factors",
                                                         "distant_networks"), 140),
])
def test_default_score(signals: LoginSignals, fired: tuple[str, ...], total: int) -> None:
    assert fired_signals(signals) == fired
    assert score(signals) == total
    assert decide(signals).signals == fired
    assert decide(signals).score == total


def test_weights_and_thresholds_are_configurable() -> None:
    rules = _rules({"weights": {"new_device": 50}, "thresholds": {"logins_by_account": 5},
                    "rules": [{"when": ["score >= 50"], "then": "step-up"}]})

    assert decide(NEW_PHONE, rules).decision is STEP_UP
    assert decide(LoginSignals(logins_by_account=6), rules).score == 40
    assert decide(LoginSignals(logins_by_account=5), rules).score == 0


def test_without_rules_the_velocity_rule_follows_the_threshold() -> None:
    rules = _rules({"thresholds": {"logins_by_account": 5}})

    assert decide(LoginSignals(logins_by_account=6), rules).decision is STEP_UP
    assert decide(LoginSignals(logins_by_account=5), rules).decision is ALLOW
    assert decide(BUSY, _rules({"rules": []})).decision is ALLOW  # no rule at all when the operator says so


def test_the_defaults_never_challenge_a_first_or_usual_login() -> None:
    ordinary = [FIRST, USUAL, NEW_PHONE, TRAVELLING, TWO_PLACES, LoginSignals(failed_second_factors=1),
                LoginSignals(logins_by_account=20, logins_by_address=100)]

    assert {decide(signals, DEFAULT_RULES, party).decision
            for signals in ordinary for party in (None, TAX)} == {ALLOW}
    assert _rules({}) == DEFAULT_RULES


def test_the_reason_names_the_rule_signals_and_score() -> None:
    decided = decide(TRAVELLING, OPERATOR)

    assert decided.reason == ("risk step-up: new_device and new_network and not first_login "
                              "(new_device, new_network; score 20)")
    assert decide(USUAL).reason == "risk allow: default (no signal; score 0)"


def test_window_and_retention_are_kept() -> None:
    rules, problems = parse_risk({}, window=timedelta(minutes=15), retention=timedelta(days=7))

    assert problems == []
    assert (rules.window, rules.retention) == (timedelta(minutes=15), timedelta(days=7))


@pytest.mark.parametrize(("text", "condition"), [
    ("new_device", Condition("new_device")),
    ("  not  first_login ", Condition("first_login", negated=True)),
    ("logins_by_account > 10", Condition("logins_by_account", ">", 10)),
    ("score>=50", Condition("score", ">=", 50)),
    ("failed_second_factors != 0", Condition("failed_second_factors", "!=", 0)),
    ("logins_by_address <= 3", Condition("logins_by_address", "<=", 3)),
])
def test_conditions(text: str, condition: Condition) -> None:
    assert parse_condition(text) == condition


@pytest.mark.parametrize(("table", "problem"), [
    ({"rules": [{"when": ["new_devise"], "then": "allow"}]}, "rules 1: unknown signal 'new_devise'"),
    ({"rules": [{"when": ["logins_by_account => 3"], "then": "allow"}]}, "rules 1: cannot read condition"),
    ({"rules": [{"when": ["logins_by_account"], "then": "allow"}]},
     "rules 1: 'logins_by_account' is a number: compare it"),
    ({"rules": [{"when": ["new_device > 1"], "then": "allow"}]}, "rules 1: unknown count 'new_device'"),
    ({"rules": [{"when": ["not score"], "then": "allow"}]}, "rules 1: 'not' goes with a flag"),
    ({"rules": [{"when": ["__import__('os')"], "then": "allow"}]}, "rules 1: cannot read condition"),
    ({"rules": [{"when": [], "then": "allow"}]}, "rules 1 'when' must be a non-empty list of conditions"),
    ({"rules": [{"when": "new_device", "then": "allow"}]}, "rules 1 'when' must be a non-empty list"),
    ({"rules": [{"when": ["new_device"], "then": "challenge"}]}, "rules 1 'then' must be one of allow, step-up"),
    ({"rules": [{"when": ["new_device"], "then": "allow", "else": "refuse"}]}, "rules 1 has unknown keys: else"),
    ({"rules": [{"when": ["new_device"], "then": "allow", "name": 3}]}, "rules 1 'name' must be a string"),
    ({"rules": {"when": ["new_device"]}}, "rules must be a list of rules"),
    ({"rules": ["new_device"]}, "rules 1 must be a table with 'when' and 'then'"),
    ({"default": "deny"}, "default must be one of allow, step-up, refuse, got 'deny'"),
    ({"apps": {TAX: {"default": "maybe"}}}, f"apps.'{TAX}' default must be one of"),
    ({"apps": {TAX: {"rules": [{"when": ["x"], "then": "allow"}]}}}, f"apps.'{TAX}' rules 1: unknown signal 'x'"),
    ({"apps": {TAX: {"defaults": "allow"}}}, f"apps.'{TAX}' has unknown keys: defaults"),
    ({"apps": {TAX: "step-up"}}, f"apps.'{TAX}' must be a table"),
    ({"apps": ["x"]}, "apps must be tables"),
    ({"weights": {"score": 3}}, "weights names unknown signal 'score'"),
    ({"weights": {"new_device": -1}}, "weights new_device must be a whole number from 0"),
    ({"weights": {"new_device": 1.5}}, "weights new_device must be a whole number from 0"),
    ({"thresholds": {"new_device": 1}}, "thresholds names unknown signal 'new_device'"),
    ({"thresholds": 5}, "thresholds must be a table"),
])
def test_problems(table: dict[str, Any], problem: str) -> None:
    rules, problems = parse_risk(table)

    assert any(p.startswith(problem) for p in problems), problems
    assert rules == DEFAULT_RULES


def test_every_problem_is_listed() -> None:
    _, problems = parse_risk({"rules": [{"when": ["a", "b"], "then": "x"}], "default": "y"})

    assert len(problems) == 4


# -- keyed places ---------------------------------------------------------------------------------------------

KEY = b"k" * 32


@pytest.mark.parametrize(("address", "prefix"), [
    ("203.0.113.77", "203.0.113.0/24"),
    ("::ffff:203.0.113.77", "203.0.113.0/24"),
    ("2001:db8:1234:5678::1", "2001:db8:1234::/48"),
    ("fe80::1%eth0", "fe80::/48"),
    ("not an address", "unreadable:not an address"),
])
def test_network_prefixes(address: str, prefix: str) -> None:
    assert network_prefix(address) == prefix


def test_places_hold_keyed_hashes_only() -> None:
    place = login_place("203.0.113.77", "device-123", KEY)
    neighbour = login_place("203.0.113.5", "device-123", KEY)
    mapped = login_place("::ffff:203.0.113.77", "device-123", KEY)
    other_key = login_place("203.0.113.77", "device-123", b"o" * 32)

    assert all(len(value) == 64 and "203" not in value for value in (place.device, place.network, place.address))
    assert len({place.device, place.network, place.address}) == 3  # each value has its own purpose
    assert (neighbour.network, neighbour.device) == (place.network, place.device)
    assert neighbour.address != place.address
    assert mapped == place
    assert other_key.network != place.network
    assert login_place("203.0.113.77", "", KEY).device == ""
    with pytest.raises(ValueError, match="16 bytes"):
        login_place("203.0.113.77", "", b"short")
