"""The organisation's intelligence at scale: seeded STIX 2.1 bundles of indicators and
observables with sightings (``benchmarks.synthetic.intel_objects``) imported by a fresh
loader process each (seconds, peak RSS), and an IOC lookup, attribution and ``expect``
timed beside a million IOCs.

    python -m benchmarks.bench_intel [--sizes 1k,10k,100k] [--bulk 1M] [--runs 20]

The importer validates every object with ``stix2`` and writes one transaction, so the bundles
it is given stay below where that stops (printed when it does). The million IOCs for the
lookup are written straight into the graph in batches, as the importer writes indicators
(``OrgObject:Indicator`` with ``values`` and ``ioc_key``), with the old lookup (a scan of the
``values`` lists) as the peer.
"""

from __future__ import annotations

import argparse
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
from queries.graph import Graph

from .common import ENTERPRISE, bench_server
from .synthetic import size, write_intel_bundle

IMPORTER = """
import json, sys, time
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
out["rss_mb"] = [int(x.split()[1]) / 1024 for x in open("/proc/self/status")
                 if x.startswith("VmHWM")][0]
print(json.dumps(out))
"""

OLD_LOOKUP = (
    "MATCH (n:OrgObject) WHERE (n:Indicator OR n:Observable) "
    "AND toLower(trim($value)) IN n.values RETURN n.stix_id AS id LIMIT 50"
)
BULK = (
    "UNWIND range($start, $end - 1) AS i "
    "WITH i, '10.' + toString(i / 65536 % 256) + '.' + toString(i / 256 % 256) + '.' "
    "+ toString(i % 256) AS ip "
    "CREATE (n:OrgObject:Indicator {key: 'bulk|indicator--' + toString(i), "
    "stix_id: 'indicator--' + toString(i), stix_type: 'indicator', name: ip, value: ip, "
    "values: [ip], ioc_key: ip, pattern: '[ipv4-addr:value = \\'' + ip + '\\']', "
    "pattern_type: 'stix', source: 'bulk', org: true, revoked: false, deprecated: false})"
)


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
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1k,10k,100k")
    ap.add_argument("--bulk", default="1M")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--heap", default="3g")
    ap.add_argument("--pagecache", default="2g")
    args = ap.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="ttpgraph-intel-") as tmp,
        bench_server(heap=args.heap, pagecache=args.pagecache) as settings,
    ):
        graph = Graph.connect(settings)
        load_file(graph, str(ENTERPRISE))
        print("| IOCs | bundle MB | import s | loader peak RSS MB | result | load avg |")
        print("|---:|---:|---:|---:|---|---:|")
        for n in (size(x) for x in args.sizes.split(",")):
            path = write_intel_bundle(Path(tmp) / f"intel-{n}.json", n)
            proc = subprocess.run(
                [sys.executable, "-c", IMPORTER, settings.neo4j_uri, settings.neo4j_password,
                 str(path), f"synthetic-{n}"],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            out = json.loads(proc.stdout.strip().splitlines()[-1])
            what = out.get("error") or f"{out['nodes']:,} nodes, {out['relationships']:,} edges"
            print(f"| {n:,} | {path.stat().st_size / 2**20:.0f} | {out['seconds']:.1f} | "
                  f"{out['rss_mb']:.0f} | {what} | {load1():.1f} |", flush=True)  # fmt: skip
        ensure_intel_schema(graph)
        technique_ids = ["T1566.001", "T1059.001", "T1105"]

        def asks() -> dict[str, float]:
            graph.cache.enabled = False
            out = {
                "ioc lookup (service)": timed(
                    lambda: I.ioc_lookup(graph, value="10.0.0.7"), args.runs
                ),
                "attribution": timed(
                    lambda: I.attribute(graph, techniques=technique_ids), args.runs
                ),
                "expect APT29": timed(
                    lambda: I.expect_next(graph, actor="APT29", techniques=technique_ids),
                    args.runs,
                ),
            }
            graph.cache.enabled = True
            return out

        before = asks()
        bulk = size(args.bulk)
        t0 = time.perf_counter()
        for start in range(0, bulk, 20_000):
            graph.write(BULK, start=start, end=min(bulk, start + 20_000))
        written = time.perf_counter() - t0
        after = asks()
        old = timed(lambda: graph.read(OLD_LOOKUP, value="10.0.0.7"), 3, warmup=1)
        print(f"\n{bulk:,} indicators written straight in {written:.0f} s (load avg {load1():.1f})")
        print("| question | ms before | ms beside them | load avg |")
        print("|---|---:|---:|---:|")
        for k in before:
            print(f"| {k} | {before[k]:.1f} | {after[k]:.1f} | {load1():.1f} |")
        print(f"| IOC lookup, the old scan of every values list (peer) | - | {old:,.0f} | "
              f"{load1():.1f} |")  # fmt: skip
        graph.close()


if __name__ == "__main__":
    main()
