"""Instances are stateless (DESIGN: operator contract): a login started on one finishes on another.

Two brokers run as two OS processes from one instance folder (same config, keys and metadata), on
PostgreSQL with browser sessions in Redis, behind a round-robin reverse proxy without sticky sessions:
every request of the browser (and of the app's back channel) goes to the other instance than the one
before. The processes share nothing in memory; whatever a login needs between two steps must be in
PostgreSQL or Redis. Skipped unless ``BROKER_TEST_DATABASE_URL`` and ``BROKER_TEST_REDIS_URL`` are set.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select
from werkzeug.wrappers import Request

from broker.demo.oidc_provider import DemoProvider, create_demo_provider
from broker.demo.oidc_provider_config import DemoClient, DemoProviderSettings
from broker.oidc.client import hash_secret
from broker.storage import create_engine_for, upgrade
from broker.storage.tables import AccountRow
from tests.flows.federation import CITIZEN, CLIENT_ID, UPSTREAM, _write_instance
from tests.flows.oidc_peers import RelyingParty
from tests.flows.saml_peers import SpKeys, TestSp
from tests.peers.browser import Browser
from tests.peers.servers import LateApp, RunningServer, serve
from tests.production.conftest import needs_postgres, needs_redis
from tests.production.round_robin import Hop, RoundRobin

ROOT = Path(__file__).resolve().parents[2]
RP_CLIENT, RP_SECRET = "city-app", "city-app-secret-0123456789abcdef"
pytestmark = [needs_postgres, needs_redis]


def _start_instance(config: Path, log: Path) -> tuple[subprocess.Popen[str], str]:
    """``python -m tests.production.run_broker CONFIG`` and its URL, once it listens."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROKER_")}  # the config file alone
    env["PYTHONPATH"] = str(ROOT)
    with log.open("w") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "tests.production.run_broker", str(config)], cwd=ROOT,
                                   env=env, stdout=subprocess.PIPE, stderr=stderr, text=True)
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    threading.Thread(target=lambda: lines.put(process.stdout.readline() if process.stdout else ""),
                     daemon=True).start()
    try:
        first = lines.get(timeout=60)
    except queue.Empty:
        first = ""
    if not first.startswith("PORT "):
        process.kill()
        process.wait(timeout=10)
        pytest.fail(f"broker instance did not start: {first!r}\n{log.read_text()[-4000:]}")
    return process, f"http://127.0.0.1:{int(first.split()[1])}"


@dataclass
class TwoInstances:
    url: str
    proxy: RoundRobin
    provider: DemoProvider
    sp: TestSp
    rp: RelyingParty
    instances: list[str]
    database_url: str

    def accounts(self) -> int:
        engine = create_engine_for(self.database_url)
        try:
            with engine.connect() as connection:
                return int(connection.execute(select(func.count()).select_from(AccountRow)).scalar_one())
        finally:
            engine.dispose()


@pytest.fixture
def two_instances(tmp_path: Path, key_folder: Path, postgres_url: str, redis_url: str) -> Iterator[TwoInstances]:
    front_late, op_late, rp_late = LateApp(), LateApp(), LateApp()
    servers: list[RunningServer] = [serve(front_late), serve(op_late), serve(rp_late)]
    front, op, rp_server = servers
    processes: list[subprocess.Popen[str]] = []
    folder = tmp_path / "instance"
    try:
        _write_instance(folder, key_folder, front.url, postgres_url, op.url, redis_url)
        provider = create_demo_provider(DemoProviderSettings(
            issuer=op.url,
            clients=(DemoClient(CLIENT_ID, (folder / "certs" / "op-client.secret").read_text(),
                                (f"{front.url}/upstream/oidc/{UPSTREAM}/callback",)),),
            users=(CITIZEN,), auto_login=CITIZEN.username))
        op_late.target = provider.app
        sp = TestSp("http://127.0.0.1:9/sp1", SpKeys(key_folder / "sp1" / "signing.key",
                                                    key_folder / "sp1" / "signing.crt"))
        (folder / "metadata" / "saml-sp" / "sp1.xml").write_text(sp.metadata())
        (folder / "metadata" / "oidc-clients").mkdir()
        (folder / "metadata" / "oidc-clients" / f"{RP_CLIENT}.json").write_text(json.dumps({
            "client_id": RP_CLIENT, "redirect_uris": [f"{rp_server.url}/callback"],
            "token_endpoint_auth_method": "client_secret_basic", "client_secret_hash": hash_secret(RP_SECRET),
            "scope": "openid profile email"}))
        upgrade(postgres_url)
        instances = []
        for name in ("a", "b"):
            process, url = _start_instance(folder / "broker.toml", tmp_path / f"instance-{name}.log")
            processes.append(process)
            instances.append(url)
        proxy = RoundRobin(instances)
        front_late.target = proxy
        sp.connect(requests.get(f"{front.url}/saml2/idp/metadata", timeout=10).text)
        rp = RelyingParty(front.url, rp_server, rp_late, RP_CLIENT, RP_SECRET, auth_method="client_secret_basic",
                          scope="openid profile email")
        yield TwoInstances(front.url, proxy, provider, sp, rp, instances, postgres_url)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
            if process.stdout is not None:
                process.stdout.close()
        for server in servers:
            server.stop()


def _hops(proxy: RoundRobin, since: int) -> list[Hop]:
    return proxy.log[since:]


def test_a_saml_login_started_on_one_instance_finishes_on_the_other(two_instances: TwoInstances) -> None:
    brokers = two_instances
    since = len(brokers.proxy.log)

    def finish_elsewhere(request: Request, choice: int) -> int:
        """Three hops (request, go upstream, upstream's answer): the answer goes to the other instance than the
        request, the hops in between alternate."""
        if request.path.startswith("/upstream/oidc/"):
            return 1 - next(h.backend for h in brokers.proxy.log[since:] if h.path == "/saml2/idp/sso/redirect")
        return choice

    brokers.proxy.route = finish_elsewhere
    with Browser() as browser:
        request_id, location = brokers.sp.redirect_request()
        page = browser.get(location)

        assert page.status_code == 200, page.text
        assert browser.is_self_submitting(page)
        response = brokers.sp.parse(browser.form_fields(page)["SAMLResponse"], request_id)  # signature checked
    assert response is not None
    assert response.get_identity()["mail"] == ["anna@example.org"]
    assert response.response.signature is not None or response.assertion.signature is not None
    hops = _hops(brokers.proxy, since)
    assert hops[0].path == "/saml2/idp/sso/redirect"
    assert hops[-1].status == 200 and hops[-1].path.startswith("/upstream/oidc/")
    assert hops[0].backend != hops[-1].backend, hops  # started on one instance, finished on the other
    assert hops[0].backend != hops[1].backend, hops  # the pending login written by one, read by the other
    assert brokers.provider.hits("authorize") == 1
    assert brokers.accounts() == 1


def test_an_oidc_code_issued_by_one_instance_is_redeemed_at_the_other(two_instances: TwoInstances) -> None:
    brokers = two_instances

    def token_elsewhere(request: Request, choice: int) -> int:
        """The token request goes to the other instance than the one whose redirect carried the code."""
        for hop in reversed(brokers.proxy.log):
            if hop.location and hop.location.startswith(brokers.rp.redirect_uri) and "code=" in hop.location:
                return 1 - hop.backend if request.path == "/oidc/token" else choice
        return choice

    brokers.proxy.route = token_elsewhere
    since = len(brokers.proxy.log)
    with Browser() as browser:
        page = browser.get(f"{brokers.rp.url}/login")

    assert page.status_code == 200, page.text
    outcome = brokers.rp.last
    assert outcome.error is None, outcome.error_description
    assert outcome.id_token_claims is not None and outcome.id_token_claims["iss"] == brokers.url
    assert outcome.userinfo is not None and outcome.userinfo["email"] == "anna@example.org"
    hops = _hops(brokers.proxy, since)
    code_hop = next(h for h in hops if h.location and h.location.startswith(brokers.rp.redirect_uri))
    token_hop = next(h for h in hops if h.path == "/oidc/token")
    assert token_hop.status == 200 and code_hop.backend != token_hop.backend
    authorize_hop = next(h for h in hops if h.path == "/oidc/authorize")
    assert {authorize_hop.backend, code_hop.backend, token_hop.backend} == {0, 1}
    assert brokers.accounts() == 1
