"""Answers at the speed of the graph, in one run: every actor and coverage question uncached and
cached next to its floor (benchmarks/floors.py: one hand-written query for the same core) and
the ratio, through the services and over HTTP; the first answer of each kind after
``ttpgraph neo4j start`` + ``ttpgraph serve``; cold, warm and unchanged loads of Enterprise;
the CLI's wall time; and the same questions for mitreattack-python and attackcti (in memory,
after their load).

    python -m benchmarks.bench_answers [--runs 15] [--loads 3] [--peer-runs 3] [--no-peers]

Self-contained: a throw-away Neo4j of its own (started and stopped with the ``ttpgraph neo4j``
commands, in a temporary folder, heap 2 GB), Enterprise 18.1 and the Sigma corpus from
../shared. Deterministic inputs (fixed actors, fixed files; no randomness). Prints the load
average next to every section: the machine is shared.
"""

from __future__ import annotations

import argparse
import gc
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from . import floors
from .common import ENTERPRISE, REPO, described, free_port, summary

CORPORA = Path(os.environ.get("TTPGRAPH_CORPORA_DIR", REPO.parent / "shared" / "corpora"))
SIGMA = CORPORA / "sigma"

PROFILE = "APT29"
COMPARE = ["APT29", "APT28", "Lazarus Group"]
SIMILAR = "FIN7"
GAPS = ["APT29", "APT28", "FIN7", "Lazarus Group", "Wizard Spider"]
TELEMETRY = ["APT29", "APT28", "FIN7", "Wizard Spider"]
IDS = {"APT29": "G0016", "APT28": "G0007", "FIN7": "G0046", "Lazarus Group": "G0032",
       "Wizard Spider": "G0102"}  # fmt: skip
QUESTIONS = ["profile", "compare", "similar", "gaps", "telemetry"]
TARGET_MS = {"profile": 40, "compare": 20, "similar": 50, "gaps": 30, "telemetry": 40}


def load() -> str:
    la = os.getloadavg()
    return f"load average {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}"


def timed(fn: Callable[[], Any], runs: int, warmup: int = 2) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    values = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        values.append((time.perf_counter() - t0) * 1000)
    return summary(values)


def timed_pair(
    a: Callable[[], Any], b: Callable[[], Any], runs: int, warmup: int = 20
) -> tuple[dict[str, float], dict[str, float]]:
    """``timed`` for two calls taking turns, after ``warmup`` turns each: Neo4j's JVM compiles
    a query's hot paths after some executions, and a server that has only loaded and imported
    has not run these reads yet (the first answers after a start are measured on their own)."""
    for _ in range(warmup):
        a()
        b()
    va, vb = [], []
    for _ in range(runs):
        va.append(once_ms(a))
        vb.append(once_ms(b))
    return summary(va), summary(vb)


def once_ms(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


# ---------------------------------------------------------------- the server, through the CLI


class Instance:
    """A Neo4j of the benchmark's own, run with ``python -m api.cli neo4j ...`` as a user
    would, its settings file in a temporary config folder."""

    def __init__(self, root: Path) -> None:
        self.home = root / "neo4j"
        self.config = root / "config"
        self.bolt = free_port()
        self.http = free_port()
        self.password = "bench-" + os.urandom(4).hex()
        self.env = dict(
            os.environ,
            TTPGRAPH_CONFIG_DIR=str(self.config),
            NEO4J_PASSWORD=self.password,
            PYTHONPATH=str(REPO),
        )
        for k in ("NEO4J_URI", "NEO4J_USER", "NEO4J_DATABASE", "TTPGRAPH_ANSWER_CACHE"):
            self.env.pop(k, None)

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "api.cli", *args], env=self.env, capture_output=True,
            text=True, check=check, cwd=REPO,
        )  # fmt: skip

    def start(self) -> None:
        self.cli("neo4j", "start", "--home", str(self.home), "--bolt-port", str(self.bolt),
                 "--http-port", str(self.http), "--timeout", "300")  # fmt: skip

    def stop(self) -> None:
        self.cli("neo4j", "stop", "--home", str(self.home), check=False)

    @property
    def warm_file(self) -> Path:
        return self.home / "run" / "ttpgraph-warm.json"

    def wait_warm(self, timeout: float = 900) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while not self.warm_file.exists():
            if time.monotonic() > deadline:
                return {}
            time.sleep(0.5)
        return json.loads(self.warm_file.read_text())

    def settings(self) -> Any:
        from queries.settings import Settings

        return Settings(neo4j_uri=f"bolt://127.0.0.1:{self.bolt}", neo4j_password=self.password)

    def graph(self) -> Any:
        from queries.graph import Graph

        return Graph.connect(self.settings())


class Api:
    """``ttpgraph serve`` in a process of its own, on loopback without keys."""

    def __init__(self, inst: Instance, **env: str) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "serve", "--host", "127.0.0.1", "--port",
             str(self.port), "--no-auth"],
            env=dict(inst.env, **env), cwd=REPO,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.base = f"http://127.0.0.1:{self.port}"
        self.client = httpx.Client(base_url=self.base, timeout=300)
        self.connections: list[http.client.HTTPConnection] = []

    def wait_ready(self, timeout: float = 900) -> float:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            try:
                if self.client.get("/ready", timeout=5).status_code == 200:
                    return time.monotonic() - t0
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the API did not become ready")

    def questions(self, client: str = "bytes") -> dict[str, Callable[[], Any]]:
        """The five questions as GET requests. ``client="bytes"``: one keep-alive connection
        of the standard library's ``http.client`` that reads the body as bytes - what the API
        costs, not a Python client's; ``client="httpx"``: httpx, whose own handling of the body
        adds 0.4-2.9 ms a request here (timed beside the bytes client, so the difference shows)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        if client == "bytes":
            self.connections.append(conn)

        def get(path: str, **params: Any) -> Callable[[], Any]:
            url = "/api/v1" + path + ("?" + urlencode(params, doseq=True) if params else "")

            def over_httpx() -> Any:
                r = self.client.get(url)
                r.raise_for_status()
                return r.content

            def as_bytes() -> Any:
                try:
                    conn.request("GET", url)
                    r = conn.getresponse()
                except (http.client.RemoteDisconnected, ConnectionError):
                    conn.close()  # the server closed an idle connection: open another
                    conn.request("GET", url)
                    r = conn.getresponse()
                body = r.read()
                if r.status != 200:
                    raise RuntimeError(f"GET {url}: {r.status} {body[:200]!r}")
                return body

            return over_httpx if client == "httpx" else as_bytes

        return {
            "profile": get(f"/groups/{PROFILE}/profile"),
            "compare": get("/compare", actor=COMPARE),
            "similar": get(f"/groups/{SIMILAR}/similar"),
            "gaps": get("/gaps", actor=GAPS, inventory="sigma"),
            "telemetry": get("/telemetry", actor=TELEMETRY, inventory="sigma"),
        }

    def close(self) -> None:
        for conn in self.connections:
            conn.close()
        self.client.close()
        self.proc.terminate()
        self.proc.wait(timeout=60)


# ---------------------------------------------------------------- questions


def service_questions(graph: Any) -> dict[str, Callable[[], Any]]:
    from queries import actors
    from queries import coverage as C

    return {
        "profile": lambda: actors.profile_group(graph, group=PROFILE),
        "compare": lambda: actors.compare_groups(graph, groups=COMPARE),
        "similar": lambda: actors.similar_groups(graph, group=SIMILAR),
        "gaps": lambda: C.gap_analysis(graph, actors=GAPS, inventory="sigma"),
        "telemetry": lambda: C.prioritize_telemetry(graph, actors=TELEMETRY, inventory="sigma"),
    }


def floor_questions(graph: Any) -> dict[str, Callable[[], Any]]:
    return {
        "profile": lambda: graph.read(floors.PROFILE, group_id=IDS[PROFILE]),
        "compare": lambda: graph.read(floors.COMPARE, group_ids=[IDS[n] for n in COMPARE]),
        "similar": lambda: graph.read(floors.SIMILAR),
        "gaps": lambda: graph.read(
            floors.GAPS, group_ids=[IDS[n] for n in GAPS], inventory="sigma"
        ),
        "telemetry": lambda: graph.read(
            floors.TELEMETRY, group_ids=[IDS[n] for n in TELEMETRY], inventory="sigma"
        ),
    }


def stored_floor_questions(graph: Any) -> dict[str, Callable[[], Any]]:
    """The floors of the questions that read what loads and imports store, from those facts."""
    return {
        "similar": lambda: graph.read(floors.SIMILAR_STORED),
        "gaps": lambda: graph.read(
            floors.GAPS_STORED, group_ids=[IDS[n] for n in GAPS], inventory="sigma"
        ),
    }


def mitre_questions(covered: set[str]) -> tuple[float, dict[str, Callable[[], Any]]]:
    """mitreattack-python 6.3.1 (MitreAttackData, in memory): load seconds and the questions."""
    from mitreattack.stix20 import MitreAttackData

    t0 = time.perf_counter()
    data = MitreAttackData(str(ENTERPRISE))
    loaded = time.perf_counter() - t0

    def gid(name: str) -> str:
        return data.get_groups_by_alias(name)[0]["id"]

    def tech_set(group: str) -> set[str]:
        out = {e["object"]["id"] for e in data.get_techniques_used_by_group(group)}
        for c in data.get_campaigns_attributed_to_group(group):
            out |= {
                e["object"]["id"] for e in data.get_techniques_used_by_campaign(c["object"]["id"])
            }
        return out

    def profile() -> Any:
        g = gid(PROFILE)
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
        mine = tech_set(gid(SIMILAR))
        out = []
        for g in data.get_groups(remove_revoked_deprecated=True):
            theirs = tech_set(g["id"])
            union = mine | theirs
            out.append((len(mine & theirs) / len(union) if union else 0.0, g["id"]))
        return sorted(out, reverse=True)[:10]

    def threat_model(names: list[str]) -> dict[str, Any]:
        tm: dict[str, Any] = {}
        for name in names:
            for t in tech_set(gid(name)):
                tm[data.get_attack_id(t)] = t
        return tm

    def gaps() -> Any:
        tm = threat_model(GAPS)
        prevalence = {}
        for tid, stix in tm.items():
            prevalence[tid] = len(data.get_groups_using_technique(stix))
        return sorted((t for t in tm if t not in covered), key=lambda t: -prevalence[t])

    def telemetry() -> Any:
        reach: dict[str, set[str]] = {}
        for tid, stix in threat_model(TELEMETRY).items():
            if tid in covered:
                continue
            for s in data.get_detection_strategies_detecting_technique(stix):
                for a in data.get_analytics_by_detection_strategy(s["object"]["id"]):
                    for ref in a.get("x_mitre_log_source_references", []):
                        reach.setdefault(ref["name"], set()).add(tid)
        return sorted(reach, key=lambda k: -len(reach[k]))

    return loaded, {"profile": profile, "compare": compare, "similar": similar, "gaps": gaps,
                    "telemetry": telemetry}  # fmt: skip


def attackcti_questions(covered: set[str]) -> tuple[float, dict[str, Callable[[], Any]]]:
    """attackcti 0.6.4 reading the same local bundle: load seconds and the questions."""
    from attackcti import MitreAttackClient

    t0 = time.perf_counter()
    client = MitreAttackClient.from_local(enterprise=str(ENTERPRISE))
    loaded = time.perf_counter() - t0
    groups = {}
    for g in client.get_groups():
        for alias in [g["name"], *(g.get("aliases") or [])]:
            groups.setdefault(alias.lower(), g)

    def attack_id(obj: Any) -> str:
        return next(r["external_id"] for r in obj["external_references"]
                    if r.get("source_name") == "mitre-attack")  # fmt: skip

    def tech_set(name: str) -> dict[str, Any]:
        used = client.get_techniques_used_by_group(stix_object=groups[name.lower()])
        return {attack_id(t): t for t in used}

    def profile() -> Any:
        g = groups[PROFILE.lower()]
        return (client.get_techniques_used_by_group(stix_object=g),
                client.get_techniques_used_by_group_software(stix_object=g))  # fmt: skip

    def compare() -> Any:
        sets = [set(tech_set(n)) for n in COMPARE]
        return set.intersection(*sets)

    def similar() -> Any:
        rows = client.get_techniques_used_by_all_groups()
        sets: dict[str, set[str]] = {}
        for r in rows:
            sets.setdefault(r["id"], set()).add(r["technique_id"])
        mine = sets[groups[SIMILAR.lower()]["id"]]
        return sorted(((len(mine & s) / len(mine | s), g) for g, s in sets.items()), reverse=True)

    def gaps() -> Any:
        tm: dict[str, Any] = {}
        for n in GAPS:
            tm.update(tech_set(n))
        return [t for t in tm if t not in covered]

    def telemetry() -> Any:
        tm: dict[str, Any] = {}
        for n in TELEMETRY:
            tm.update(tech_set(n))
        reach: dict[str, set[str]] = {}
        for tid, t in tm.items():
            if tid in covered:
                continue
            for ref in client.get_log_source_references_by_technique(t):
                reach.setdefault(ref["name"], set()).add(tid)
        return sorted(reach, key=lambda k: -len(reach[k]))

    return loaded, {"profile": profile, "compare": compare, "similar": similar, "gaps": gaps,
                    "telemetry": telemetry}  # fmt: skip


# ---------------------------------------------------------------- sections


def section(title: str) -> None:
    print(f"\n{title} ({load()})", flush=True)


def cli_load(inst: Instance, *flags: str) -> tuple[float, float]:
    """``ttpgraph load`` of Enterprise in a process of its own: (load s, process wall s)."""
    t0 = time.perf_counter()
    proc = inst.cli("load", str(ENTERPRISE), "--format", "json", *flags)
    wall = time.perf_counter() - t0
    return json.loads(proc.stdout)[0]["seconds"], wall


def loads(inst: Instance, n: int) -> dict[str, tuple[float, float]]:
    """Each a fresh ``ttpgraph load`` process (the Python side equally cold every time): cold
    (the first load after the server started and planned its catalog), warm (an emptied
    database, median), unchanged (the same bytes again), forced (the same bytes, --force)."""
    graph = inst.graph()
    out: dict[str, tuple[float, float]] = {}
    try:
        out["cold"] = cli_load(inst)
        warm = []
        for _ in range(n):
            # the version node stays: it says the start-up warm-up planned this start's
            # catalog, so the API timed below does not plan it again beside its answers
            graph.write("MATCH (n) WHERE NOT n:GraphVersion DETACH DELETE n")
            warm.append(cli_load(inst))
        out["warm"] = sorted(warm)[len(warm) // 2]
        out["unchanged"] = cli_load(inst)
        out["forced"] = cli_load(inst, "--force")
    finally:
        graph.close()
    return out


def import_sigma(inst: Instance) -> float:
    """``ttpgraph inventory import`` of the Sigma corpus, in a process of its own: wall s."""
    t0 = time.perf_counter()
    inst.cli("inventory", "import", "sigma", str(SIGMA), "--name", "sigma", "--format", "json")
    return time.perf_counter() - t0


def first_after_start(inst: Instance, *, warm_up: bool) -> dict[str, float]:
    """Stop, ``neo4j start``, ``serve``; the first answer of each kind over HTTP."""
    inst.stop()
    out: dict[str, float] = {}
    t0 = time.monotonic()
    if warm_up:
        inst.start()
    else:  # the server alone: no warm-up by start, none by the API
        from loader import neo4j_server as srv

        cfg = srv.ServerConfig(home=inst.home, bolt_port=inst.bolt, http_port=inst.http,
                               password=inst.password)  # fmt: skip
        srv.start(cfg, timeout=300)
    out["start s"] = time.monotonic() - t0
    api = Api(inst, **({} if warm_up else {"TTPGRAPH_WARM_UP": "false"}))
    try:
        out["serve to ready s"] = api.wait_ready()
        for name, call in api.questions().items():
            out[name] = once_ms(call)
        if warm_up:
            done = inst.wait_warm()
            out["neo4j warm s"] = done.get("seconds", float("nan")) + done.get("writes_seconds", 0)
    finally:
        api.close()
    return out


CONSOLE_SCRIPT = """import re, sys
from api.cli import main
if __name__ == "__main__":
    sys.argv[0] = re.sub(r"(-script\\.pyw|\\.exe)?$", "", sys.argv[0])
    sys.exit(main())
"""


def cli_commands(folder: Path) -> dict[str, list[str]]:
    """The command lines timed: ``python -m api.cli``, the console script pip writes for
    ``ttpgraph = api.cli:main`` (run by this interpreter, from a file in ``folder``), the
    ``ttpgraph`` on PATH when it runs (a pyenv shim adds its own start-up), and bare Python."""
    script = folder / "ttpgraph"
    script.write_text(CONSOLE_SCRIPT, encoding="utf-8")
    question = ["profile", "APT29", "--format", "json"]
    commands = {
        "python -m api.cli profile APT29 --format json": [sys.executable, "-m", "api.cli",
                                                          *question],
        "python -m api.cli --help": [sys.executable, "-m", "api.cli", "--help"],
        "console script: profile APT29 --format json": [sys.executable, str(script), *question],
        "console script: --help": [sys.executable, str(script), "--help"],
        "python -c pass (the interpreter alone)": [sys.executable, "-c", "pass"],
    }  # fmt: skip
    on_path = shutil.which("ttpgraph")
    if on_path and subprocess.run([on_path, "--help"], capture_output=True).returncode == 0:
        commands[f"{on_path} profile APT29 --format json"] = [on_path, *question]
        commands[f"{on_path} --help"] = [on_path, "--help"]
    return commands


def cli_wall(inst: Instance, runs: int) -> dict[str, tuple[float, float]]:
    """Median wall and CPU (user + system) seconds of ``runs`` fresh processes per command
    line (one more run first, not counted)."""
    import resource

    out: dict[str, tuple[float, float]] = {}
    env = dict(inst.env, NEO4J_URI=f"bolt://127.0.0.1:{inst.bolt}")
    for label, cmd in cli_commands(inst.home.parent).items():
        walls, cpus = [], []
        for _ in range(runs + 1):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            subprocess.run(cmd, env=env, cwd=REPO, check=True, capture_output=True)
            walls.append(time.perf_counter() - t0)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        out[label] = statistics.median(walls[1:]), statistics.median(cpus[1:])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=described(__doc__))
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--loads", type=int, default=3, help="warm loads (median)")
    ap.add_argument("--peer-runs", type=int, default=3)
    ap.add_argument("--no-peers", action="store_true")
    args = ap.parse_args()
    print(f"bench_answers: runs={args.runs}, {load()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="ttpgraph-answers-") as tmp:
        inst = Instance(Path(tmp))
        try:
            run_all(inst, args)
        finally:
            inst.stop()


def run_all(inst: Instance, args: argparse.Namespace) -> None:
    inst.start()
    warm = inst.wait_warm()
    catalog_s, writes_s = warm.get("seconds", float("nan")), warm.get("writes_seconds", 0.0)
    section(f"Loads of Enterprise 18.1, s (the empty server's start-up warm-up: {catalog_s:.1f} s "
            f"for the catalog, {writes_s:.1f} s for a load's statements)")  # fmt: skip
    ld = loads(inst, args.loads)
    print(f"  {'':10} {'load s':>8} {'process s':>10}")
    for k, (secs, wall) in ld.items():
        print(f"  {k:10} {secs:8.2f} {wall:10.2f}")
    print(f"  cold / warm = {ld['cold'][0] / ld['warm'][0]:.2f}")
    print(f"  Sigma corpus import (process wall): {import_sigma(inst):.2f} s")

    graph = inst.graph()
    rows = graph.read(
        "MATCH (:Inventory {name: 'sigma'})-[:HAS_RULE]->()-[:COVERS]->(t:Technique) "
        "RETURN collect(DISTINCT t.attack_id) AS ids"
    )
    covered = set(rows[0]["ids"])
    # nothing of the set-up left for the collector to walk while timing (as the API does at its
    # start: a full collection walks only what the questions made)
    gc.collect()
    gc.freeze()
    section(f"Warm latency, ms (median of {args.runs}; ratio: uncached / its floor, taking turns)")
    service = service_questions(graph)
    floor = floor_questions(graph)
    res: dict[str, dict[str, dict[str, float]]] = {}
    graph.cache.enabled = False
    res["service, uncached"], res["floor (one query)"] = {}, {}
    for k in QUESTIONS:  # alternated, so both see the same machine
        res["service, uncached"][k], res["floor (one query)"][k] = timed_pair(
            service[k], floor[k], args.runs
        )
    res["floor (stored facts)"] = {}
    stored = stored_floor_questions(graph)
    for k, f in stored.items():
        _, res["floor (stored facts)"][k] = timed_pair(service[k], f, args.runs)
    graph.cache.enabled = True
    res["service, answer cache"] = {k: timed(f, args.runs) for k, f in service.items()}
    for label, env in (
        ("HTTP, uncached", {"TTPGRAPH_ANSWER_CACHE": "0", "TTPGRAPH_RESPONSE_CACHE": "false"}),
        ("HTTP, answer cache", {"TTPGRAPH_RESPONSE_CACHE": "false"}),
        ("HTTP, all caches", {}),
    ):
        api = Api(inst, **env)
        try:
            api.wait_ready()
            asked = api.questions()
            if label != "HTTP, uncached":
                res[label] = {k: timed(f, args.runs) for k, f in asked.items()}
                continue
            # taking turns with the floors again: the machine's speed drifts between sections
            res[label], res["floor, beside HTTP"], res["stored, beside HTTP"] = {}, {}, {}
            for k in QUESTIONS:
                res[label][k], res["floor, beside HTTP"][k] = timed_pair(
                    asked[k], floor[k], args.runs
                )
            for k, f in stored.items():
                _, res["stored, beside HTTP"][k] = timed_pair(asked[k], f, args.runs)
            # the same requests through httpx, taking turns with the bytes client
            res["HTTP via httpx, uncached"], res["HTTP, beside httpx"] = {}, {}
            for k, f in api.questions("httpx").items():
                res["HTTP via httpx, uncached"][k], res["HTTP, beside httpx"][k] = timed_pair(
                    f, asked[k], args.runs
                )
        finally:
            api.close()
    graph.close()
    print(f"  {'':34}" + "".join(f"{q:>11}" for q in QUESTIONS))
    for where, qs in res.items():
        cells = (f"{qs[q]['median']:>11.1f}" if q in qs else f"{'-':>11}" for q in QUESTIONS)
        print(f"  {where:34}" + "".join(cells))
    for where, floors_of, name in (
        ("service, uncached", "floor (one query)", "floor"),
        ("HTTP, uncached", "floor, beside HTTP", "floor"),
        ("service, uncached", "floor (stored facts)", "stored"),
        ("HTTP, uncached", "stored, beside HTTP", "stored"),
    ):
        fl = res[floors_of]
        ratios = "".join(
            f"{res[where][q]['median'] / fl[q]['median']:>11.2f}" if q in fl else f"{'-':>11}"
            for q in QUESTIONS
        )
        print(f"  {where + ' / ' + name:34}{ratios}")
    print(f"  {'target (uncached), ms':34}" + "".join(f"{TARGET_MS[q]:>11}" for q in QUESTIONS))
    via, beside = res["HTTP via httpx, uncached"], res["HTTP, beside httpx"]
    more = (via[q]["median"] - beside[q]["median"] for q in QUESTIONS)
    print(f"  {'httpx client, ms more':34}" + "".join(f"{m:>11.1f}" for m in more))
    print("  HTTP: GET on a keep-alive connection of http.client, the body read as bytes (what the")
    print("  API costs); 'HTTP via httpx': the same requests through httpx, taking turns with them")

    section("First answer of each kind after 'neo4j start' + 'serve', HTTP, ms")
    for warm_up in (True, False):
        first = first_after_start(inst, warm_up=warm_up)
        label = "with the start-up warm-up" if warm_up else "no warm-up (server alone)"
        print(f"  {label}: " + ", ".join(
            f"{k} {v:.1f}" if k.endswith(" s") else f"{k} {v:.0f}" for k, v in first.items()
        ))  # fmt: skip

    section("CLI, s per process (median of 10; targets: question 0.6, --help 0.3 wall)")
    print(f"  {'':50} {'wall':>6} {'cpu':>6}")
    for k, (wall, cpu) in cli_wall(inst, 10).items():
        print(f"  {k:50} {wall:6.2f} {cpu:6.2f}")

    if args.no_peers:
        return
    section(f"Peers in memory after their load, ms (median of {args.peer_runs})")
    for name, build in (("mitreattack-python 6.3.1", mitre_questions),
                        ("attackcti 0.6.4", attackcti_questions)):  # fmt: skip
        try:
            loaded, qs = build(covered)
        except ImportError as exc:
            print(f"  {name}: not installed ({exc})")
            continue
        figures = {k: timed(f, args.peer_runs, warmup=0) for k, f in qs.items()}
        print(f"  {name:26} load {loaded:6.1f} s " + "".join(
            f"{q} {figures[q]['median']:.1f}  " for q in QUESTIONS
        ))  # fmt: skip


if __name__ == "__main__":
    main()
