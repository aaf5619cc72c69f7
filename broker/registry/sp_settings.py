"""The operator's settings for a SAML app, kept beside its metadata: ``metadata/saml-sp/<stem>.toml`` next to
``<stem>.xml`` (written by ``broker sp add|set``, or by hand)::

    display_name = "Parking permits"                 # overrides the metadata's names
    logo_uri = "https://permits.city.example/logo.png"   # https: or data:image/...;base64 only
    policy_uri = "https://permits.city.example/privacy"  # https only
    allowed_upstreams = ["city-idp"]                  # upstream names or IdP entity ids; empty: every one
    default_upstream = "city-idp"                     # used when a request names none; one of allowed_upstreams
    required_acr = "http://eidas.europa.eu/LoA/substantial"   # the weakest assurance the app accepts
    receive = ["email", "given_name", "family_name"]  # what the app asks for, instead of its RequestedAttributes
    required = ["email"]                              # of those, what the citizen cannot decline
    disabled = true                                   # not served (``broker sp disable``); the files stay

A legacy app cannot add ``idp_hint`` to its requests nor list attributes in metadata it does not control; these
settings say it for the app. The file applies to every SP its metadata file describes. It is validated once per
load, like the metadata: a file that does not validate is reported and its app is skipped (never served with
the wrong routing or release). ``receive`` stays capped by ``release_claims`` and the release policy, and
consent still applies.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from broker.core.claims import BY_NAME
from broker.core.display import logo_problem, name_problem, policy_problem

MAX_UPSTREAMS = 50
_TEXT_KEYS = ("display_name", "logo_uri", "policy_uri", "default_upstream", "required_acr")
_LIST_KEYS = ("allowed_upstreams", "receive", "required")
_FLAG_KEYS = ("disabled",)


class SpSettingsError(ValueError):
    """Settings the broker refuses; the message lists every problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = tuple(problems)


@dataclass(frozen=True)
class SpSettings:
    """What the operator said about one SAML app; None / empty: the metadata (or the default) decides."""

    display_name: str | None = None
    logo_uri: str | None = None
    policy_uri: str | None = None
    allowed_upstreams: tuple[str, ...] = ()
    default_upstream: str | None = None
    required_acr: str | None = None
    #: the claims the app asks for; None: its metadata's RequestedAttributes (SAML Metadata §2.4.4.1)
    receive: frozenset[str] | None = None
    #: the claims consent cannot decline; None: the metadata's ``isRequired`` ones
    required: frozenset[str] | None = None
    #: the operator switched the app off: the registry skips its metadata file (``load_sp_catalog``)
    disabled: bool = False

    def to_toml(self) -> str:
        """The file's text; reading it back gives the same settings."""
        lines = []
        for item in fields(self):
            value = getattr(self, item.name)
            if value is None or value == () or value is False:
                continue
            if isinstance(value, frozenset | tuple):
                items = sorted(value) if isinstance(value, frozenset) else list(value)
                value = "[" + ", ".join(json.dumps(v, ensure_ascii=False) for v in items) + "]"
            else:
                value = json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
            lines.append(f"{item.name} = {value}")
        return "".join(f"{line}\n" for line in lines)


def settings_path(metadata_file: Path) -> Path:
    return metadata_file.with_suffix(".toml")


def _text(raw: Mapping[str, Any], key: str, problems: list[str]) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    limit = 100_000 if key == "logo_uri" else 2000  # an inline data:image logo is long
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        problems.append(f"{key} must be non-empty text of at most {limit} characters")
        return None
    return value.strip()


def _names(raw: Mapping[str, Any], key: str, problems: list[str]) -> tuple[str, ...] | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > MAX_UPSTREAMS \
            or not all(isinstance(v, str) and v.strip() and v.isprintable() and len(v) <= 2000 for v in value):
        problems.append(f"{key} must be a list of at most {MAX_UPSTREAMS} non-empty printable texts")
        return None
    return tuple(dict.fromkeys(v.strip() for v in value))


def _claims(raw: Mapping[str, Any], key: str, problems: list[str]) -> frozenset[str] | None:
    names = _names(raw, key, problems)
    if names is None:
        return None
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        problems.append(f"{key} names unknown claims {unknown} (known: {', '.join(sorted(BY_NAME))})")
    return frozenset(n for n in names if n in BY_NAME)


def parse_sp_settings(raw: Mapping[str, Any]) -> SpSettings:
    """Validate the settings of one app (``SpSettingsError`` listing every problem)."""
    problems: list[str] = []
    unknown = sorted(set(raw) - set(_TEXT_KEYS) - set(_LIST_KEYS) - set(_FLAG_KEYS))
    if unknown:
        problems.append(f"unknown settings {unknown} (known: {', '.join(_TEXT_KEYS + _LIST_KEYS + _FLAG_KEYS)})")
    disabled = raw.get("disabled", False)
    if not isinstance(disabled, bool):
        problems.append("disabled must be true or false")
    text = {key: _text(raw, key, problems) for key in _TEXT_KEYS}
    if text["display_name"] is not None and (problem := name_problem(text["display_name"])):
        problems.append(f"display_name {problem}")
    if text["logo_uri"] is not None and (problem := logo_problem(text["logo_uri"])):
        problems.append(f"logo_uri {problem}")
    if text["policy_uri"] is not None and (problem := policy_problem(text["policy_uri"])):
        problems.append(f"policy_uri {problem}")
    if text["required_acr"] is not None and not all(c.isprintable() and not c.isspace() for c in text["required_acr"]):
        problems.append("required_acr must be one acr value (an AuthnContextClassRef URI or an [assurance] alias)")
    allowed = _names(raw, "allowed_upstreams", problems) or ()
    default = text["default_upstream"]
    if default is not None and not default.isprintable():
        problems.append("default_upstream must be printable text")
    elif default is not None and allowed and default not in allowed:
        problems.append(f"default_upstream {default!r} is not one of allowed_upstreams {list(allowed)}")
    receive, required = _claims(raw, "receive", problems), _claims(raw, "required", problems)
    if required is not None and receive is not None and not required <= receive:
        problems.append(f"required names claims the app does not receive: {sorted(required - receive)}")
    if problems:
        raise SpSettingsError(problems)
    return SpSettings(display_name=text["display_name"], logo_uri=text["logo_uri"], policy_uri=text["policy_uri"],
                      allowed_upstreams=allowed, default_upstream=default, required_acr=text["required_acr"],
                      receive=receive, required=required, disabled=disabled is True)


def read_sp_settings(metadata_file: Path) -> SpSettings:
    """The settings beside ``metadata_file``; empty settings when there is no such file. ``SpSettingsError``
    (a ``ValueError``) when the file is unreadable or invalid."""
    path = settings_path(metadata_file)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return SpSettings()
    except (OSError, UnicodeDecodeError) as exc:
        raise SpSettingsError([f"{path.name} is not readable: {type(exc).__name__}"]) from exc
    try:
        raw = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError) as exc:
        raise SpSettingsError([f"{path.name} is not valid TOML: {exc}"]) from exc
    try:
        return parse_sp_settings(raw)
    except SpSettingsError as exc:
        raise SpSettingsError([f"{path.name}: {problem}" for problem in exc.problems]) from exc
