"""``broker.registry.policy``: the operator's release policy file, and what happens when it is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.core.consent import PartyPolicy, ReleasePolicy
from broker.registry.policy import POLICY_FILE, STRICTEST, load_policy


def _write(folder: Path, text: str) -> Path:
    (folder / POLICY_FILE).write_text(text)
    return folder


def test_no_file_means_no_narrowing_and_consent_for_every_app(tmp_path: Path) -> None:
    assert load_policy(tmp_path) == (ReleasePolicy(), [])


def test_a_full_policy(tmp_path: Path) -> None:
    policy, problems = load_policy(_write(tmp_path, """
version = "2026-11"
[default]
allow = ["email", "email_verified", "name"]
[apps."https://intranet.city.example/sp"]
allow = ["email", "email_verified"]
consent_exempt = true
"""))
    assert problems == []
    assert policy.version == "2026-11"
    assert policy.for_party("other") == PartyPolicy(allow=frozenset({"email", "email_verified", "name"}))
    assert policy.for_party("https://intranet.city.example/sp") == PartyPolicy(
        allow=frozenset({"email", "email_verified"}), consent_exempt=True)


@pytest.mark.parametrize("text", [
    "version = [",  # not TOML
    'allow = ["email"]',  # a top-level key the file does not have
    '[default]\nallow = ["email", "shoe_size"]',  # an unknown claim
    '[default]\nallow = "email"',
    '[default]\nconsent_exempt = "yes"',
    '[default]\nconsent_exmept = true',  # a typo must not silently keep consent on or off
    'version = ""',
    'apps = 3',
    '[apps]\n"x" = 1',
])
def test_an_invalid_file_releases_nothing_and_says_why(tmp_path: Path, text: str) -> None:
    policy, problems = load_policy(_write(tmp_path, text))

    assert policy == STRICTEST
    assert policy.allows("any-app", frozenset({"email", "name"})) == frozenset()
    assert problems and all(p.startswith(POLICY_FILE) for p in problems)
