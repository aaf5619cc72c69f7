"""Checks of one citizen page as Chromium shows it (issue 20): axe-core's WCAG 2.1 A and AA rules at a desktop
width and at a phone's, the 320 CSS px reflow of WCAG 1.4.10, the language and direction of the page, a visible
focus indicator (WCAG 2.4.7) for the keyboard walks, and full-page screenshots for the documentation.

axe-core is the copy bundled with the ``axe-core-python`` package (axe 4.4), read from the installed package and
injected with ``execute_script``: nothing is fetched. The phone is Chromium's device emulation
(``Emulation.setDeviceMetricsOverride``, mobile, device scale factor 1), which is cheaper than another window.
Used by ``test_chromium_pages.py``; needs selenium (the test module asks ``chromium_support.missing()`` first).
"""

from __future__ import annotations

import base64
import importlib.resources
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chromium.webdriver import ChromiumDriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as seen

from broker.demo.oidc_provider import DemoClient, DemoProviderSettings, create_demo_provider
from broker.keys.keyring import write_private
from tests.browser.chromium_support import page_says, wait
from tests.flows.federation import CITIZEN

DESKTOP, PHONE, SCREENSHOT_PHONE = (1280, 800), (320, 640), (390, 844)
#: axe-core's tags of the WCAG 2.0 and 2.1 success criteria at levels A and AA
WCAG_AA_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")
COOKIE = "broker_lang"  # the language switch's cookie (broker/web/locale.py); Accept-Language is set as well

_RUN_AXE = """
const done = arguments[arguments.length - 1];
axe.run(document, {runOnly: {type: 'tag', values: arguments[0]}, resultTypes: ['violations']})
  .then(r => done(r.violations.map(v => ({rule: v.id, impact: v.impact || '', help: v.help,
                                           targets: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))),
        e => done({error: String(e)}));
"""

#: WCAG 1.4.10: no horizontal scrolling. The width is the layout viewport's (``clientWidth``): an emulated phone
#: zooms out to show a too-wide page whole, and ``window.innerWidth`` grows with it. The culprit named is the
#: innermost element reaching furthest out, its own box or its content (``scrollWidth``: a word that does not
#: wrap overflows a box that fits), to the right, or to the left in a right-to-left page (the skip link
#: waiting off-screen at the start of the line makes no scrolling)
_REFLOW = """
const root = document.documentElement, width = root.clientWidth;
const rtl = getComputedStyle(root).direction === 'rtl';  // only overflow at the end of the line scrolls
if (root.scrollWidth <= width) return null;
let worst = null, reach = 0;
for (const el of document.body.querySelectorAll('*')) {
  const box = el.getBoundingClientRect(), extent = Math.max(box.width, el.scrollWidth);
  const over = rtl ? Math.max(-box.left, extent - box.right) : Math.max(box.right - width, box.left + extent - width);
  if (over > 0.5 && over >= reach - 0.5) { worst = el; reach = over; }
}
const name = worst ? worst.tagName.toLowerCase() + (worst.id ? '#' + worst.id : '') +
  (worst.className && typeof worst.className === 'string' ? '.' + worst.className.trim().split(/\\s+/).join('.') : '')
  : '?';
const text = worst ? (worst.textContent || '').trim().slice(0, 60) : '';
return {scrollWidth: root.scrollWidth, innerWidth: width, element: name,
        width: worst ? Math.round(Math.max(worst.getBoundingClientRect().width, worst.scrollWidth)) : 0,
        text: text};
"""

#: WCAG 2.4.7: the focused element is on screen with an outline or a box shadow; WCAG 1.4.11: one of the
#: indicator's colours has a contrast of at least 3:1 with the background around the element (its parent's)
_FOCUS = """
const el = document.activeElement;
if (!el || el === document.body) return {ok: false, what: 'nothing focused'};
const s = getComputedStyle(el), box = el.getBoundingClientRect();
const outline = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0;
const shadow = s.boxShadow && s.boxShadow !== 'none';
const shown = box.width > 0 && box.height > 0;
const rgb = c => (c.match(/[\\d.]+/g) || []).map(Number);
const lum = c => { const [r, g, b] = rgb(c).map(v => v / 255).map(v => v <= 0.03928 ? v / 12.92 :
                                                                   Math.pow((v + 0.055) / 1.055, 2.4));
                   return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
let around = 'rgb(255, 255, 255)';
for (let p = el.parentElement; p; p = p.parentElement) {
  const bg = getComputedStyle(p).backgroundColor, a = rgb(bg);
  if (a.length === 3 || (a.length === 4 && a[3] > 0)) { around = bg; break; }
}
const colours = [...(outline ? [s.outlineColor] : []),
                 ...(shadow ? s.boxShadow.match(/rgba?\\([^)]*\\)/g) || [] : [])];
const ratio = Math.max(0, ...colours.map(c => { const [x, y] = [lum(c), lum(around)].sort((m, n) => n - m);
                                                return (x + 0.05) / (y + 0.05); }));
const what = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + ' "' +
  (el.innerText || el.value || el.getAttribute('aria-label') || '').trim().slice(0, 40) + '"';
return {ok: (outline || shadow) && shown && ratio >= 3, what: what, outline: s.outlineStyle + ' ' + s.outlineWidth,
        shadow: s.boxShadow, shown: shown, ratio: Math.round(ratio * 100) / 100, around: around};
"""


@dataclass(frozen=True)
class Finding:
    """One failed check of one page, readable on its own in a test's failure message."""

    page: str
    url: str
    width: int
    language: str
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"[{self.language} {self.width}px] {self.page}: {self.rule}: {self.detail} ({self.url})"


def cdp(driver: WebDriver, command: str, params: dict[str, Any]) -> dict[str, Any]:
    """A Chrome DevTools Protocol command (the driver is chromium_support's Chromium)."""
    assert isinstance(driver, ChromiumDriver), type(driver)
    return dict(driver.execute_cdp_cmd(command, params))


@cache
def axe_source() -> str:
    """axe.min.js as the axe-core-python package ships it."""
    return importlib.resources.files("axe_core_python").joinpath("axe.min.js").read_text(encoding="utf-8")


def axe_on_every_page(driver: WebDriver) -> None:
    """axe-core loaded into every later document by Chromium itself (DevTools' ``addScriptToEvaluateOnNewDocument``):
    cheaper than sending its 430 kB with each ``execute_script``."""
    cdp(driver, "Page.addScriptToEvaluateOnNewDocument", {"source": axe_source()})


def set_language(driver: WebDriver, language: str) -> None:
    """Every later request says ``Accept-Language: <language>`` (DevTools' extra headers: no new browser)."""
    cdp(driver, "Network.enable", {})
    cdp(driver, "Network.setExtraHTTPHeaders", {"headers": {"Accept-Language": f"{language},en;q=0.1"}})


def set_language_cookie(driver: WebDriver, base_url: str, language: str) -> None:
    """The cookie the language switch sets, on the broker's site (where the driver must be)."""
    assert driver.current_url.startswith(base_url), driver.current_url
    driver.add_cookie({"name": COOKIE, "value": language, "path": "/", "secure": True})


def forget_everything(driver: WebDriver) -> None:
    """Every cookie of every site: the next page starts signed out."""
    cdp(driver, "Network.clearBrowserCookies", {})


def as_phone(driver: WebDriver, size: tuple[int, int] = PHONE) -> None:
    cdp(driver, "Emulation.setDeviceMetricsOverride", {
        "width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": True})


def as_desktop(driver: WebDriver, size: tuple[int, int] = DESKTOP) -> None:
    cdp(driver, "Emulation.setDeviceMetricsOverride", {
        "width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": False})


def axe_violations(driver: WebDriver) -> list[dict[str, Any]]:
    """axe-core's violations of the WCAG 2.1 A/AA rules on the page as it is now."""
    if not driver.execute_script("return typeof window.axe === 'object'"):
        driver.execute_script(axe_source())
    result = driver.execute_async_script(_RUN_AXE, list(WCAG_AA_TAGS))
    if isinstance(result, dict):
        raise AssertionError(f"axe-core did not run: {result.get('error')} {page_says(driver)}")
    return list(result)


def reflow_problem(driver: WebDriver) -> str | None:
    """WCAG 1.4.10 (reflow): at the phone's width the page scrolls sideways? Then what is too wide."""
    found = driver.execute_script(_REFLOW)
    if found is None:
        return None
    return (f"the page is {found['scrollWidth']} px wide in a {found['innerWidth']} px window; widest: "
            f"{found['element']} ({found['width']} px) {found['text']!r}")


def check_page(driver: WebDriver, page: str, language: str) -> list[Finding]:
    """axe at the desktop width, then axe and the reflow at 320 px; the page's ``lang`` is the language asked
    for (WCAG 3.1.1) and, for Arabic, its direction right to left. Leaves the window at the desktop width."""
    url, findings = driver.current_url, []

    def found(width: int, rule: str, detail: str) -> None:
        findings.append(Finding(page, url, width, language, rule, detail))

    shown = driver.execute_script("return [document.documentElement.lang, document.documentElement.dir]")
    if shown[0].split("-")[0] != language:
        found(DESKTOP[0], "language", f'<html lang="{shown[0]}">, not {language}')
    if language == "ar" and shown[1] != "rtl":
        found(DESKTOP[0], "direction", f'<html dir="{shown[1]}">, not rtl')
    for width, size_it in ((DESKTOP[0], as_desktop), (PHONE[0], as_phone)):
        size_it(driver)
        if width == PHONE[0]:
            inner = driver.execute_script("return document.documentElement.clientWidth")
            if inner != PHONE[0]:
                found(width, "viewport", f"the layout viewport is {inner} px (no <meta name=viewport>?)")
            if (problem := reflow_problem(driver)) is not None:
                found(width, "reflow (WCAG 1.4.10)", problem)
        for v in axe_violations(driver):
            found(width, f"axe {v['rule']} ({v['impact']})", f"{v['help']}: {', '.join(v['targets'])}")
    as_desktop(driver)
    return findings


def screenshot(driver: WebDriver, path: Path, size: tuple[int, int]) -> None:
    """The whole page (beyond the window: ``captureBeyondViewport``) at ``size``'s width, as a PNG file."""
    (as_phone if size[0] < DESKTOP[0] else as_desktop)(driver, size)
    shot = cdp(driver, "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    path.write_bytes(base64.b64decode(shot["data"]))
    as_desktop(driver)


def focus_problem(driver: WebDriver) -> str | None:
    """WCAG 2.4.7 and 1.4.11: what is wrong with the focused element's indicator, or None."""
    state = driver.execute_script(_FOCUS)
    if state["ok"]:
        return None
    return (f"{state['what']}: no visible focus indicator (outline {state.get('outline')}, box-shadow "
            f"{state.get('shadow')}, on screen {state.get('shown')}, best contrast {state.get('ratio')}:1 with "
            f"{state.get('around')}) at {driver.current_url}")


def tab_to(driver: WebDriver, wanted: Callable[[WebDriver], bool], steps: int = 40,
           problems: list[str] | None = None) -> None:
    """Press TAB until ``wanted`` holds for the focused element, checking each stop's focus indicator
    (problems go to ``problems``; without it they fail at once)."""
    for _ in range(steps):
        ActionChains(driver).send_keys(Keys.TAB).perform()
        if (problem := focus_problem(driver)) is not None:
            if problems is None:
                raise AssertionError(problem)
            problems.append(problem)
        if wanted(driver):
            return
    raise AssertionError(f"TAB did not reach the element in {steps} steps {page_says(driver)}")


def focused(selector: str) -> Callable[[WebDriver], bool]:
    """Whether the focused element matches the CSS ``selector`` (language-neutral: by action, value, href)."""
    return lambda driver: bool(driver.execute_script(
        "return !!document.activeElement && document.activeElement.matches(arguments[0])", selector))


def press(driver: WebDriver, key: str) -> None:
    ActionChains(driver).send_keys(key).perform()


def to_the_next_page(driver: WebDriver, act: Callable[[], None]) -> None:
    """``act`` (a click, a key) and wait until the page it leaves is gone: the next one may look alike."""
    old = driver.find_element(By.TAG_NAME, "html")
    act()
    try:
        wait(driver).until(seen.staleness_of(old))
    except TimeoutException:
        raise AssertionError(f"still on the same page {page_says(driver)}") from None


def until(driver: WebDriver, selector: str) -> None:
    """Wait for an element matching the CSS ``selector`` (the next page, whatever its language)."""
    try:
        wait(driver).until(seen.presence_of_element_located((By.CSS_SELECTOR, selector)))
    except TimeoutException:
        raise AssertionError(f"no {selector} {page_says(driver)}") from None


def second_provider(base_url: str, redirect_uri: str, folder: Path) -> tuple[Any, dict[str, Any]]:
    """Another OpenID provider beside the demo one (``ExtraUpstream``): a choice on the discovery page, and the
    same citizen with the same verified e-mail address under another issuer (the link offer)."""
    secret = secrets.token_urlsafe(24)
    write_private(folder / "certs" / "social.secret", secret.encode())
    provider = create_demo_provider(DemoProviderSettings(
        issuer=base_url, clients=(DemoClient("social-client", secret, (redirect_uri,)),), users=(CITIZEN,),
        auto_login=CITIZEN.username))
    return provider.app, {"protocol": "oidc", "issuer": base_url, "client_id": "social-client",
                          "display_name": "Another OpenID provider", "client_secret_file": "certs/social.secret"}


def summary(findings: Sequence[Finding]) -> str:
    return f"{len(findings)} problem(s):\n" + "\n".join(str(f) for f in findings)
