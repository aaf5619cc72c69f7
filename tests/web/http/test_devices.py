"""The sessions page's words for a browser (``broker.web.http.devices``), from real User-Agent headers."""

from __future__ import annotations

import pytest

from broker.web.http.devices import Device, describe

FIREFOX_ANDROID = "Mozilla/5.0 (Android 14; Mobile; rv:128.0) Gecko/128.0 Firefox/128.0"
SAFARI_IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                 "Version/17.5 Mobile/15E148 Safari/604.1")
CHROME_WINDOWS = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/126.0.0.0 Safari/537.36")
EDGE_WINDOWS = CHROME_WINDOWS + " Edg/126.0.2592.87"
SAFARI_MAC = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
              "Version/17.5 Safari/605.1.15")


@pytest.mark.parametrize(("header", "device"), [
    (FIREFOX_ANDROID, Device("Firefox", "Android")),
    (SAFARI_IPHONE, Device("Safari", "iPhone")),
    (CHROME_WINDOWS, Device("Chrome", "Windows")),
    (EDGE_WINDOWS, Device("Edge", "Windows")),
    (SAFARI_MAC, Device("Safari", "macOS")),
    ("curl/8.5.0", Device("curl", None)),
    ("", Device(None, None)),
    (None, Device(None, None)),
    ("   ", Device(None, None)),
    ("something nobody knows", Device(None, None)),
])
def test_a_header_is_named_by_browser_and_system(header: str | None, device: Device) -> None:
    assert describe(header) == device


def test_a_huge_header_is_cut_before_it_is_parsed() -> None:
    assert describe(FIREFOX_ANDROID + " x" * 10_000) == Device("Firefox", "Android")
