"""The reader behind ``broker.config.settings``: typed values from the merged TOML file and ``BROKER_*`` environment,
every problem collected (not raised) so that start-up reports them all at once."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from limits import parse_many


class Reader:
    """Reads typed values from the merged file + environment, collecting every problem."""

    def __init__(self, data: Mapping[str, Any], environ: Mapping[str, str], base: Path) -> None:
        self.data, self.environ, self.base, self.problems = data, environ, base, list[str]()
        self.read: dict[str, set[str]] = {}

    def setting(self, section: str, key: str, default: Any) -> Any:
        """The file's value of ``[section] key`` (no environment), noting that the key is known."""
        self.read.setdefault(section, set()).add(key)
        return self.table(section).get(key, default)

    def report_unknown(self) -> None:
        """A typo in a key silently keeps its default; name every key and section nothing read."""
        for section, table in self.data.items():
            if section not in self.read:
                self.problems.append(f"unknown section [{section}]")
                continue
            known = self.read[section]
            for key in table if isinstance(table, Mapping) else ():
                if key not in known:
                    close = difflib.get_close_matches(key, sorted(known), n=1)
                    hint = f" (did you mean {close[0]!r}?)" if close else ""
                    self.problems.append(f"[{section}] unknown setting {key!r}{hint}")

    def table(self, section: str) -> Mapping[str, Any]:
        table = self.data.get(section, {})
        if isinstance(table, Mapping):
            return table
        problem = f"[{section}] must be a table"
        if problem not in self.problems:
            self.problems.append(problem)
        return {}

    def _raw(self, section: str, key: str, default: Any) -> Any:
        env = f"BROKER_{key.upper()}" if section == "broker" else f"BROKER_{section.upper()}_{key.upper()}"
        if env in self.environ:
            self.read.setdefault(section, set()).add(key)
            return self.environ[env]
        return self.setting(section, key, default)

    def text(self, section: str, key: str, default: str) -> str:
        value = self._raw(section, key, default)
        if not isinstance(value, str):
            self.problems.append(f"[{section}] {key} must be a string")
            return default
        return value

    def number(self, section: str, key: str, default: int, low: int, high: int) -> int:
        value = self._raw(section, key, default)
        try:
            if not isinstance(value, int | str) or isinstance(value, bool):  # 1.5 must not become 1
                raise TypeError(value)
            number = int(value)
        except (TypeError, ValueError):
            self.problems.append(f"[{section}] {key} must be a whole number, got {value!r}")
            return default
        if not low <= number <= high:
            self.problems.append(f"[{section}] {key} must be between {low} and {high}, got {number}")
            return default  # the problem is reported; nothing downstream may see the value
        return number

    def flag(self, section: str, key: str, default: bool) -> bool:
        value = self._raw(section, key, default)
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value.lower() in ("1", "true", "yes", "on")
        self.problems.append(f"[{section}] {key} must be true or false, got {value!r}")
        return default

    def text_list(self, section: str, key: str) -> frozenset[str]:
        """A list of strings from the file (lists have no environment form)."""
        value = self.setting(section, key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.problems.append(f"[{section}] {key} must be a list of non-empty strings")
            return frozenset()
        return frozenset(value)

    def rate(self, section: str, key: str, default: str) -> str:
        """A rate limit in ``limits`` notation ("60/minute", "10/second;300/hour")."""
        value = self.text(section, key, default)
        try:
            parse_many(value)
        except ValueError:
            self.problems.append(f"[{section}] {key} must be a rate such as '60/minute', got {value!r}")
            return default
        return value

    def path(self, section: str, key: str, default: str) -> Path:
        text = self.text(section, key, default)
        try:
            path = Path(text).expanduser()
        except RuntimeError:  # "~someone" for a user this machine does not know
            self.problems.append(f"[{section}] {key}: cannot expand {text!r}")
            path = Path(default)
        return path if path.is_absolute() else self.base / path

    def secret(self, key: str, env: str, min_bytes: int, section: str = "broker",
               optional: bool = False, hint: str = "") -> bytes:
        """A secret from ``env`` or from the file named by ``key``; never from the config file itself.
        ``optional``: empty when neither is set. ``hint``: added to the problem when neither is set."""
        self.read.setdefault(section, set()).add(key)
        if env in self.environ:
            try:
                value = self.environ[env].encode()
            except UnicodeEncodeError:  # os.environ carries undecodable bytes as lone surrogates
                self.problems.append(f"the environment variable {env} is not UTF-8 text")
                return b""
            origin = f"environment variable {env}"
        else:
            file_setting = self.setting(section, key, None)
            if not file_setting and optional:
                return b""
            if not file_setting:
                self.problems.append(f"no {key.removesuffix('_file')}: set {env} or [{section}] {key}{hint}")
                return b""
            if not isinstance(file_setting, str):
                self.problems.append(f"[{section}] {key} must be a string")
                return b""
            path = Path(file_setting) if Path(file_setting).is_absolute() else self.base / file_setting
            try:
                value = path.read_bytes().strip()
            except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
                reason = exc.strerror if isinstance(exc, OSError) else "not a valid path"
                self.problems.append(f"cannot read {key} {path!s:.200}: {reason}")
                return b""
            origin = str(path)
        if len(value) < min_bytes:
            self.problems.append(f"the secret from {origin} is shorter than {min_bytes} bytes")
        return value
