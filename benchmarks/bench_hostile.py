"""Hostile load: ten hostile read-key requests at once against one uvicorn worker, with the
worker's ``/health`` latency and memory (RSS, and its Cypher child's) sampled throughout; then
the parsers' time on hostile files at n and 4n entries (linear: the ratio stays near 4).

    python -m benchmarks.bench_hostile [--timeout 5] [--rounds 2] [--max-concurrent 4]

One self-contained command: it starts its own Neo4j (heap 3 GB) on free loopback ports, loads
Enterprise 18.1, creates ten read keys, serves the API with one worker, and stops everything at
the end. The request mix is fixed (seeded) and printed. Floors: ``/health`` latency with no load
(the same worker, just before), and the Cypher timeout + 2 s for every hostile request. The
machine's load average is printed with each figure: other processes share the cores.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from api.auth import KeyStore
from loader.load import load_file
from queries.graph import Graph

from .common import ENTERPRISE, REPO, bench_server, described, free_port

SLOW = (
    "MATCH (a:Technique), (b:Technique), (c:Technique) "
    "WHERE a.name + b.name = c.name RETURN count(*) AS n"
)
HOSTILE: dict[str, tuple[str, dict[str, Any]]] = {
    "reduce over range(2e9) (the issue's 37 s)": (
        "RETURN reduce(a = 0, x IN range(1, 2000000000) | a + x) AS s", {}),
    "200 chained patterns (the issue's 62 s of planning)": (
        "MATCH (a0)" + "".join(f"-->(a{i + 1})" for i in range(200)) + " RETURN count(*)", {}),
    "cartesian product of techniques (rows)": (SLOW, {}),
    "one record of 10M values": (
        "UNWIND range(1, 100) AS a UNWIND range(1, 100000) AS b RETURN collect(b) AS l", {}),
    "900 KB parameter in 500 rows": (
        "UNWIND range(1, 500) AS i RETURN i, $p AS p", {"p": "x" * (900 * 1024)}),
}  # fmt: skip


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def children(pid: int) -> list[int]:
    try:
        out = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(x) for x in out]


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


class Sampler:
    """/health latency every 20 ms, and the worker's and its children's RSS."""

    def __init__(self, base: str, pid: int) -> None:
        self.base, self.pid = base, pid
        self.health: list[float] = []
        self.errors = 0
        self.worker_rss: list[float] = []
        self.child_rss: list[float] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._health, daemon=True),
                         threading.Thread(target=self._memory, daemon=True)]  # fmt: skip

    def _health(self) -> None:
        with httpx.Client(timeout=10) as c:
            while not self._stop.is_set():
                t0 = time.perf_counter()
                try:
                    if c.get(self.base + "/health").status_code != 200:
                        self.errors += 1
                except httpx.HTTPError:
                    self.errors += 1
                self.health.append((time.perf_counter() - t0) * 1000)
                time.sleep(0.02)

    def _memory(self) -> None:
        while not self._stop.is_set():
            self.worker_rss.append(rss_mb(self.pid))
            self.child_rss.append(sum(rss_mb(c) for c in children(self.pid)))
            time.sleep(0.1)

    def __enter__(self) -> Sampler:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()


def serve(settings: Any, keys_file: Path, timeout: float, max_concurrent: int) -> tuple[Any, str]:
    port = free_port()
    env = dict(
        os.environ,
        NEO4J_URI=settings.neo4j_uri,
        NEO4J_USER="neo4j",
        NEO4J_PASSWORD=settings.neo4j_password,
        TTPGRAPH_API_AUTH="true",
        TTPGRAPH_API_KEYS_FILE=str(keys_file),
        TTPGRAPH_CONFIG_DIR=str(keys_file.parent),
        TTPGRAPH_CYPHER_TIMEOUT=str(timeout),
        TTPGRAPH_CYPHER_MAX_CONCURRENT=str(max_concurrent),
        PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--host",
         "127.0.0.1", "--port", str(port), "--log-level", "error"],
        env=env, cwd=REPO,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/ready", timeout=5).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise RuntimeError("uvicorn did not become ready")


def hostile_round(base: str, keys: list[str], mix: list[str], timeout: float) -> list[tuple]:
    results: list[tuple] = [None] * len(mix)  # type: ignore[list-item]

    def one(i: int) -> None:
        query, params = HOSTILE[mix[i]]
        t0 = time.perf_counter()
        with httpx.Client(timeout=timeout + 30) as c:
            r = c.post(base + "/api/v1/cypher", json={"query": query, "params": params},
                       headers={"X-API-Key": keys[i]})  # fmt: skip
        results[i] = (mix[i], r.status_code, time.perf_counter() - t0)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(mix))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def parser_figures() -> None:
    from loader.inventory import parse_inventory
    from queries import layers as L

    def layer_text(n: int) -> str:
        distinct = max(1, n // 2)
        techs = [{"techniqueID": f"T{1000 + (i % distinct) % 9000}",
                  "tactic": ["execution", "persistence"][(i % distinct) // 9000 % 2],
                  "score": i % 100} for i in range(n)]  # fmt: skip
        return json.dumps({"name": "h", "domain": "enterprise-attack", "techniques": techs,
                           "versions": {"layer": "4.5", "attack": "18"}})  # fmt: skip

    def csv_rows(n: int) -> str:  # one rule id repeated, each row its own technique id
        ids = (f"T{1000 + i % 9000}.{i // 9000 + 1:03d}" for i in range(n))
        return "rule_id,name,technique\n" + "".join(f"r1,one,{t}\n" for t in ids)

    def parse_csv_text(text: str) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "rules.csv"
            path.write_text(text)
            parse_inventory("csv", path)

    print("\nParsers on hostile files (n and 4n entries; linear => ratio ~4):")
    for label, make, run, n in [
        ("layer with repeats (the issue: 16k in 19.7 s)", layer_text, L.read_layer, 4_000),
        ("CSV inventory, one rule id in every row (30k: 413 s before)", csv_rows,
         parse_csv_text, 15_000),
    ]:  # fmt: skip
        times = []
        for size in (n, 4 * n):
            text = make(size)
            t0 = time.perf_counter()
            run(text)
            times.append(time.perf_counter() - t0)
        print(f"  {label}: n={n} {times[0]:.3f} s, 4n={4 * n} {times[1]:.3f} s, "
              f"ratio {times[1] / times[0]:.1f}  [load {load_average()}]")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=described(__doc__))
    ap.add_argument("--timeout", type=float, default=5.0, help="TTPGRAPH_CYPHER_TIMEOUT (s)")
    ap.add_argument("--rounds", type=int, default=2, help="rounds of 10 requests at once")
    ap.add_argument("--max-concurrent", type=int, default=4,
                    help="TTPGRAPH_CYPHER_MAX_CONCURRENT (10: every request runs)")  # fmt: skip
    ap.add_argument("--seed", type=int, default=15)
    args = ap.parse_args()
    rng = random.Random(args.seed)

    parser_figures()
    with bench_server(heap="3g") as settings, tempfile.TemporaryDirectory() as tmp:
        graph = Graph.connect(settings)
        try:
            load_file(graph, str(ENTERPRISE))
        finally:
            graph.close()
        store = KeyStore(Path(tmp) / "api-keys.json")
        keys = [store.create(role="read", name=f"hostile-{i}")[1] for i in range(10)]
        proc, base = serve(settings, Path(tmp) / "api-keys.json", args.timeout,
                           args.max_concurrent)  # fmt: skip
        try:
            with Sampler(base, proc.pid) as rest:
                time.sleep(3)
            floor = statistics.median(rest.health)
            print(f"\n/health at rest (floor): median {floor:.1f} ms, p95 "
                  f"{pct(rest.health, 0.95):.1f} ms; worker RSS {max(rest.worker_rss):.0f} MB"
                  f"  [load {load_average()}]")  # fmt: skip
            names = list(HOSTILE)
            for n in range(args.rounds):
                mix = [names[i % len(names)] for i in range(10)]
                rng.shuffle(mix)
                with Sampler(base, proc.pid) as s:
                    results = hostile_round(base, keys, mix, args.timeout)
                    time.sleep(1)
                print(f"\nRound {n + 1}: 10 hostile requests at once (Cypher timeout "
                      f"{args.timeout:g} s, limit {args.max_concurrent} at once)")  # fmt: skip
                for label, status, took in sorted(results):
                    mark = "" if took <= args.timeout + 2 else "  PAST THE DEADLINE"
                    print(f"  {status}  {took:6.2f} s  {label}{mark}")
                h = s.health
                print(f"  /health during it: {len(h)} requests, {s.errors} errors, median "
                      f"{statistics.median(h):.1f} ms, p95 {pct(h, 0.95):.1f} ms, max "
                      f"{max(h):.1f} ms (x{max(h) / floor:.1f} the floor)")  # fmt: skip
                print(f"  worker RSS max {max(s.worker_rss):.0f} MB (at rest "
                      f"{max(rest.worker_rss):.0f} MB); Cypher child RSS max "
                      f"{max(s.child_rss):.0f} MB  [load {load_average()}]")  # fmt: skip
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
