"""Inventories at enterprise scale: the growth table (import seconds, the loader's peak RSS,
gap-analysis latency uncached and cached) for synthetic CSV inventories of 1k to 1M rules,
generated here (seeded, 1-3 real Enterprise technique ids a rule: ``benchmarks.synthetic``).

    python -m benchmarks.bench_scale [--sizes 1k,10k,100k,1M] [--runs 20] [--heap 3g]

One self-contained command: a throw-away Neo4j (heap 3 GB, page cache 2 GB, the default
transaction memory limit of 1 GB), Enterprise 18.1 loaded, then each inventory imported by a
fresh loader process (its peak RSS from ``getrusage``) and kept, so the later ones are imported
and asked beside the earlier ones. Per size:

- import: seconds until the new inventory answers, the loader's peak RSS; a re-import of the
  same file (rules unchanged), and the seconds it then takes to remove the previous import;
- the inventory's part of a gap analysis (``coverage_rules_for_techniques`` for the 5 actors'
  techniques) from the stored coverage, and the same query forced onto its fallback (computing
  from the COVERS edges, as every question did before stored coverage: the peer);
- the whole 5-actor gap analysis uncached (answer cache off) and cached (first call after the
  import, then warm), with a trivial Bolt round trip as the floor;
- at the end: the smallest inventory's query time now that the others are there (db hits of
  its PROFILE too), and an Enterprise re-load with all of them present against one with none.

Every figure is printed with the machine's load average (1 minute) at that moment.
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

from loader.load import load_file
from queries import coverage as C
from queries.catalog import Q
from queries.errors import TtpgraphError
from queries.graph import Graph
from queries.kinds import path_kinds
from queries.settings import Settings

from .common import ENTERPRISE, bench_server, described
from .synthetic import size, write_inventory_csv

ACTORS = ["APT29", "APT28", "FIN7", "Lazarus Group", "Wizard Spider"]

IMPORTER = """
import json, sys, time
from queries.graph import Graph
from queries.settings import Settings
from loader.inventory.importer import import_inventory
g = Graph.connect(Settings(neo4j_uri=sys.argv[1], neo4j_password=sys.argv[2]))
t0 = time.perf_counter()
r = import_inventory(g, "csv", sys.argv[3], name=sys.argv[4])
out = {"seconds": time.perf_counter() - t0, "timings": r.timings,
       # VmHWM: this process's peak (ru_maxrss would count the parent's pages until exec)
       "rss_mb": [int(x.split()[1]) / 1024 for x in open("/proc/self/status")
                  if x.startswith("VmHWM")][0],
       "rules": r.summary["rules"], "edges": r.summary["covers_edges"],
       "unchanged": r.summary["rules_unchanged"]}
print(json.dumps(out))
"""


def load1() -> float:
    return os.getloadavg()[0]


def timed(fn: Callable[[], Any], runs: int, warmup: int = 10) -> float:
    """Median milliseconds."""
    for _ in range(warmup):
        fn()
    values = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        values.append((time.perf_counter() - t0) * 1000)
    return statistics.median(values)


def import_in_child(settings: Settings, path: Path, name: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", IMPORTER, settings.neo4j_uri, settings.neo4j_password,
         str(path), name],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode:
        raise SystemExit(f"import of {path} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def threat_model_ids(graph: Graph) -> list[str]:
    groups = [r.group_id for r in C.resolve_actors(graph, ACTORS)]
    rows = graph.read(
        Q.coverage_threat_model, group_ids=groups, kinds=path_kinds(False), domain=None,
        platforms=[],
    )  # fmt: skip
    return [r["technique_id"] for r in rows]


def db_hits(graph: Graph, inventory: str, ids: list[str]) -> int:
    with graph.driver.session(database=graph.database) as s:
        summary = s.run(
            "PROFILE " + Q.coverage_rules_for_techniques, inventory=inventory, technique_ids=ids
        ).consume()

    def walk(plan: Any) -> int:
        return int(plan.get("dbHits", 0)) + sum(walk(c) for c in plan.get("children", []))

    return walk(summary.profile) if summary.profile else 0


def fallback_ms(graph: Graph, inventory: str, ids: list[str], runs: int) -> float | str:
    """The same query computed from the COVERS edges (the stored coverage made invalid for
    the measurement, then restored); the error's name when Neo4j refuses it."""
    basis = graph.read("MATCH (i:Inventory {name: $n}) RETURN i.coverage_basis AS b", n=inventory)[
        0
    ]["b"]
    graph.write("MATCH (i:Inventory {name: $n}) SET i.coverage_basis = []", n=inventory)
    try:
        return timed(
            lambda: graph.read(
                Q.coverage_rules_for_techniques, inventory=inventory, technique_ids=ids
            ),
            runs,
            warmup=1,
        )
    except TtpgraphError as exc:
        return (
            "fails: "
            + exc.__class__.__name__
            + (" (transaction memory limit)" if "MemoryPool" in exc.detail else "")
        )
    finally:
        graph.write(
            "MATCH (i:Inventory {name: $n}) SET i.coverage_basis = $b", n=inventory, b=basis
        )


def _ms(value: float | str) -> str:
    return value if isinstance(value, str) else f"{value:,.0f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=described(__doc__))
    ap.add_argument("--sizes", default="1k,10k,100k,1M")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--heap", default="3g")
    ap.add_argument("--pagecache", default="2g")
    ap.add_argument("--seed", type=int, default=14)
    args = ap.parse_args()
    sizes = [size(s) for s in args.sizes.split(",")]
    rows: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix="ttpgraph-scale-") as tmp,
        bench_server(heap=args.heap, pagecache=args.pagecache) as settings,
    ):
        graph = Graph.connect(settings)
        load_file(graph, str(ENTERPRISE))  # the first load after a start pays the JIT warm-up
        t0 = time.perf_counter()
        load_file(graph, str(ENTERPRISE))
        first_load = (time.perf_counter() - t0, load1())
        ids = threat_model_ids(graph)
        rtt = timed(lambda: graph.read("RETURN 1 AS x"), args.runs)
        names = []
        for n in sizes:
            path = write_inventory_csv(Path(tmp) / f"rules-{n}.csv", n, seed=args.seed)
            name = f"synthetic-{n}"
            names.append(name)
            imp = import_in_child(settings, path, name)
            imp_load = load1()
            again = import_in_child(settings, path, name)
            row: dict[str, Any] = {
                "rules": n,
                "import_s": imp["seconds"],
                "import_load": imp_load,
                "rss_mb": imp["rss_mb"],
                "edges": imp["edges"],
                "reimport_s": again["seconds"] - again["timings"].get("remove_previous", 0.0),
                "remove_previous_s": again["timings"].get("remove_previous", 0.0),
                "reimport_rss_mb": again["rss_mb"],
                "unchanged": again["unchanged"],
            }

            def part(name: str = name) -> None:
                graph.read(Q.coverage_rules_for_techniques, inventory=name, technique_ids=ids)

            def gaps(name: str = name) -> None:
                C.gap_analysis(graph, actors=ACTORS, inventory=name)

            row["part_ms"] = timed(part, args.runs)
            if len(names) == 1:
                hits_alone = db_hits(graph, name, ids)
            row["fallback_ms"] = fallback_ms(graph, name, ids, max(3, args.runs // 5))
            graph.cache.enabled = False
            row["uncached_ms"] = timed(gaps, args.runs)
            graph.cache.enabled = True
            graph.cache.clear()
            t = time.perf_counter()
            gaps()
            row["first_cached_ms"] = (time.perf_counter() - t) * 1000
            row["cached_ms"] = timed(gaps, args.runs)
            row["query_load"] = load1()
            rows.append(row)
            print(json.dumps(row), flush=True)
        smallest = names[0]
        hits_now = db_hits(graph, smallest, ids)

        def small() -> None:
            graph.read(Q.coverage_rules_for_techniques, inventory=smallest, technique_ids=ids)

        small_now = timed(small, args.runs)
        t0 = time.perf_counter()
        load_file(graph, str(ENTERPRISE))
        reload = (time.perf_counter() - t0, load1())
        graph.close()

    print(f"\nInventories at scale (seed {args.seed}; Neo4j heap {args.heap}, page cache "
          f"{args.pagecache}; {len(ids)} techniques in the 5-actor threat model; "
          f"trivial Bolt round trip (floor) {rtt:.1f} ms)")  # fmt: skip
    head = ("| rules | COVERS edges | import s | loader peak RSS MB | re-import s (+ removing the "
            "previous s) | inventory's part ms (from COVERS: peer) | gap analysis uncached ms | "
            "first cached ms | cached ms | load avg |")  # fmt: skip
    print(head)
    print("|" + "---:|" * 10)
    for r in rows:
        print(
            f"| {r['rules']:,} | {r['edges']:,} | {r['import_s']:.1f} | {r['rss_mb']:.0f} | "
            f"{r['reimport_s']:.1f} (+{r['remove_previous_s']:.1f}) | "
            f"{r['part_ms']:.1f} ({_ms(r['fallback_ms'])}) | {r['uncached_ms']:.1f} | "
            f"{r['first_cached_ms']:.1f} | {r['cached_ms']:.2f} | "
            f"{r['import_load']:.1f} / {r['query_load']:.1f} |"
        )
    print(f"\n{smallest}: its part of the gap analysis {rows[0]['part_ms']:.1f} ms alone, "
          f"{small_now:.1f} ms beside {sum(sizes) - sizes[0]:,} other rules "
          f"(x{small_now / rows[0]['part_ms']:.2f}); PROFILE db hits {hits_alone} alone, "
          f"{hits_now} beside them")  # fmt: skip
    print(f"Enterprise re-load: {first_load[0]:.1f} s with no inventory (load avg "
          f"{first_load[1]:.1f}); "
          f"{reload[0]:.1f} s with {sum(sizes):,} rules present (load avg "
          f"{reload[1]:.1f})")  # fmt: skip


if __name__ == "__main__":
    main()
