"""The ``[risk]`` rule language (``broker.core.risk`` describes it): read once at start-up into ``RiskRules``,
with a clear problem for every unknown name, operator or value; no ``eval``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from broker.core.risk import (
    COUNTS,
    DEFAULT_RETENTION,
    DEFAULT_RULES,
    DEFAULT_THRESHOLDS,
    DEFAULT_WEIGHTS,
    DEFAULT_WINDOW,
    FLAGS,
    MAX_NUMBER,
    SCORE,
    VELOCITY_RULE,
    AppRules,
    Condition,
    Decision,
    RiskRule,
    RiskRules,
)

_COMPARISON = re.compile(r"\s*([a-z_]+)\s*(>=|<=|==|!=|>|<)\s*(-?\d+)\s*")
_NEGATION = re.compile(r"\s*not\s+([a-z_]+)\s*")


# -- the rule language --------------------------------------------------------------------------------------

def parse_condition(text: object) -> Condition:
    """``"new_device"``, ``"not first_login"``, ``"logins_by_account > 10"``, ``"score >= 50"``; ``ValueError``
    with a reason otherwise."""
    if not isinstance(text, str):
        raise ValueError(f"condition {text!r:.60} must be a string")
    if negated := _NEGATION.fullmatch(text):
        name = negated.group(1)
        if name not in FLAGS:
            raise ValueError(f"'not' goes with a flag ({', '.join(FLAGS)}), got {text!r:.60}")
        return Condition(name, negated=True)
    if compared := _COMPARISON.fullmatch(text):
        name, op, number = compared.groups()
        if name not in (*COUNTS, SCORE):
            hint = " (a flag: write it alone, or 'not' it)" if name in FLAGS else ""
            raise ValueError(f"unknown count {name!r:.40} in {text!r:.60}{hint}; "
                             f"compare one of {', '.join((*COUNTS, SCORE))}")
        if abs(int(number)) > MAX_NUMBER:
            raise ValueError(f"number out of range in {text!r:.60}")
        return Condition(name, op, int(number))
    name = text.strip()
    if name in FLAGS:
        return Condition(name)
    if name in (*COUNTS, SCORE):
        raise ValueError(f"{name!r} is a number: compare it, e.g. '{name} > 10'")
    if re.fullmatch(r"[a-z_]+", name):
        raise ValueError(f"unknown signal {name!r:.40}; known: {', '.join((*FLAGS, *COUNTS, SCORE))}")
    raise ValueError(f"cannot read condition {text!r:.60}: a signal, 'not <signal>' or "
                     "'<count> <op> <number>' with op one of > >= < <= == !=")


def parse_decision(value: object) -> Decision:
    for decision in Decision:
        if value == decision.value:
            return decision
    raise ValueError(f"must be one of {', '.join(d.value for d in Decision)}, got {value!r:.40}")


def _parse_rule(entry: object, where: str, problems: list[str]) -> RiskRule | None:
    if not isinstance(entry, Mapping):
        problems.append(f"{where} must be a table with 'when' and 'then'")
        return None
    unknown = sorted(set(entry) - {"when", "then", "name"})
    if unknown:
        problems.append(f"{where} has unknown keys: {', '.join(map(str, unknown))} (known: when, then, name)")
    when, name = entry.get("when"), entry.get("name", "")
    conditions: list[Condition] = []
    readable = isinstance(when, list) and bool(when)
    if not isinstance(when, list) or not when:
        problems.append(f"{where} 'when' must be a non-empty list of conditions")
    else:
        for text in when:
            try:
                conditions.append(parse_condition(text))
            except ValueError as exc:
                problems.append(f"{where}: {exc}")
                readable = False
    then: Decision | None = None
    try:
        then = parse_decision(entry.get("then"))
    except ValueError as exc:
        problems.append(f"{where} 'then' {exc}")
    if not isinstance(name, str):
        problems.append(f"{where} 'name' must be a string")
        name = ""
    if then is None or not readable:
        return None
    return RiskRule(tuple(conditions), then, name)


def _parse_rules(entries: object, where: str, problems: list[str]) -> tuple[RiskRule, ...]:
    if not isinstance(entries, list):
        problems.append(f"{where} must be a list of rules ([[risk.rules]] tables)")
        return ()
    parsed = [_parse_rule(entry, f"{where} {number}", problems) for number, entry in enumerate(entries, 1)]
    return tuple(rule for rule in parsed if rule is not None)


def _numbers(table: object, names: tuple[str, ...], key: str, problems: list[str]) -> dict[str, int]:
    if not isinstance(table, Mapping):
        problems.append(f"{key} must be a table of signal = whole number")
        return {}
    found: dict[str, int] = {}
    for name, value in table.items():
        if name not in names:
            problems.append(f"{key} names unknown signal {name!r:.40}; known: {', '.join(names)}")
        elif not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_NUMBER:
            problems.append(f"{key} {name} must be a whole number from 0, got {value!r:.40}")
        else:
            found[name] = value
    return found


def parse_risk(table: Mapping[str, Any], window: timedelta = DEFAULT_WINDOW,
               retention: timedelta = DEFAULT_RETENTION) -> tuple[RiskRules, list[str]]:
    """The ``[risk]`` table (``window``/``retention`` already read) as ``RiskRules``, with every problem found
    (each without the section name). Without ``rules`` the default velocity rule applies (with the configured
    ``logins_by_account`` threshold); ``rules = []`` means no rule at all."""
    problems: list[str] = []
    thresholds = {**DEFAULT_THRESHOLDS, **_numbers(table.get("thresholds", {}), COUNTS, "thresholds", problems)}
    weights = {**DEFAULT_WEIGHTS, **_numbers(table.get("weights", {}), (*FLAGS, *COUNTS), "weights", problems)}
    if "rules" in table:
        rules = _parse_rules(table["rules"], "rules", problems)
    else:
        velocity = Condition("logins_by_account", ">", thresholds["logins_by_account"])
        rules = (RiskRule((velocity,), Decision.STEP_UP, VELOCITY_RULE.name),)
    default = Decision.ALLOW
    try:
        default = parse_decision(table.get("default", Decision.ALLOW.value))
    except ValueError as exc:
        problems.append(f"default {exc}")
    apps: dict[str, AppRules] = {}
    app_tables = table.get("apps", {})
    if not isinstance(app_tables, Mapping):
        problems.append('apps must be tables [risk.apps."<app entity id or client id>"]')
        app_tables = {}
    for party_id, app in app_tables.items():
        where = f"apps.{party_id!r:.80}"
        if not isinstance(app, Mapping):
            problems.append(f"{where} must be a table with 'default' and/or 'rules'")
            continue
        unknown = sorted(set(app) - {"default", "rules"})
        if unknown:
            problems.append(f"{where} has unknown keys: {', '.join(map(str, unknown))} (known: default, rules)")
        app_default = None
        if "default" in app:
            try:
                app_default = parse_decision(app["default"])
            except ValueError as exc:
                problems.append(f"{where} default {exc}")
        app_rules = _parse_rules(app["rules"], f"{where} rules", problems) if "rules" in app else None
        apps[str(party_id)] = AppRules(app_rules, app_default)
    parsed = RiskRules(rules, default, apps, weights, thresholds, window, retention)
    return (parsed, problems) if not problems else (DEFAULT_RULES, problems)


# -- the history: keyed places, and the port -----------------------------------------------------------------
