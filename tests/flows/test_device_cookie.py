"""The device cookie of the risk signals (issue 17; ``broker.web.http.device_cookie``), through the real app: a
completed sign-in gives the browser a signed, HttpOnly, long-lived cookie that identifies nothing but the
device; the next sign-in keeps it; a tampered one counts as none, so the broker gives a new one."""

from __future__ import annotations

from sqlalchemy import select

from broker.storage import create_engine_for
from broker.storage.tables import LoginHistoryRow
from tests.flows.federation import Federation
from tests.flows.oidc_peers import relying_party
from tests.flows.oidc_to_oidc_support import sign_in
from tests.peers.browser import Browser


def device_cookie(browser: Browser) -> str | None:
    found = [c for c in browser.session.cookies if c.name == "broker_device"]
    assert len(found) <= 1
    if not found:
        return None
    cookie = found[0]
    assert cookie.secure and cookie.has_nonstandard_attr("HttpOnly") and cookie.expires is not None
    return cookie.value


def devices_seen(federation: Federation) -> set[str]:
    engine = create_engine_for(federation.database_url)
    try:
        with engine.connect() as connection:
            return set(connection.execute(select(LoginHistoryRow.device)).scalars())
    finally:
        engine.dispose()


def test_a_sign_in_gives_a_device_cookie_which_the_next_keeps_and_a_tampered_one_is_replaced(
        federation: Federation, browser: Browser) -> None:
    with relying_party(federation) as rp:
        assert device_cookie(browser) is None
        sign_in(browser, rp, prompt="login")
        first = device_cookie(browser)
        assert first is not None and "anna" not in first.lower()

        sign_in(browser, rp, prompt="login")
        assert device_cookie(browser) == first
        seen = devices_seen(federation)  # the first login had no cookie yet (""), the second had this one
        assert len(seen) == 2 and "" in seen
        sign_in(browser, rp, prompt="login")
        assert devices_seen(federation) == seen  # one known device: nothing new

        device, _, tag = first.partition(".")
        domain = next(c.domain for c in browser.session.cookies if c.name == "broker_device")
        browser.session.cookies.set("broker_device", f"{device}.{'0' * len(tag)}", domain=domain, path="/")
        sign_in(browser, rp, prompt="login")

        replaced = device_cookie(browser)
        assert replaced is not None and replaced != first and not replaced.startswith(device)
