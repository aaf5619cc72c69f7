"""IdP metadata at federation scale: the broker's loader and index against pysaml2's loader.

Run from the repository root: ``python bench/metadata_bench.py [--entities 10000] [--workers 4]``.
Generates a signed aggregate (every entity with signing and encryption certificates, SSO/SLO endpoints, mdui)
into a temporary folder, then measures each step in a FRESH Python subprocess so resident-memory figures are
not polluted by earlier steps (VmRSS/VmHWM from /proc/self/status, PSS from /proc/<pid>/smaps_rollup):

1. the broker's loader: parse + verify the signature against the pinned certificate + compile the index
   (a cold ``IdpDirectory``), wall time, peak and settled extra RSS;
2. pysaml2's ``MetaDataFile`` on the same file (parse only: no signature check, which flatters pysaml2);
3. ``IdpDirectory.get`` over every entityID, microseconds per call;
4. N forked "gunicorn workers" opening the directory from the shared cache: RSS and PSS per worker;
5. search latency;
6. lookup latency while a refresh runs in a thread or in a spawned child process.

Every subprocess has a timeout; the whole run takes well under a minute for 10,000 entities.
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

warnings.filterwarnings("ignore", module="saml2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _status(field: str, pid: str = "self") -> int:
    """A /proc/<pid>/status field in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _pss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def _index_pages(pid: int) -> tuple[int, int]:
    """(Rss, Shared_Clean) in KiB of the process's mappings of compiled index files."""
    rss = shared = 0
    current = ""
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        if "-" in line.split(" ", 1)[0] and not line.endswith(":"):
            current = line
        elif current.endswith(".idx") and line.startswith(("Rss:", "Shared_Clean:")):
            value = int(line.split()[1])
            rss, shared = (rss + value, shared) if line.startswith("Rss:") else (rss, shared + value)
    return rss, shared


def _directory(instance: Path, cache: Path, child: bool = False) -> Any:
    from broker.registry.metadata_refresh import IdpDirectory
    return IdpDirectory(instance / "metadata", instance, cache, start_refresher=False, build_in_child=child)


def _touch(directory: Any) -> None:
    """Read every record once, a page at a time (as a long-running worker eventually would)."""
    for offset in range(0, len(directory), 200):
        for entity in directory.names_page(offset, 200):
            directory.get(entity.entity_id)


def child_loader(instance: Path, child: bool = False) -> dict[str, Any]:
    import broker.registry.metadata_refresh  # noqa: F401 - imports are not part of the figure
    gc.collect()
    base = _status("VmRSS")
    start = time.perf_counter()
    directory = _directory(instance, Path(tempfile.mkdtemp(dir=instance)), child)
    elapsed = time.perf_counter() - start
    peak = _status("VmHWM")
    gc.collect()
    assert not directory.problems(), directory.problems()
    import resource
    child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux; whole child
    return {"seconds": elapsed, "peak_mb": (peak - base) / 1024, "settled_mb": (_status("VmRSS") - base) / 1024,
            "entities": len(directory), "child_peak_mb": child_peak}


def child_stages(instance: Path) -> dict[str, Any]:
    """The loader's steps one by one: parse, verify, extract + write the index."""
    from broker.registry.idp_index import write_index
    from broker.registry.idp_metadata import iter_idps, parse_document
    from broker.registry.metadata_signature import verify_signature
    times = {}
    t = time.perf_counter()
    root = parse_document(instance / "metadata" / "aggregate.xml")
    times["parse"], t = time.perf_counter() - t, time.perf_counter()
    verify_signature(root, (instance / "federation.pem").read_bytes())
    times["verify"], t = time.perf_counter() - t, time.perf_counter()
    write_index(instance / "stages.idx", iter_idps(root, "bench", []), {})
    times["extract+index"] = time.perf_counter() - t
    return times


def child_pysaml2(instance: Path) -> dict[str, Any]:
    from saml2.attribute_converter import ac_factory
    from saml2.mdstore import MetaDataFile
    attrc = ac_factory()
    gc.collect()
    base = _status("VmRSS")
    start = time.perf_counter()
    md = MetaDataFile(attrc, str(instance / "metadata" / "aggregate.xml"))
    md.load()
    elapsed = time.perf_counter() - start
    peak = _status("VmHWM")
    gc.collect()
    return {"seconds": elapsed, "peak_mb": (peak - base) / 1024, "settled_mb": (_status("VmRSS") - base) / 1024,
            "entities": len(md.items())}


def child_private_copy(instance: Path, cache: Path) -> dict[str, Any]:
    """What a worker costs if it keeps every IdpEntity as Python objects (the design the index avoids)."""
    directory = _directory(instance, cache)
    gc.collect()
    base = _status("VmRSS")
    copy = {e.entity_id: e for e in directory.names_page(0, 10**9)}
    gc.collect()
    return {"private_mb": (_status("VmRSS") - base) / 1024, "entities": len(copy)}


def child_lookup(instance: Path, cache: Path) -> dict[str, Any]:
    import timeit
    directory = _directory(instance, cache)
    ids = [e.entity_id for e in directory.names_page(0, 10**9)]
    seconds = min(timeit.repeat(lambda: [directory.get(i) for i in ids], number=1, repeat=3))
    queries = ["universite 4242", "exemple", "campus777", "idp9999.example.org", "zzz nothing", "geneve"]
    search = {q: min(timeit.repeat(f"directory.search({q!r}, 20)", number=20, repeat=3,
                                   globals={"directory": directory})) / 20 * 1e3 for q in queries}
    return {"get_us": seconds / len(ids) * 1e6, "search_ms": search}


def _worker(instance: Path, cache: Path, ready: Any, stop: Any) -> None:
    import broker.registry.metadata_refresh  # noqa: F401
    gc.collect()
    base, base_pss = _status("VmRSS"), _pss(os.getpid())
    directory = _directory(instance, cache)
    _touch(directory)
    gc.collect()
    ready.put((os.getpid(), (_status("VmRSS") - base) / 1024, base_pss))
    stop.wait(120)
    del directory


def child_workers(instance: Path, cache: Path, count: int) -> dict[str, Any]:
    ctx = multiprocessing.get_context("fork")
    ready, stop = ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=_worker, args=(instance, cache, ready, stop)) for _ in range(count)]
    for proc in procs:
        proc.start()
    pids, extra, base_pss = zip(*(ready.get(timeout=120) for _ in procs), strict=True)
    rss = [_status("VmRSS", str(pid)) / 1024 for pid in pids]
    pss = [_pss(pid) / 1024 for pid in pids]
    pages = [_index_pages(pid) for pid in pids]
    directory_pss = [(_pss(pid) - before) / 1024 for pid, before in zip(pids, base_pss, strict=True)]
    index_mb = sum(p.stat().st_size for p in cache.glob("*.idx")) / 2**20
    stop.set()
    for proc in procs:
        proc.join(60)
    return {"rss_mb": rss, "pss_mb": pss, "extra_mb": extra, "directory_pss_mb": directory_pss, "pages": pages,
            "index_file_mb": index_mb}


def child_latency(instance: Path, cache: Path, mode: str) -> dict[str, Any]:
    """get() latency in the main thread while the index is rebuilt beside it (thread or spawned process)."""
    from broker.registry.metadata_sources import compile_document, load_sources
    directory = _directory(instance, cache)
    (spec,), _ = load_sources(instance / "metadata", instance)
    ids = [e.entity_id for e in directory.names_page(0, 2000)]
    from datetime import UTC, datetime
    args = (spec, Path(spec.location), datetime.now(UTC), cache / "bench-rebuild.idx")
    if mode == "thread":
        runner: Any = threading.Thread(target=compile_document, args=args)
    elif mode == "spawn":
        runner = multiprocessing.get_context("spawn").Process(target=compile_document, args=args)
    else:
        runner = None
    samples: list[float] = []
    if runner is not None:
        runner.start()
    deadline = time.perf_counter() + (30 if runner is not None else 1.0)
    while time.perf_counter() < deadline and (runner is None or runner.is_alive()):
        for entity_id in ids[:200]:
            t = time.perf_counter()
            directory.get(entity_id)
            samples.append(time.perf_counter() - t)
        time.sleep(0.001)  # a request does more than one lookup; leave the other side some room
    if runner is not None:
        runner.join(60)
    samples.sort()
    return {"p50_us": statistics.median(samples) * 1e6, "p99_us": samples[int(len(samples) * 0.99)] * 1e6,
            "max_ms": samples[-1] * 1e3, "samples": len(samples)}


def _run_child(step: str, *args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--child", step, *args], capture_output=True, text=True,
                         timeout=600, check=False)
    if out.returncode:
        raise SystemExit(f"step {step} failed:\n{out.stderr}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def prepare(folder: Path, count: int) -> None:
    from datetime import UTC, datetime, timedelta

    from tests.registry.aggregate import make_aggregate, make_entity_certs, make_federation_key
    key = make_federation_key()
    doc = make_aggregate(count, key, make_entity_certs(3), valid_until=datetime.now(UTC) + timedelta(days=5))
    (folder / "metadata" / "federations").mkdir(parents=True)
    (folder / "metadata" / "aggregate.xml").write_bytes(doc)
    (folder / "federation.pem").write_bytes(key.cert_pem)
    (folder / "metadata" / "federations" / "bench.toml").write_text(
        'file = "metadata/aggregate.xml"\nsigning_cert_file = "federation.pem"\n')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        step, *rest = args.child
        paths = [Path(p) for p in rest[:2]]
        funcs: dict[str, Any] = {"loader": child_loader, "loader-child": lambda i: child_loader(i, True),
                                 "pysaml2": child_pysaml2, "stages": child_stages,
                                 "private": child_private_copy,
                                 "lookup": child_lookup, "workers": lambda i, c: child_workers(i, c, int(rest[2])),
                                 "latency": lambda i, c: child_latency(i, c, rest[2])}
        print(json.dumps(funcs[step](*paths)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t = time.perf_counter()
        prepare(folder, args.entities)
        size = (folder / "metadata" / "aggregate.xml").stat().st_size / 2**20
        print(f"aggregate: {args.entities} entities, {size:.1f} MiB, signed RSA-SHA256 "
              f"(generated in {time.perf_counter() - t:.1f} s)\n")
        cache = folder / "cache"
        _directory_warm = _run_child("loader", str(folder))  # cold build; the cache below is built once more
        subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(ROOT)!r}); "
                        "from bench.metadata_bench import _directory; from pathlib import Path; "
                        f"_directory(Path({str(folder)!r}), Path({str(cache)!r}))"], check=True, timeout=300)
        ours, theirs = _directory_warm, _run_child("pysaml2", str(folder))
        isolated = _run_child("loader-child", str(folder))
        stages = _run_child("stages", str(folder))
        private = _run_child("private", str(folder), str(cache))
        lookup = _run_child("lookup", str(folder), str(cache))
        workers = _run_child("workers", str(folder), str(cache), str(args.workers))
        latency = {mode: _run_child("latency", str(folder), str(cache), mode) for mode in ("idle", "thread", "spawn")}
    row = "{:<44} {:>10} {:>14} {:>16}"
    print(row.format("load (fresh process each)", "seconds", "peak +RSS MB", "settled +RSS MB"))
    print(row.format("broker: parse + verify signature + index", f"{ours['seconds']:.2f}", f"{ours['peak_mb']:.0f}",
                     f"{ours['settled_mb']:.1f}"))
    print(row.format("broker, built in a spawned child (parent)", f"{isolated['seconds']:.2f}",
                     f"{isolated['peak_mb']:.0f}", f"{isolated['settled_mb']:.1f}"))
    print(f"  (the spawned child's own peak RSS, interpreter included: {isolated['child_peak_mb']:.0f} MB)")
    print(row.format("pysaml2 MetaDataFile.load (no signature)", f"{theirs['seconds']:.2f}",
                     f"{theirs['peak_mb']:.0f}", f"{theirs['settled_mb']:.1f}"))
    print("broker steps (s): " + ", ".join(f"{k} {v:.2f}" for k, v in stages.items()))
    print(f"\nentities loaded: broker {ours['entities']}, pysaml2 {theirs['entities']}")
    print(f"lookup: IdpDirectory.get {lookup['get_us']:.2f} µs per call (all entityIDs)")
    print("search (20 results max): " + ", ".join(f"{q!r} {ms:.2f} ms" for q, ms in lookup["search_ms"].items()))
    n = args.workers
    print(f"\n{n} forked workers on one cache folder (compiled index {workers['index_file_mb']:.1f} MiB, mmap):")
    print("  RSS per worker MB: " + ", ".join(f"{v:.1f}" for v in workers["rss_mb"]))
    print("  extra RSS for the directory per worker MB (after its imports): "
          + ", ".join(f"{v:.1f}" for v in workers["extra_mb"]))
    print("  PSS per worker MB: " + ", ".join(f"{v:.1f}" for v in workers["pss_mb"])
          + f"  (total {sum(workers['pss_mb']):.1f}, interpreter and libraries included)")
    print("  index file pages mapped per worker (RSS / of which Shared_Clean) MB: "
          + ", ".join(f"{r / 1024:.1f} / {sh / 1024:.1f}" for r, sh in workers["pages"]))
    print("  PSS of the directory alone per worker MB (incl. copy-on-write noise of the fork): "
          + ", ".join(f"{v:.1f}" for v in workers["directory_pss_mb"])
          + f"  (total {sum(workers['directory_pss_mb']):.1f})")
    print(f"  versus a private copy per worker: all IdpEntity objects in a dict = {private['private_mb']:.1f} MB "
          f"each, x{n} = {private['private_mb'] * n:.0f} MB; pysaml2 settled x{n} = {theirs['settled_mb'] * n:.0f} MB")
    print("\nget() latency while the index is rebuilt beside the request thread:")
    for mode, figures in latency.items():
        print(f"  {mode:<7} p50 {figures['p50_us']:.1f} µs  p99 {figures['p99_us']:.1f} µs  "
              f"max {figures['max_ms']:.2f} ms  ({figures['samples']} lookups)")


if __name__ == "__main__":
    main()
