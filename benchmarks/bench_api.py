"""Load figures for the HTTP API: throughput and p50/p99 latency at 1, 8 and 32 concurrent
clients, from a second process on 127.0.0.1, against uvicorn with several workers and Neo4j on
the same machine.

    python -m benchmarks.bench_api [--duration 10] [--workers 2] [--clients 1,8,32]

Questions: profile (APT29), compare (APT29, APT28, Lazarus Group) and, when the API has it,
gap analysis of 5 actors against an inventory (uploaded over HTTP first). Each runs under
four configurations, one uvicorn launch each:

- no cache: every request runs its queries (TTPGRAPH_ANSWER_CACHE=0, TTPGRAPH_RESPONSE_CACHE=0);
- answer cache: the services' cache (one data-version query per request, through the sync
  driver in the thread pool, and the JSON serialised every time);
- response cache: the API's byte cache (one data-version read per batch of concurrent
  requests, on the event loop through the async driver; no thread, no serialisation);
- response cache + gzip: the same, for clients that send ``Accept-Encoding: gzip`` (most do).

The load generator is wrk (``apt-get install wrk``) or, without it, an asyncio/httpx client.
The machine's load average is printed with each configuration: other processes share the cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from api.auth import KeyStore
from loader.load import load_file
from queries.graph import Graph

from .common import ENTERPRISE, REPO, bench_server, described, free_port

PROFILE = "/api/v1/groups/APT29/profile"
COMPARE = "/api/v1/compare?" + urlencode(
    [("actor", a) for a in ("APT29", "APT28", "Lazarus Group")]
)
GAP_ACTORS = ("APT29", "APT28", "Lazarus Group", "FIN7", "Sandworm Team")
INVENTORY_FILE = REPO / "tests" / "fixtures" / "inventory" / "csv" / "inventory.csv"

CONFIGS = {
    "no cache": {"TTPGRAPH_ANSWER_CACHE": "0", "TTPGRAPH_RESPONSE_CACHE": "false"},
    "answer cache": {"TTPGRAPH_ANSWER_CACHE": "1", "TTPGRAPH_RESPONSE_CACHE": "false"},
    "response cache": {"TTPGRAPH_ANSWER_CACHE": "1", "TTPGRAPH_RESPONSE_CACHE": "true"},
    "response cache + gzip": {"TTPGRAPH_ANSWER_CACHE": "1", "TTPGRAPH_RESPONSE_CACHE": "true"},
}


@dataclass
class Figures:
    rps: float
    p50: float
    p99: float
    requests: int
    errors: int


# ---------------------------------------------------------------- load generators


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    if text == "nan":
        return float("nan")
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if not m:
        raise ValueError(f"wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def run_wrk(url: str, clients: int, seconds: float, headers: dict[str, str]) -> Figures:
    cmd = ["wrk", "-t", str(min(clients, 2)), "-c", str(clients), "-d", f"{seconds:g}s",
           "--timeout", "30s", "--latency"]  # fmt: skip
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    lat = dict(re.findall(r"^\s*(50|99)%\s+(\S+)\s*$", out, re.M))
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    if not total:  # nothing finished within the measurement
        lat = {"50": "nan", "99": "nan"}
    elif "50" not in lat or "99" not in lat:
        raise RuntimeError(f"cannot read wrk's latency distribution:\n{out}")
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return Figures(
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        p50=_ms(lat["50"]),
        p99=_ms(lat["99"]),
        requests=total,
        errors=(int(bad.group(1)) if bad else 0) + (sum(map(int, errs.groups())) if errs else 0),
    )


async def _httpx_load(url: str, clients: int, seconds: float, headers: dict[str, str]) -> Any:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(headers=headers, timeout=30, limits=limits) as client:

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                try:
                    resp = await client.get(url)
                    await resp.aread()
                    if resp.status_code >= 400:
                        errors += 1
                except httpx.HTTPError:
                    errors += 1
                latencies.append((time.perf_counter() - t0) * 1000)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.perf_counter() - t0
    latencies.sort()
    n = len(latencies)
    return {
        "rps": n / elapsed,
        "p50": statistics.median(latencies) if n else 0.0,
        "p99": latencies[min(n - 1, int(0.99 * n))] if n else 0.0,
        "requests": n,
        "errors": errors,
    }


def run_httpx(url: str, clients: int, seconds: float, headers: dict[str, str]) -> Figures:
    """The fallback generator, in a second process like wrk."""
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_api", "--generate", url, "--clients",
         str(clients), "--duration", str(seconds), "--headers", json.dumps(headers)],
        capture_output=True, text=True, check=True, cwd=REPO,
    ).stdout  # fmt: skip
    return Figures(**json.loads(out.strip().splitlines()[-1]))


# ---------------------------------------------------------------- the API under test


class Uvicorn:
    def __init__(self, settings: Any, keys_file: Path, workers: int, env: dict[str, str]) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        full = dict(
            os.environ,
            NEO4J_URI=settings.neo4j_uri,
            NEO4J_USER="neo4j",
            NEO4J_PASSWORD=settings.neo4j_password,
            TTPGRAPH_API_AUTH="true",
            TTPGRAPH_API_KEYS_FILE=str(keys_file),
            TTPGRAPH_WORKERS=str(workers),
            **env,
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--host",
             "127.0.0.1", "--port", str(self.port), "--workers", str(workers),
             "--log-level", "warning"],
            env=full, cwd=REPO,
        )  # fmt: skip
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.base + "/ready", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.close()
        raise RuntimeError("uvicorn did not become ready")

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def find_gap_analysis(
    api: Uvicorn, headers: dict[str, str], write_key: str
) -> tuple[str | None, str]:
    """The gap-analysis URL (after uploading an inventory), or None and why not."""
    spec = httpx.get(api.base + "/openapi.json", timeout=30).json()
    paths = spec.get("paths", {})
    if "/api/v1/gaps" not in paths or "post" not in paths.get("/api/v1/inventories", {}):
        return None, "the API has no /api/v1/gaps and inventory upload (yet)"
    with INVENTORY_FILE.open("rb") as fh:
        resp = httpx.post(
            api.base + "/api/v1/inventories",
            headers={"X-API-Key": write_key},
            files={"file": (INVENTORY_FILE.name, fh, "text/csv")},
            data={"format": "csv", "name": "bench"},
            timeout=120,
        )
    if resp.status_code >= 300:
        return None, f"inventory upload answered {resp.status_code}: {resp.text[:200]}"
    url = "/api/v1/gaps?" + urlencode([("actor", a) for a in GAP_ACTORS] + [("inventory", "bench")])
    check = httpx.get(api.base + url, headers=headers, timeout=120)
    if check.status_code != 200:
        return None, f"gap analysis answered {check.status_code}: {check.text[:200]}"
    return url, "ok"


def main() -> None:
    ap = argparse.ArgumentParser(description=described(__doc__))
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    ap.add_argument("--slow-duration", type=float, default=20.0,
                    help="seconds per measurement without caches")  # fmt: skip
    ap.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    ap.add_argument("--clients", default="1,8,32")
    ap.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated subset")
    ap.add_argument("--generator", choices=["wrk", "httpx"], default=None)
    ap.add_argument("--generate", help=argparse.SUPPRESS)
    ap.add_argument("--headers", default="{}", help=argparse.SUPPRESS)
    args = ap.parse_args()
    clients = [int(c) for c in args.clients.split(",")]
    if args.generate:  # the fallback generator's own process
        print(json.dumps(asyncio.run(_httpx_load(args.generate, clients[0], args.duration,
                                                 json.loads(args.headers)))))  # fmt: skip
        return
    generator = args.generator or ("wrk" if shutil.which("wrk") else "httpx")
    load = run_wrk if generator == "wrk" else run_httpx
    configs = [c.strip() for c in args.configs.split(",")]
    rows: list[tuple[str, str, int, Figures, str]] = []
    notes: list[str] = []
    with bench_server() as settings, tempfile.TemporaryDirectory() as tmp:
        with Graph.connect(settings) as graph:
            load_file(graph, str(ENTERPRISE))
        store = KeyStore(Path(tmp) / "api-keys.json")
        read_key = store.create(role="read", name="bench")[1]
        write_key = store.create(role="write", name="bench")[1]
        for config in configs:
            api = Uvicorn(settings, store.path, args.workers, CONFIGS[config])
            try:
                headers = {"X-API-Key": read_key}
                headers["Accept-Encoding"] = "gzip" if "gzip" in config else "identity"
                urls = {"profile": PROFILE, "compare 3": COMPARE}
                gap, why = find_gap_analysis(api, headers, write_key)
                if gap:
                    urls["gap 5"] = gap
                elif why not in notes:
                    notes.append(f"gap analysis not measured: {why}")
                load_avg = "load {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())
                if config == configs[-1]:
                    # The floor: no database, no work: what this machine allows any route.
                    urls["health (floor)"] = "/health"
                seconds = args.duration if "no cache" not in config else args.slow_duration
                for name, path in urls.items():
                    # Warm every worker (each has its own caches, connections, plans).
                    if "no cache" in config:
                        httpx.get(api.base + path, headers=headers, timeout=300)
                    else:
                        load(api.base + path, 8, 3.0, headers)
                    for c in clients:
                        fig = load(api.base + path, c, seconds, headers)
                        rows.append((config, name, c, fig, load_avg))
                        print(f"{config:22} {name:10} c={c:<3} {fig.rps:8.1f} req/s "
                              f"p50 {fig.p50:7.1f} ms  p99 {fig.p99:7.1f} ms  "
                              f"errors {fig.errors}", file=sys.stderr, flush=True)  # fmt: skip
            finally:
                api.close()
    print()
    print(f"HTTP API load ({generator}, {args.duration:g} s per cell ({args.slow_duration:g} s "
          f"without caches), uvicorn --workers "
          f"{args.workers}, Neo4j 5.26 and the generator on the same {os.cpu_count()}-core "
          "machine, Enterprise 18.1 loaded)")  # fmt: skip
    print()
    print("| configuration | question | clients | req/s | p50 ms | p99 ms | errors | machine |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for config, name, c, f, load_avg in rows:
        print(f"| {config} | {name} | {c} | {f.rps:.0f} | {f.p50:.1f} | {f.p99:.1f} | "
              f"{f.errors} | {load_avg} |")  # fmt: skip
    for note in notes:
        print(f"\n{note}")
    target = [f for cfg, n, c, f, _ in rows if n == "profile" and c == 32]
    for cfg, _, _, f, _ in [r for r in rows if r[1] == "profile" and r[2] == 32]:
        met = f.rps >= 300 and f.p99 < 100
        print(f"\nprofile at 32 clients, {cfg}: {f.rps:.0f} req/s, p99 {f.p99:.1f} ms "
              f"(target >= 300 req/s, p99 < 100 ms): {'met' if met else 'NOT met'}")  # fmt: skip
    if not target:
        print("\n(profile at 32 clients not measured)")


if __name__ == "__main__":
    main()
