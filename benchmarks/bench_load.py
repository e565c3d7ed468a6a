"""Load Enterprise 18.1 from file into an empty Neo4j; compare with mitreattack-python.

Each run is a fresh loader process (wall time from process start to commit, and its peak RSS),
into an emptied database on a running server. The first run after the server starts is reported
on its own (cold Cypher caches); the median is over the runs after it. In the same run,
mitreattack-python's ``MitreAttackData`` loads the same file, also in fresh processes.

    python -m benchmarks.bench_load [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from queries.graph import Graph

from .common import ENTERPRISE, bench_server, described, summary

LOADER = """
import json, resource, sys, time
t0 = time.perf_counter()
from loader.load import load_file
from queries.graph import Graph
from queries.settings import Settings
g = Graph.connect(Settings(neo4j_uri=sys.argv[1], neo4j_password=sys.argv[2]))
res = load_file(g, sys.argv[3])
g.close()
print(json.dumps({"seconds": time.perf_counter() - t0, "load": res.seconds,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

MITRE = """
import json, resource, sys, time
t0 = time.perf_counter()
from mitreattack.stix20 import MitreAttackData
t1 = time.perf_counter()
MitreAttackData(sys.argv[1])
print(json.dumps({"seconds": time.perf_counter() - t0, "load": time.perf_counter() - t1,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_py(code: str, *args: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=described(__doc__))
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    with bench_server() as settings:
        graph = Graph.connect(settings)
        ours = []
        for _ in range(args.runs + 1):
            graph.write("MATCH (n) DETACH DELETE n")
            time.sleep(0.5)
            ours.append(
                run_py(LOADER, settings.neo4j_uri, settings.neo4j_password, str(ENTERPRISE))
            )
        graph.close()
    theirs = [run_py(MITRE, str(ENTERPRISE)) for _ in range(args.runs)]
    cold, warm = ours[0], ours[1:]
    rows = [
        ("ttpgraph -> Neo4j, cold server (1 run)", [cold["seconds"]], [cold["load"]],
         [cold["rss_mb"]]),
        ("ttpgraph -> Neo4j, warm server", [r["seconds"] for r in warm],
         [r["load"] for r in warm], [r["rss_mb"] for r in warm]),
        ("mitreattack-python MitreAttackData", [r["seconds"] for r in theirs],
         [r["load"] for r in theirs], [r["rss_mb"] for r in theirs]),
    ]  # fmt: skip
    print(f"Enterprise ATT&CK 18.1 ({ENTERPRISE.stat().st_size / 1e6:.1f} MB), runs={args.runs}")
    print(f"{'':40} {'process s':>10} {'load s':>8} {'peak RSS MB':>12}")
    for name, total, load, rss in rows:
        print(
            f"{name:40} {summary(total)['median']:>10.2f} {summary(load)['median']:>8.2f} "
            f"{summary(rss)['median']:>12.0f}"
        )
    print("(median; 'process' = interpreter start to commit, 'load' = after imports)")


if __name__ == "__main__":
    main()
