"""Import of the whole Sigma corpus, and a gap analysis for 5 actors against it, warm, through
the HTTP API (uvicorn on 127.0.0.1, real HTTP) and in-process; mitreattack-python answering the
same gap question in memory as the peer.

    python -m benchmarks.bench_coverage [--runs 50] [--imports 3]

Targets: import under 5 s, gap analysis under 50 ms (warm median through the API). The server is
a throw-away Neo4j loaded with Enterprise 18.1. Gap analysis figures come in three setups:
everything cached (the API's response cache and the services' answer cache, both keyed on the
graph data version), the answer cache only (response cache off: the service runs, its parts
cached per version), and no cache at all (every query runs).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from loader.inventory import parse_inventory
from loader.inventory.importer import delete_inventory, import_inventory
from loader.load import load_file
from queries import coverage as C
from queries.catalog import Q
from queries.graph import Graph

from .common import ENTERPRISE, REPO, bench_server, described, free_port, summary

CORPORA = Path(os.environ.get("TTPGRAPH_CORPORA_DIR", REPO.parent / "shared" / "corpora"))
SIGMA = CORPORA / "sigma"
CROSSWALK = (
    CORPORA / "elastic" / "detection_rules" / "etc" / "attack-version-maps"
    / "attack_v18_to_v19.yaml"
)  # fmt: skip
ACTORS = ["APT29", "APT28", "FIN7", "Lazarus Group", "Wizard Spider"]


def timed(fn: Callable[[], Any], runs: int, warmup: int = 3) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    values = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        values.append((time.perf_counter() - t0) * 1000)
    return summary(values)


def wait_ready(base: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError("API did not become ready")


def run_api(settings: Any, runs: int, *, response_cache: bool, answer_cache: bool) -> dict:
    port = free_port()
    env = dict(
        os.environ,
        NEO4J_URI=settings.neo4j_uri,
        NEO4J_PASSWORD=settings.neo4j_password,
        NEO4J_USER="neo4j",
        TTPGRAPH_API_AUTH="false",
        TTPGRAPH_RESPONSE_CACHE="true" if response_cache else "false",
        TTPGRAPH_ANSWER_CACHE="1" if answer_cache else "0",
    )
    api = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env=env,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base)
        params = httpx.QueryParams({"actor": ACTORS, "inventory": "sigma"})
        with httpx.Client(base_url=base, timeout=60) as client:

            def gaps() -> None:
                r = client.get("/api/v1/gaps", params=params)
                r.raise_for_status()

            def health() -> None:
                client.get("/health").raise_for_status()

            return {"gap analysis": timed(gaps, runs), "GET /health": timed(health, runs)}
    finally:
        api.terminate()
        api.wait(timeout=30)


def mitre_peer(covered: set[str]) -> Callable[[], Any]:
    """The same question in memory with mitreattack-python: the 5 groups' techniques (direct
    and through attributed campaigns) against a covered set, with per-tactic counts."""
    from mitreattack.stix20 import MitreAttackData

    data = MitreAttackData(str(ENTERPRISE))

    def ask() -> Any:
        tm: dict[str, Any] = {}
        for name in ACTORS:
            g = data.get_groups_by_alias(name) or [
                x for x in data.get_groups(remove_revoked_deprecated=True) if x["name"] == name
            ]
            gid = g[0]["id"]
            for e in data.get_techniques_used_by_group(gid):
                tm[e["object"]["id"]] = e["object"]
            for c in data.get_campaigns_attributed_to_group(gid):
                for e in data.get_techniques_used_by_campaign(c["object"]["id"]):
                    tm[e["object"]["id"]] = e["object"]
        ids = {data.get_attack_id(k): v for k, v in tm.items()}
        per_tactic: dict[str, list[int]] = {}
        for tid, obj in ids.items():
            for p in obj.get("kill_chain_phases", []):
                row = per_tactic.setdefault(p["phase_name"], [0, 0])
                row[0] += 1
                row[1] += tid in covered
        return len(ids), sum(1 for t in ids if t in covered), per_tactic

    return ask


def main() -> None:
    ap = argparse.ArgumentParser(description=described(__doc__))
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--imports", type=int, default=3)
    args = ap.parse_args()
    imports: list[dict[str, float]] = []
    results: dict[str, dict[str, float]] = {}
    with bench_server() as settings:
        graph = Graph.connect(settings)
        load_file(graph, str(ENTERPRISE))
        t0 = time.perf_counter()
        parse_inventory("sigma", SIGMA)
        parse_only = time.perf_counter() - t0
        labels = []
        for i in range(args.imports):
            if i:
                delete_inventory(graph, "sigma")
            r = import_inventory(graph, "sigma", SIGMA, name="sigma", crosswalk=CROSSWALK)
            imports.append({"total": r.seconds, **r.timings})
            labels.append("fresh")
        r = import_inventory(graph, "sigma", SIGMA, name="sigma", crosswalk=CROSSWALK)
        imports.append({"total": r.seconds, **r.timings})
        labels.append("replace")
        s = r.summary
        covered = {
            row["technique_id"]
            for row in graph.read(Q.coverage_inventory_rule_map, inventory="sigma")
            if row["rules"]
        }
        rtt = timed(lambda: graph.read(Q.graph_version), args.runs)

        def service() -> None:
            C.gap_analysis(graph, actors=ACTORS, inventory="sigma")

        graph.cache.enabled = False
        results["service, no cache"] = timed(service, args.runs)
        graph.cache.enabled = True
        results["service, answer cache"] = timed(service, args.runs)
        results["HTTP API, no cache"] = run_api(
            settings, args.runs, response_cache=False, answer_cache=False
        )["gap analysis"]
        results["HTTP API, answer cache"] = run_api(
            settings, args.runs, response_cache=False, answer_cache=True
        )["gap analysis"]
        full = run_api(settings, args.runs, response_cache=True, answer_cache=True)
        results["HTTP API, all caches"] = full["gap analysis"]
        results["HTTP GET /health (floor)"] = full["GET /health"]
        ga = C.gap_analysis(graph, actors=ACTORS, inventory="sigma")
        graph.close()
    peer = mitre_peer(covered)
    results["mitreattack-python (peer)"] = timed(peer, max(5, args.runs // 5), 1)

    print(f"Sigma corpus: {s['rules_read']} rules, {s['mapped']} mapped, {s['unmapped']} unmapped,")
    print(f"  {len(s['ids_remapped'])} ids remapped, {len(s['ids_unknown'])} unknown, "
          f"{s['covers_edges']} COVERS edges; gap analysis: {ga.total} techniques, "
          f"{ga.coverage_pct}% covered")  # fmt: skip
    print(f"\nImport of the whole Sigma corpus, s (parser alone: {parse_only:.2f} s)")
    keys = [k for k in imports[0] if k in ("total", "parse", "index", "resolve", "write",
                                             "write_create", "write_commit")]  # fmt: skip
    print("  run     " + " ".join(f"{k:>13}" for k in keys))
    for label, row in zip(labels, imports, strict=True):
        print(f"  {label:8}" + " ".join(f"{row.get(k, 0.0):>13.2f}" for k in keys))
    fresh = sorted(row["total"] for label, row in zip(labels, imports, strict=True)
                   if label == "fresh")  # fmt: skip
    print(f"  fresh import median: {fresh[len(fresh) // 2]:.2f} s")
    print(f"\nGap analysis, 5 actors vs Sigma, warm latency ms (runs={args.runs})")
    print(f"  Bolt round trip of one trivial query: median {rtt['median']:.1f} ms")
    print(f"  {'':30} {'median':>8} {'p95':>8}")
    for where, st in results.items():
        print(f"  {where:30} {st['median']:>8.1f} {st['p95']:>8.1f}")


if __name__ == "__main__":
    main()
