"""The operator's release policy, from ``metadata/release-policy.toml`` (optional)::

    version = "2026-11"            # change it to ask every citizen for consent again

    [default]                      # every app not named below
    consent_exempt = false
    # allow = ["email", ...]       # narrow every app further than [broker] release_claims

    [apps."https://intranet.city.example/sp"]
    allow = ["email", "email_verified", "name"]
    consent_exempt = true          # a first-party app: released without asking, recorded as exempt

Without the file every app may receive up to ``release_claims`` and every app asks for consent. A file that
does not validate is reported and replaced by the strictest policy (no claims released at all), never by
the most permissive one.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from broker.core.claims import BY_NAME
from broker.core.consent import PartyPolicy, ReleasePolicy

POLICY_FILE = "release-policy.toml"
STRICTEST = ReleasePolicy(version="invalid", default=PartyPolicy(allow=frozenset()), parties={})
_PARTY_KEYS = {"allow", "consent_exempt"}


def _party(raw: Any, where: str, problems: list[str]) -> PartyPolicy:
    if not isinstance(raw, Mapping):
        problems.append(f"{where} must be a table")
        return PartyPolicy(allow=frozenset())
    unknown = set(raw) - _PARTY_KEYS
    if unknown:
        problems.append(f"{where} has unknown settings {sorted(unknown)}")
    allow = raw.get("allow")
    if allow is not None and (not isinstance(allow, list) or not all(isinstance(c, str) for c in allow)):
        problems.append(f"{where} allow must be a list of claim names")
        allow = []
    bad = [c for c in allow or [] if c not in BY_NAME]
    if bad:
        problems.append(f"{where} allow names unknown claims {bad}")
    exempt = raw.get("consent_exempt", False)
    if not isinstance(exempt, bool):
        problems.append(f"{where} consent_exempt must be true or false")
        exempt = False
    return PartyPolicy(allow=frozenset(allow) if allow is not None else None, consent_exempt=exempt)


def load_policy(metadata_dir: Path) -> tuple[ReleasePolicy, list[str]]:
    """The policy and the problems found; ``STRICTEST`` when the file exists but is not valid."""
    path = metadata_dir / POLICY_FILE
    if not path.is_file():
        return ReleasePolicy(), []
    try:
        data = path.read_bytes()
    except OSError as exc:
        return STRICTEST, [f"{POLICY_FILE}: not readable TOML ({type(exc).__name__}); releasing no claims"]
    return parse_policy(data)


def parse_policy(data: bytes) -> tuple[ReleasePolicy, list[str]]:
    """The policy a file holding ``data`` gives (``load_policy``'s own check: the console and the admin API
    preview a new text with it): ``STRICTEST`` and the problems when it is not valid."""
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError) as exc:
        return STRICTEST, [f"{POLICY_FILE}: not readable TOML ({type(exc).__name__}: {_first_line(exc)}); "
                           "releasing no claims"]
    problems: list[str] = []
    unknown = set(raw) - {"version", "default", "apps"}
    if unknown:
        problems.append(f"{POLICY_FILE}: unknown settings {sorted(unknown)}")
    version = raw.get("version", "1")
    if not isinstance(version, str) or not 0 < len(version) <= 64:
        problems.append(f"{POLICY_FILE}: version must be text of 1 to 64 characters")
    default = _party(raw.get("default", {}), f"{POLICY_FILE} [default]", problems)
    apps = raw.get("apps", {})
    parties: dict[str, PartyPolicy] = {}
    if not isinstance(apps, Mapping):
        problems.append(f"{POLICY_FILE}: apps must be a table of app ids")
    else:
        for party_id, rule in apps.items():
            parties[party_id] = _party(rule, f"{POLICY_FILE} [apps.{party_id!r}]", problems)
    if problems:
        return STRICTEST, [*problems, f"{POLICY_FILE}: not valid; releasing no claims until it is fixed"]
    return ReleasePolicy(version=version, default=default, parties=parties), []


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else "unreadable"
