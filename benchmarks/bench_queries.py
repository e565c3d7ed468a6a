"""Warm latency of the actor questions: through the services, through the HTTP API, and
mitreattack-python answering the same questions in-process after its load.

    python -m benchmarks.bench_queries [--runs 50]

Questions: profile (APT29), compare (APT29, APT28, Lazarus Group), similar (FIN7, over every
group). The server is a throw-away Neo4j loaded with Enterprise 18.1; the API runs in uvicorn on
127.0.0.1 in a second process and is called over real HTTP.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx

from loader.load import load_file
from queries import actors
from queries.graph import Graph

from .common import ENTERPRISE, bench_server, free_port, summary

COMPARE = ["APT29", "APT28", "Lazarus Group"]


def timed(fn: Callable[[], Any], runs: int, warmup: int = 3) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    values = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        values.append((time.perf_counter() - t0) * 1000)
    return summary(values)


def mitre_questions() -> dict[str, Callable[[], Any]]:
    from mitreattack.stix20 import MitreAttackData

    data = MitreAttackData(str(ENTERPRISE))

    def gid(name: str) -> str:
        return data.get_groups_by_alias(name)[0]["id"]

    def tech_set(group_stix_id: str) -> set[str]:
        return {e["object"]["id"] for e in data.get_techniques_used_by_group(group_stix_id)}

    def profile() -> Any:
        g = gid("APT29")
        direct = data.get_techniques_used_by_group(g)
        software = data.get_techniques_used_by_group_software(g)
        for e in direct:
            data.get_tactics_by_technique(e["object"]["id"])
        return direct, software

    def compare() -> Any:
        sets = [tech_set(gid(n)) for n in COMPARE]
        return set.intersection(*sets), [
            s - set().union(*(o for o in sets if o is not s)) for s in sets
        ]

    def similar() -> Any:
        mine = tech_set(gid("FIN7"))
        out = []
        for g in data.get_groups(remove_revoked_deprecated=True):
            theirs = tech_set(g["id"])
            union = mine | theirs
            out.append((len(mine & theirs) / len(union) if union else 0.0, g["id"]))
        return sorted(out, reverse=True)[:10]

    return {"profile": profile, "compare": compare, "similar": similar}


def wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"API did not start on port {port}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=50)
    args = ap.parse_args()
    results: dict[str, dict[str, dict[str, float]]] = {}
    with bench_server() as settings:
        graph = Graph.connect(settings)
        load_file(graph, str(ENTERPRISE))
        service = {
            "profile": lambda: actors.profile_group(graph, group="APT29"),
            "compare": lambda: actors.compare_groups(graph, groups=COMPARE),
            "similar": lambda: actors.similar_groups(graph, group="FIN7"),
        }
        graph.cache.enabled = False
        results["service, no cache"] = {k: timed(f, args.runs) for k, f in service.items()}
        graph.cache.enabled = True
        results["service, cached"] = {k: timed(f, args.runs) for k, f in service.items()}
        for label, flag in (("HTTP API, no cache", "0"), ("HTTP API, cached", "1")):
            results[label] = run_api(settings, flag, args.runs)
        graph.close()
    mitre = mitre_questions()
    results["mitreattack-python"] = {
        k: timed(f, max(5, args.runs // 5), 1) for k, f in mitre.items()
    }
    print(f"Warm latency, ms (runs={args.runs}; mitreattack-python runs={max(5, args.runs // 5)})")
    print(f"{'':22} {'question':10} {'median':>8} {'p95':>8}")
    for where, qs in results.items():
        for q, s in qs.items():
            print(f"{where:22} {q:10} {s['median']:>8.1f} {s['p95']:>8.1f}")


def run_api(settings: Any, cache_flag: str, runs: int) -> dict[str, dict[str, float]]:
    """Start uvicorn in a second process and time the questions over real HTTP."""
    port = free_port()
    env = dict(
        os.environ,
        NEO4J_URI=settings.neo4j_uri,
        NEO4J_PASSWORD=settings.neo4j_password,
        NEO4J_USER="neo4j",
        TTPGRAPH_ANSWER_CACHE=cache_flag,
        TTPGRAPH_API_AUTH="false",  # loopback only
    )
    api = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env=env,
    )  # fmt: skip
    try:
        wait_port(port)
        base = f"http://127.0.0.1:{port}/api/v1"
        with httpx.Client(timeout=30) as client:

            def get(path: str, **params: Any) -> Callable[[], Any]:
                def call() -> Any:
                    r = client.get(base + path, params=params)
                    r.raise_for_status()
                    return r

                return call

            http = {
                "profile": get("/groups/APT29/profile"),
                "compare": get("/compare", actor=COMPARE),
                "similar": get("/groups/FIN7/similar"),
            }
            return {k: timed(f, runs) for k, f in http.items()}
    finally:
        api.terminate()
        api.wait(timeout=10)


if __name__ == "__main__":
    main()
