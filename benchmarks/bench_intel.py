"""The organisation's intelligence at scale: seeded STIX 2.1 bundles of indicators and
observables with sightings (``benchmarks.synthetic.intel_objects``), each imported by a fresh
loader process (seconds, peak RSS) over the previous one (same source: a re-import), then an
IOC lookup, attribution and ``expect`` timed uncached beside what it holds.

    python -m benchmarks.bench_intel [--sizes 1k,10k,100k,1M] [--runs 20]

The import streams the bundle (two passes), writes in batches under a new import id and
switches it in with one small transaction (``loader.intel.store``). The old lookup (a scan of
every ``values`` list) is the IOC lookup's peer; the index seek alone (no paths, no gate) its
floor.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loader.intel import ensure_intel_schema
from loader.load import load_file
from queries import intel as I
from queries.errors import NotFound
from queries.graph import Graph

from .common import ENTERPRISE, bench_server, described, server_cpu_seconds
from .synthetic import size, write_intel_bundle

IMPORTER = """
import json, os, sys, time
from queries.graph import Graph
from queries.settings import Settings
from loader.intel import import_intel_file
g = Graph.connect(Settings(neo4j_uri=sys.argv[1], neo4j_password=sys.argv[2]))
t0 = time.perf_counter()
out = {}
try:
    r = import_intel_file(g, sys.argv[3], source=sys.argv[4])
    out = {"nodes": sum(r.nodes.values()), "relationships": sum(r.relationships.values())}
except Exception as exc:
    out = {"error": exc.__class__.__name__ + ": " + " ".join(str(exc).split())[:160]}
out["seconds"] = time.perf_counter() - t0
out["cpu"] = sum(os.times()[:2])
out["rss_mb"] = [int(x.split()[1]) / 1024 for x in open("/proc/self/status")
                 if x.startswith("VmHWM")][0]
print(json.dumps(out))
"""

OLD_LOOKUP = (
    "MATCH (n:OrgObject) WHERE (n:Indicator OR n:Observable) "
    "AND toLower(trim($value)) IN n.values RETURN n.stix_id AS id LIMIT 50"
)
FLOOR = "MATCH (n:OrgObject {ioc_key: $value}) RETURN n.stix_id AS id LIMIT 50"


def load1() -> float:
    return os.getloadavg()[0]


def timed(fn: Callable[[], Any], runs: int, warmup: int = 5) -> float:
    for _ in range(warmup):
        fn()
    values = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        values.append((time.perf_counter() - t0) * 1000)
    return statistics.median(values)


def main() -> None:
    ap = argparse.ArgumentParser(description=described(__doc__))
    ap.add_argument("--sizes", default="1k,10k,100k,1M")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--heap", default="3g")
    ap.add_argument("--pagecache", default="2g")
    args = ap.parse_args()
    technique_ids = ["T1566.001", "T1059.001", "T1105"]
    value = "host-1.example-1.test"  # an observable of every bundle (IOC 1)
    with (
        tempfile.TemporaryDirectory(prefix="ttpgraph-intel-") as tmp,
        bench_server(heap=args.heap, pagecache=args.pagecache) as settings,
    ):
        graph = Graph.connect(settings)
        load_file(graph, str(ENTERPRISE))
        ensure_intel_schema(graph)

        def lookup() -> None:
            with contextlib.suppress(NotFound):  # before the first import
                I.ioc_lookup(graph, value=value)

        def asks() -> dict[str, float]:
            graph.cache.enabled = False
            out = {
                "ioc": timed(lookup, args.runs),
                "floor": timed(lambda: graph.read(FLOOR, value=value), args.runs),
                "attribution": timed(
                    lambda: I.attribute(graph, techniques=technique_ids), args.runs
                ),
                "expect": timed(
                    lambda: I.expect_next(graph, actor="APT29", techniques=technique_ids),
                    args.runs,
                ),
            }
            graph.cache.enabled = True
            return out

        base = asks()
        print(f"before any import: attribution {base['attribution']:.1f} ms, expect APT29 "
              f"{base['expect']:.1f} ms (load avg {load1():.1f})\n")  # fmt: skip
        print("| IOCs | objects | bundle MB | import s | CPU s: loader, Neo4j | loader peak RSS MB "
              "| IOC lookup ms (floor) | attribution ms | expect ms | load avg |")  # fmt: skip
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for n in (size(x) for x in args.sizes.split(",")):
            path = write_intel_bundle(Path(tmp) / f"intel-{n}.json", n)
            neo4j_cpu = server_cpu_seconds(settings)
            proc = subprocess.run(
                [sys.executable, "-c", IMPORTER, settings.neo4j_uri, settings.neo4j_password,
                 str(path), "synthetic"],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            out = json.loads(proc.stdout.strip().splitlines()[-1])
            neo4j_cpu = server_cpu_seconds(settings) - neo4j_cpu
            mb = path.stat().st_size / 2**20
            path.unlink()
            if "error" in out:
                print(f"| {n:,} | - | {mb:.0f} | {out['seconds']:.1f} | {out['cpu']:.0f}, "
                      f"{neo4j_cpu:.0f} | {out['rss_mb']:.0f} | {out['error']} | | "
                      f"| {load1():.1f} |", flush=True)  # fmt: skip
                continue
            t = asks()
            print(f"| {n:,} | {out['nodes']:,} nodes, {out['relationships']:,} edges | {mb:.0f} "
                  f"| {out['seconds']:.1f} | {out['cpu']:.0f}, {neo4j_cpu:.0f} "
                  f"| {out['rss_mb']:.0f} | {t['ioc']:.1f} "
                  f"({t['floor']:.1f}) | {t['attribution']:.1f} | {t['expect']:.1f} "
                  f"| {load1():.1f} |", flush=True)  # fmt: skip
        old = timed(lambda: graph.read(OLD_LOOKUP, value=value), 3, warmup=1)
        print(f"\nIOC lookup by the old scan of every values list (peer): {old:,.0f} ms "
              f"(load avg {load1():.1f})")  # fmt: skip
        graph.close()


if __name__ == "__main__":
    main()
