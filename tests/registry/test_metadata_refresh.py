"""IdpDirectory: federation feeds over a local HTTP server (127.0.0.1 only), refresh, expiry, several processes."""

from __future__ import annotations

import hashlib
import multiprocessing
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from broker.registry.metadata_refresh import IdpDirectory
from tests.registry.aggregate import entity_id, make_aggregate, session_material

#: the tests' "now": the real time (whole minutes), so that worker processes reading the real clock agree with it
START = datetime.now(UTC).replace(second=0, microsecond=0)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


class Feed(ThreadingHTTPServer):
    """Serves ``document`` at /md.xml with an ETag; answers 304 to a matching If-None-Match."""

    document = b""
    status = 200
    redirect: str | None = None
    log: list[int]


class _Handler(BaseHTTPRequestHandler):
    server: Feed

    def do_GET(self) -> None:
        feed = self.server
        etag = '"' + hashlib.sha256(feed.document).hexdigest()[:16] + '"'
        if feed.redirect:
            code, headers, body = 302, {"Location": feed.redirect}, b""
        elif feed.status != 200:
            code, headers, body = feed.status, {}, b"broken"
        elif self.headers.get("If-None-Match") == etag:
            code, headers, body = 304, {"ETag": etag}, b""
        else:
            code, headers, body = 200, {"ETag": etag, "Content-Type": "application/samlmetadata+xml"}, feed.document
        feed.log.append(code)
        self.send_response(code)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def feed() -> Iterator[Feed]:
    server = Feed(("127.0.0.1", 0), _Handler)
    server.log = []
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _doc(count: int = 4, *, valid: timedelta = timedelta(days=2), key: str = "federation", **kw: Any) -> bytes:
    m = session_material()
    return make_aggregate(count, getattr(m, key), m.certs, valid_until=START + valid, **kw)


def _instance(tmp_path: Path, url: str | None, *, cert: bool = True, extra: str = "") -> tuple[Path, Path, Path]:
    metadata = tmp_path / "metadata"
    (metadata / "federations").mkdir(parents=True)
    (metadata / "saml-idp").mkdir()
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "fed.pem").write_bytes(session_material().federation.cert_pem)
    if url is not None:
        lines = [f'url = "{url}"', *(['signing_cert_file = "certs/fed.pem"'] if cert else []), extra]
        (metadata / "federations" / "fed.toml").write_text("\n".join(lines) + "\n")
    return metadata, tmp_path, tmp_path / "cache"


def _url(feed: Feed) -> str:
    return f"http://127.0.0.1:{feed.server_address[1]}/md.xml"


def _open(tmp_path: Path, feed: Feed, clock: Clock, **kw: Any) -> IdpDirectory:
    metadata, instance, cache = _instance(tmp_path, _url(feed), **kw)
    return IdpDirectory(metadata, instance, cache, clock=clock, start_refresher=False)


def test_loads_a_signed_feed_and_uses_conditional_get(tmp_path: Path, feed: Feed) -> None:
    feed.document = _doc(names={1: ("Ville de Genève", "Ville de Genève")})
    directory = _open(tmp_path, feed, Clock())
    assert len(directory) == 4 and directory.get(entity_id(2)) is not None
    assert [e.entity_id for e in directory.search("GENEVE")] == [entity_id(1)]
    (status,) = directory.status()
    assert (status.name, status.entities, status.generation, status.last_error) == ("federation/fed", 4, 1, None)
    assert status.valid_until == START + timedelta(days=2) and status.next_refresh == START + timedelta(hours=1)
    directory.refresh_now()
    assert feed.log == [200, 304] and directory.status()[0].generation == 1
    # A second directory on the same cache folder (a restarted worker) uses the fresh cache: no request.
    again = IdpDirectory(tmp_path / "metadata", tmp_path, tmp_path / "cache", clock=Clock(), start_refresher=False)
    assert len(again) == 4 and feed.log == [200, 304]


@pytest.mark.parametrize(("bad", "error"), [
    ({"tamper": True}, "invalid"),
    ({"key": "other"}, "invalid"),
    ({"key": "other", "sha1": True}, "SHA-1"),
    ({"valid": timedelta(seconds=-1)}, "expired"),
])
def test_a_bad_refresh_keeps_the_last_good_copy(tmp_path: Path, feed: Feed, bad: dict[str, Any], error: str) -> None:
    feed.document = _doc()
    directory = _open(tmp_path, feed, Clock())
    before = directory.get(entity_id(0))
    feed.document = _doc(6, **bad)
    directory.refresh_now()
    assert len(directory) == 4 and directory.get(entity_id(0)) == before and directory.get(entity_id(5)) is None
    (status,) = directory.status()
    assert status.generation == 1 and status.last_error is not None and error in status.last_error
    assert any(error in line for line in directory.problems())
    feed.document = _doc(6)
    directory.refresh_now()
    assert len(directory) == 6 and directory.status()[0].last_error is None


@pytest.mark.parametrize(("bad", "error"), [
    ({"key": "other"}, "invalid"),  # signed by a key other than the pinned one
    ({"key": "none"}, "not signed"),  # an unsigned aggregate from a URL
    ({"valid": timedelta(seconds=-1)}, "expired"),
])
def test_an_untrusted_feed_never_loads(tmp_path: Path, feed: Feed, bad: dict[str, Any], error: str) -> None:
    feed.document = _doc(**bad) if bad.get("key") != "none" else make_aggregate(
        3, None, session_material().certs, valid_until=START + timedelta(days=1))
    directory = _open(tmp_path, feed, Clock())
    assert len(directory) == 0 and directory.get(entity_id(0)) is None and directory.search("university") == []
    assert any(error in line for line in directory.problems())


def test_fetch_failure_keeps_the_last_good_copy(tmp_path: Path, feed: Feed) -> None:
    feed.document = _doc()
    directory = _open(tmp_path, feed, Clock())
    feed.status = 500
    directory.refresh_now()
    assert len(directory) == 4 and "HTTP 500" in (directory.status()[0].last_error or "")


def test_an_expiring_last_good_copy_drops_the_entities(tmp_path: Path, feed: Feed) -> None:
    clock = Clock()
    feed.document = _doc(valid=timedelta(hours=3))
    directory = _open(tmp_path, feed, clock)
    feed.status = 503  # the federation is down: no newer copy arrives
    clock.now = START + timedelta(hours=2)
    directory.refresh_now()
    assert len(directory) == 4 and directory.get(entity_id(1)) is not None
    clock.now = START + timedelta(hours=3)
    assert directory.get(entity_id(1)) is None and len(directory) == 0 and directory.search("university") == []
    (status,) = directory.status()
    assert status.expired and status.entities == 0
    assert any("expired" in line for line in directory.problems())


def test_requests_during_a_swap_always_find_the_entity(tmp_path: Path, feed: Feed) -> None:
    feed.document = _doc(300)
    directory = _open(tmp_path, feed, Clock())
    misses: list[int] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            if directory.get(entity_id(123)) is None:
                misses.append(1)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for count in (301, 302, 303):
            feed.document = _doc(count)
            directory.refresh_now()
            assert len(directory) == count
    finally:
        stop.set()
        thread.join()
    assert misses == [] and directory.status()[0].generation == 4


def _worker(metadata: Path, cache: Path, barrier: Any, results: Any) -> None:
    directory = IdpDirectory(metadata, metadata.parent, cache, start_refresher=False)
    first = directory.status()[0].generation
    barrier.wait()  # the parent changes the feed
    barrier.wait()
    directory.refresh_now()
    results.put((first, directory.status()[0].generation, len(directory)))


def test_two_processes_share_one_cache_and_fetch_once_per_round(tmp_path: Path, feed: Feed) -> None:
    feed.document = _doc(5)
    metadata, _, cache = _instance(tmp_path, _url(feed))
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(3), ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(metadata, cache, barrier, results)) for _ in range(2)]
    for worker in workers:
        worker.start()
    barrier.wait(timeout=60)
    feed.document = _doc(7)
    barrier.wait(timeout=60)
    outcome = sorted(results.get(timeout=60) for _ in workers)
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    assert outcome == [(1, 2, 7), (1, 2, 7)]
    assert feed.log.count(200) == 2  # one full download per round; the second process took the other's result


@pytest.mark.parametrize(("url", "ok"), [
    ("http://127.0.0.1:9/md.xml", True), ("http://localhost:9/md.xml", True), ("http://[::1]:9/md.xml", True),
    ("http://mds.example.org/md.xml", False), ("http://10.0.0.1/md.xml", False), ("ftp://mds.example.org/md", False),
    ("https://user:pw@mds.example.org/md.xml", False),
])
def test_https_is_required_except_for_loopback(tmp_path: Path, url: str, ok: bool) -> None:
    metadata, instance, cache = _instance(tmp_path, url)
    directory = IdpDirectory(metadata, instance, cache, clock=Clock(), start_refresher=False)
    config_problems = [p for p in directory.problems() if p.startswith("federations/fed.toml: url")]
    assert bool(config_problems) is not ok
    assert [s.name for s in directory.status()] == (["federation/fed"] if ok else [])


@pytest.mark.parametrize(("extra", "cert", "message"), [
    ("", False, "federations/fed.toml: signing_cert_file is required"),
    ("refresh_interval = 5", True, "federations/fed.toml: refresh_interval must be"),
    ("colour = 'red'", True, "federations/fed.toml: unknown settings ['colour']"),
])
def test_config_errors_name_the_file_and_setting(tmp_path: Path, extra: str, cert: bool, message: str) -> None:
    metadata, instance, cache = _instance(tmp_path, "https://mds.example.org/md.xml", cert=cert, extra=extra)
    directory = IdpDirectory(metadata, instance, cache, clock=Clock(), start_refresher=False)
    assert any(p.startswith(message) for p in directory.problems()) and directory.status() == ()


def test_a_redirect_to_another_host_is_refused(tmp_path: Path, feed: Feed) -> None:
    feed.redirect = f"http://localhost:{feed.server_address[1]}/md.xml"
    directory = _open(tmp_path, feed, Clock())
    assert len(directory) == 0 and "redirects to another host" in (directory.status()[0].last_error or "")


def test_operator_files_with_and_without_a_pinned_certificate(tmp_path: Path) -> None:
    metadata, instance, cache = _instance(tmp_path, None)
    folder = metadata / "saml-idp"
    m = session_material()
    (folder / "pinned.xml").write_bytes(_doc(2))
    (folder / "pinned.pem").write_bytes(m.federation.cert_pem)
    (folder / "forged.xml").write_bytes(_doc(3, key="other"))
    (folder / "forged.pem").write_bytes(m.federation.cert_pem)
    (folder / "plain.xml").write_bytes(make_aggregate(4, None, m.certs, valid_until=START + timedelta(days=1),
                                                      names={3: ("Plain IdP", "Plain IdP")}))
    (folder / "plain-pinned.xml").write_bytes(make_aggregate(1, None, m.certs))
    (folder / "plain-pinned.pem").write_bytes(m.federation.cert_pem)
    directory = IdpDirectory(metadata, instance, cache, clock=Clock(), start_refresher=False)
    counts = {s.name: s.entities for s in directory.status()}
    assert counts == {"saml-idp/forged": 0, "saml-idp/pinned": 2, "saml-idp/plain": 4, "saml-idp/plain-pinned": 0}
    sources = {i: getattr(directory.get(entity_id(i)), "source", None) for i in range(5)}
    # entities 0 and 1 of "pinned" are also in "plain": counted once, taken from the first source by name
    assert sources == {0: "saml-idp/pinned", 1: "saml-idp/pinned", 2: "saml-idp/plain", 3: "saml-idp/plain", 4: None}
    assert len(directory) == 4
    assert any("also come from an earlier source" in p for p in directory.problems())
    names = [e.entity_id for e in directory.names_page(0, 10)]
    assert sorted(names) == [entity_id(i) for i in range(4)] and len(set(names)) == 4
    assert [e.entity_id for e in directory.names_page(1, 2)] == names[1:3]
    hits = directory.search("université exemple")
    assert [(e.entity_id, e.source) for e in hits] == [(entity_id(i), "saml-idp/pinned" if i < 2 else "saml-idp/plain")
                                                      for i in range(3)]
    (folder / "plain.xml").write_bytes(make_aggregate(1, None, m.certs))
    directory.refresh_now()  # the changed file is read again
    assert {s.name: s.entities for s in directory.status()}["saml-idp/plain"] == 1


def test_the_background_refresher_fetches_when_due_and_stops(tmp_path: Path, feed: Feed) -> None:
    clock = Clock()
    feed.document = _doc(2)
    metadata, instance, cache = _instance(tmp_path, _url(feed))
    directory = IdpDirectory(metadata, instance, cache, clock=clock, poll_interval=0.02)
    try:
        feed.document = _doc(3)
        clock.now = START + timedelta(hours=1, seconds=1)  # refresh_interval (3600 s) has passed
        for _ in range(500):
            if len(directory) == 3:
                break
            threading.Event().wait(0.01)
        assert len(directory) == 3 and directory.status()[0].generation == 2
    finally:
        directory.close()
    assert directory._thread is not None and not directory._thread.is_alive()


def test_building_in_a_spawned_child_gives_the_same_result_and_errors(tmp_path: Path, feed: Feed) -> None:
    feed.document = _doc(3)
    metadata, instance, cache = _instance(tmp_path, _url(feed))
    directory = IdpDirectory(metadata, instance, cache, clock=Clock(), start_refresher=False, build_in_child=True)
    assert len(directory) == 3 and directory.get(entity_id(2)) is not None
    feed.document = _doc(5, tamper=True)
    directory.refresh_now()
    assert len(directory) == 3 and "invalid" in (directory.status()[0].last_error or "")
    assert not list(cache.glob("*.download"))  # the fetched document is not kept


def test_a_new_pinned_certificate_does_not_vouch_for_the_old_copy(tmp_path: Path, feed: Feed) -> None:
    feed.document = _doc(3)
    directory = _open(tmp_path, feed, Clock())
    assert len(directory) == 3
    (tmp_path / "certs" / "fed.pem").write_bytes(session_material().other.cert_pem)  # the operator re-pins
    directory.refresh_now()
    (status,) = directory.status()
    assert len(directory) == 0 and directory.get(entity_id(0)) is None and status.generation == 2
    assert feed.log == [200, 200]  # no conditional GET: the cached copy was verified with the old pin
    assert "invalid" in (status.last_error or "")
    (tmp_path / "certs" / "fed.pem").write_bytes(session_material().federation.cert_pem)
    directory.refresh_now()
    assert len(directory) == 3 and directory.status()[0].generation == 3


def _report_thread(directory: IdpDirectory, results: Any) -> None:
    thread = directory._thread
    results.put((thread is not None and thread.is_alive(), thread.native_id if thread else None, len(directory)))


def test_a_forked_child_gets_its_own_refresher(tmp_path: Path, feed: Feed) -> None:
    feed.document = _doc(2)
    metadata, instance, cache = _instance(tmp_path, _url(feed))
    directory = IdpDirectory(metadata, instance, cache, clock=Clock(), poll_interval=0.05)
    try:
        ctx = multiprocessing.get_context("fork")
        results = ctx.Queue()
        child = ctx.Process(target=_report_thread, args=(directory, results))
        child.start()
        alive, ident, size = results.get(timeout=60)
        child.join(timeout=60)
        assert directory._thread is not None
        assert alive and ident != directory._thread.native_id and size == 2 and child.exitcode == 0
    finally:
        directory.close()


def test_a_file_dropped_in_later_is_taken_up_and_a_removed_one_leaves(tmp_path: Path) -> None:
    metadata, instance, cache = _instance(tmp_path, None)
    folder = metadata / "saml-idp"
    directory = IdpDirectory(metadata, instance, cache, clock=Clock(), start_refresher=False)
    assert len(directory) == 0 and directory.get(entity_id(1)) is None

    (folder / "later.xml").write_bytes(make_aggregate(3, None, session_material().certs))
    directory.rescan()

    assert len(directory) == 3 and directory.get(entity_id(1)) is not None
    (folder / "later.xml").unlink()
    directory.rescan()
    assert len(directory) == 0 and directory.get(entity_id(1)) is None
