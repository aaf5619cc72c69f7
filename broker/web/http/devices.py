"""A browser's User-Agent header in words for the citizen's sessions page (issue 20: "Firefox on Android", never
the raw header).

The header is parsed with ``ua-parser`` (the uap-python project, its regexes maintained by uap-core), not by
patterns of our own. What it reports is trusted for nothing: the header is whatever the browser (or anyone) sent,
and only helps the citizen tell their sessions apart. The result names a browser and a system, or neither
(``Device.browser is None``: the page says "Unknown browser"); the page puts them in a translated sentence.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ua_parser import parse

#: the longest header parsed: the registry keeps a shortened one anyway, and a longer one is nobody's browser
MAX_LENGTH = 512
#: uap-core's family names that are the same browser or system as a citizen knows it
_BROWSERS = {
    "Firefox Mobile": "Firefox", "Firefox iOS": "Firefox", "Mobile Safari": "Safari", "Mobile Safari UI/WKWebView":
    "Safari", "Chrome Mobile": "Chrome", "Chrome Mobile iOS": "Chrome", "Chrome Mobile WebView": "Chrome",
    "HeadlessChrome": "Chrome", "Edge Mobile": "Edge", "Opera Mobile": "Opera",
}
_SYSTEMS = {"Mac OS X": "macOS", "Chrome OS": "ChromeOS"}
#: devices named instead of their system ("Safari on iPhone")
_DEVICES = frozenset({"iPhone", "iPad"})
_UNKNOWN = frozenset({"", "Other"})


@dataclass(frozen=True)
class Device:
    """What a User-Agent header says: the browser's and the system's names, each None when not known."""

    browser: str | None
    system: str | None


@lru_cache(maxsize=256)
def describe(user_agent: str | None) -> Device:
    """The browser and system ``user_agent`` names, as ``ua-parser`` reads them (cached: a page lists a few)."""
    header = (user_agent or "").strip()[:MAX_LENGTH]
    if not header:
        return Device(None, None)
    result = parse(header)
    family = result.user_agent.family if result.user_agent is not None else ""
    system = result.os.family if result.os is not None else ""
    device = result.device.family if result.device is not None else ""
    browser = None if family in _UNKNOWN else _BROWSERS.get(family, family)
    if device in _DEVICES:
        return Device(browser, device)
    return Device(browser, None if system in _UNKNOWN else _SYSTEMS.get(system, system))
