"""``/metrics`` (``broker.web.ops.metrics``): a real login through the test federation shows up in the counters and
histograms, a failed one under its error kind, and every label value is bounded."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from broker.demo.oidc_provider_config import Mischief
from broker.web.ops import metrics
from tests.flows.federation import UPSTREAM, Federation, make_keys, running_federation
from tests.peers.browser import Browser

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
TOKEN = "metrics-token-" + "m" * 40


@pytest.fixture(scope="module")
def key_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture
def federation(tmp_path: Path, key_folder: Path) -> Iterator[Federation]:
    with running_federation(tmp_path / "instance", key_folder, f"sqlite:///{tmp_path / 'b.db'}") as running:
        yield running


@pytest.fixture
def browser() -> Iterator[Browser]:
    with Browser() as b:
        yield b


def scrape(url: str, **headers: str) -> Samples:
    reply = requests.get(url + "/metrics", headers=headers, timeout=10)
    assert reply.status_code == 200, reply.text
    assert reply.headers["Content-Type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(reply.text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def label_values(samples: Samples, name: str, label: str) -> set[str]:
    return {dict(key)[label] for (sample, key) in samples if sample == name and label in dict(key)}


def test_a_login_counts_as_success_and_times_every_step(federation: Federation, browser: Browser) -> None:
    sp1, sp2 = (federation.sps[n].entity_id for n in ("sp1", "sp2"))
    before = scrape(federation.url)

    _, page = federation.login(browser, "sp1")
    assert browser.is_self_submitting(page)
    federation.login(browser, "sp2")  # answered from the SSO session
    after = scrape(federation.url)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("broker_logins_total", upstream=UPSTREAM, downstream=sp1, outcome="success") == 1
    assert grew("broker_logins_total", upstream=UPSTREAM, downstream=sp2, outcome="sso") == 1
    for step in metrics.STEPS:
        assert grew("broker_login_step_seconds_count", step=step) >= 1, step
        assert value(after, "broker_login_step_seconds_sum", step=step) > 0, step
    assert grew("broker_login_step_seconds_count", step="answer") == 2  # both logins answered
    for call in ("token", "userinfo"):
        assert grew("broker_upstream_request_seconds_count", upstream=UPSTREAM, call=call) == 1, call
    assert value(after, "broker_upstream_request_seconds_count", upstream=UPSTREAM, call="discovery") >= 1
    assert value(after, "broker_upstream_request_seconds_count", upstream=UPSTREAM, call="jwks") >= 1
    assert grew("broker_http_requests_total", endpoint="saml_idp.sso_redirect", status="302") == 1
    assert grew("broker_http_requests_total", endpoint="login.oidc_callback", status="200") == 1
    assert grew("broker_http_requests_total", endpoint="metrics.metrics", status="200") == 1


def test_failed_logins_count_under_their_error_kind(federation: Federation, browser: Browser) -> None:
    sp1 = federation.sps["sp1"].entity_id
    before = scrape(federation.url)

    federation.login(browser, "sp1")
    callback = next(u for u in browser.history if "/upstream/oidc/" in u)
    browser.get(callback)  # replayed: this browser has no such login waiting any more (an error page)
    federation.provider.mischief = Mischief(claim_overrides={"nonce": "x"})
    with Browser() as other:
        federation.login(other)  # refused ID token: the app is told
    after = scrape(federation.url)

    def grew(**labels: str) -> float:
        return value(after, "broker_logins_total", **labels) - value(before, "broker_logins_total", **labels)

    assert grew(upstream=UPSTREAM, downstream="none", outcome="LoginStateInvalid") == 1
    assert grew(upstream=UPSTREAM, downstream=sp1, outcome="UpstreamVerificationFailed") == 1
    assert grew(upstream=UPSTREAM, downstream=sp1, outcome="success") == 1


def test_label_values_stay_bounded(federation: Federation, browser: Browser) -> None:
    for n in range(3):  # callbacks of upstreams nobody registered: one label value for them all
        requests.get(f"{federation.url}/upstream/oidc/made-up-{n}/callback?state=x&code=y", timeout=10)
    federation.login(browser, "sp1")
    samples = scrape(federation.url)

    errors = metrics._error_kinds()
    # the registry is per process: other tests' federations ("city", "github", ...) may have counted too, so
    # the check is that no name nobody registered ever becomes a label value
    upstreams = label_values(samples, "broker_logins_total", "upstream")
    assert UPSTREAM in upstreams and not any(value.startswith("made-up") for value in upstreams)
    assert label_values(samples, "broker_logins_total", "outcome") <= {"success", "sso", *errors}
    assert {"LoginStateInvalid"} <= label_values(samples, "broker_logins_total", "outcome")
    assert label_values(samples, "broker_login_step_seconds_count", "step") <= set(metrics.STEPS)
    assert label_values(samples, "broker_upstream_request_seconds_count", "call") <= {
        "token", "userinfo", "discovery", "jwks", "api", "other"}
    assert not any("made-up" in v for label in ("upstream", "endpoint")
                   for name in ("broker_logins_total", "broker_http_requests_total")
                   for v in label_values(samples, name, label))
    assert "login.oidc_callback" in label_values(samples, "broker_http_requests_total", "endpoint")


def test_bounded_label_values_fall_back_to_other() -> None:
    bounded = metrics._Bounded(2)
    assert [bounded(v) for v in ("a", "b", "c", "a", "d")] == ["a", "b", "other", "a", "other"]


def test_the_idp_metadata_gauges_are_read_when_scraped() -> None:
    loaded = datetime.now(UTC) - timedelta(minutes=5)
    directory = SimpleNamespace(status=lambda: (SimpleNamespace(name="edugain", entities=3200, loaded_at=loaded),
                                                SimpleNamespace(name="local", entities=0, loaded_at=None)))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics.DirectoryCollector(directory))  # type: ignore[arg-type]

    assert registry.get_sample_value("broker_idp_metadata_entities", {"source": "edugain"}) == 3200
    assert registry.get_sample_value("broker_idp_metadata_entities", {"source": "local"}) == 0
    age = registry.get_sample_value("broker_idp_metadata_age_seconds", {"source": "edugain"})
    assert age is not None and 299 <= age <= 360
    assert registry.get_sample_value("broker_idp_metadata_age_seconds", {"source": "local"}) is None


def test_the_metrics_token_is_required_when_configured(tmp_path: Path, key_folder: Path) -> None:
    token_file = tmp_path / "metrics.token"
    token_file.write_text(TOKEN + "\n")
    with running_federation(tmp_path / "instance", key_folder, f"sqlite:///{tmp_path / 'b.db'}",
                            extra_config=f'metrics_token_file = "{token_file}"\n') as federation:
        refused = requests.get(federation.url + "/metrics", timeout=10)
        wrong = requests.get(federation.url + "/metrics", headers={"Authorization": "Bearer nope"}, timeout=10)
        samples = scrape(federation.url, Authorization=f"Bearer {TOKEN}")

    assert (refused.status_code, wrong.status_code) == (401, 401)
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert "broker_logins" not in refused.text
    assert label_values(samples, "broker_http_requests_total", "endpoint")


def test_multiprocess_mode_reads_the_shared_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    registry = metrics._collected()
    assert registry is not REGISTRY  # the process-wide default registry
    assert list(registry.collect()) == []  # no worker wrote anything into the empty folder yet


def test_the_outbox_gauges_count_messages_by_state_when_scraped(federation: Federation) -> None:
    """Two messages queued ten minutes ago, one held: the scrape reads the outbox (the real ``SqlOutbox``)."""
    from broker.core.outbox import OutgoingMessage

    outbox = federation.app.extensions["broker"].outbox
    queued_at = datetime.now(UTC) - timedelta(minutes=10)
    for jti, held in (("one", False), ("two", False), ("three", True)):
        assert outbox.enqueue(OutgoingMessage("app", jti, "ssf-event", "https://127.0.0.1/x", "t", "text/plain"),
                              queued_at, held=held)

    samples = scrape(federation.url)

    assert value(samples, "broker_outbox_messages", state="pending") == 2
    assert value(samples, "broker_outbox_messages", state="held") == 1
    assert value(samples, "broker_outbox_messages", state="dead") == 0
    assert 599 <= value(samples, "broker_outbox_oldest_pending_seconds") <= 700
