"""A hostile client with only a read key, against a real uvicorn worker and the real Neo4j.

Every figure asserted is a limit the API promises (docs/api.md), not a speed: a request ends
within the Cypher timeout + 2 s, its transaction is gone from Neo4j within 2 s after, texts Neo4j
could not stop are refused before planning, answers and parameters are capped, the per-key and
global concurrency limits answer 429 with Retry-After, and the worker keeps answering /health
and keeps its memory while it happens. The 10-at-once load with /health latency and RSS figures
is ``benchmarks/bench_hostile.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import KeyStore
from queries.catalog import Q
from queries.graph import Graph
from queries.settings import Settings
from queries.user_cypher import APP, MAX_RANGE, MAX_RELATIONSHIP_PATTERNS

from .conftest import REPO, free_port

TIMEOUT = 2.0  # TTPGRAPH_CYPHER_TIMEOUT of the served API
DEADLINE = TIMEOUT + 2.0  # the promise: every /cypher request ends by then
# Operator-level work (rows): Neo4j stops it at the transaction timeout.
SLOW = (
    "MATCH (a:Technique), (b:Technique), (c:Technique) "
    "WHERE a.name + b.name < c.name RETURN count(*) AS n"
)
# A list of 4 x 8^8 = 67M values built lazily in one row, then one comprehension over it: no
# screen rule catches it, and Neo4j 5.26 cannot stop it once it runs (seconds to a minute).
ZOMBIE = (
    "WITH [1, 2, 3, 4] AS l "
    + " ".join(["WITH l + l + l + l + l + l + l + l AS l"] * 8)
    + " RETURN size([x IN l WHERE x = 0]) AS n"
)
# One record of ten million values (~100 MB over Bolt): the driver decodes a record whole.
HUGE_RECORD = "UNWIND range(1, 100) AS a UNWIND range(1, 100000) AS b RETURN collect(b) AS l"


@dataclass
class Served:
    base: str
    proc: subprocess.Popen[bytes]
    keys: dict[str, str]
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30))

    def cypher(self, key: str, query: str, **extra: Any) -> tuple[httpx.Response, float]:
        t0 = time.monotonic()
        resp = self.client.post(
            self.base + "/api/v1/cypher",
            json={"query": query, **extra},
            headers={"X-API-Key": self.keys[key]},
        )
        return resp, time.monotonic() - t0

    def rss_mb(self) -> float:
        return rss_mb(self.proc.pid)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@pytest.fixture(scope="module")
def api(graph: Graph, settings: Settings, tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("hostile-api")
    store = KeyStore(home / "api-keys.json")
    names = ("alice", "bob", "carol", "dave", "erin", "zed")
    keys = {n: store.create(role="read", name=n)[1] for n in names}
    port = free_port()
    env = dict(
        os.environ,
        NEO4J_URI=settings.neo4j_uri,
        NEO4J_USER=settings.neo4j_user,
        NEO4J_PASSWORD=settings.neo4j_password,
        NEO4J_DATABASE=settings.neo4j_database,
        TTPGRAPH_CONFIG_DIR=str(home),
        TTPGRAPH_API_KEYS_FILE=str(home / "api-keys.json"),
        TTPGRAPH_API_AUTH="true",
        TTPGRAPH_CYPHER_TIMEOUT=str(TIMEOUT),
        TTPGRAPH_CYPHER_PER_KEY="1",
        TTPGRAPH_CYPHER_MAX_CONCURRENT="3",
        PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--host",
         "127.0.0.1", "--port", str(port), "--log-level", "error"],
        env=env, cwd=REPO,
    )  # fmt: skip
    served = Served(f"http://127.0.0.1:{port}", proc, keys)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if served.client.get(served.base + "/ready").status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("uvicorn did not become ready")
    # The Cypher child starts in the background; wait for its first answer.
    assert served.cypher("erin", "RETURN 1 AS one")[0].status_code == 200
    try:
        yield served
    finally:
        served.client.close()
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def endpoint_transactions(graph: Graph) -> list[dict[str, Any]]:
    return graph.read(Q.cypher_endpoint_transactions, app=APP)


def wait_until_gone(graph: Graph, owner_of: set[str] | None = None, limit: float = 2.0) -> float:
    """Seconds until Neo4j holds no endpoint transaction (of these request ids); fails past
    ``limit``."""
    t0 = time.monotonic()
    while True:
        live = [r for r in endpoint_transactions(graph)
                if owner_of is None or r["request"] in owner_of]  # fmt: skip
        if not live:
            return time.monotonic() - t0
        if time.monotonic() - t0 > limit:
            raise AssertionError(f"still in Neo4j after {limit} s: {live}")
        time.sleep(0.1)


def problem(resp: httpx.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    return resp.json()


class HealthWatch:
    """Polls /health in a thread while something hostile runs: every answer and its latency."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=5) as c:
            while not self._stop.is_set():
                t0 = time.monotonic()
                try:
                    status = c.get(self.base + "/health").status_code
                    if status != 200:
                        self.failures.append(f"status {status}")
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                self.latencies.append(time.monotonic() - t0)
                time.sleep(0.05)

    def __enter__(self) -> HealthWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def in_threads(calls: list[Any]) -> list[Any]:
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        results[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


# ---------------------------------------------------------------- refused before planning

CHAIN_200 = "MATCH (a0)" + "".join(f"-->(a{i + 1})" for i in range(200)) + " RETURN count(*)"
WITHS_60 = "MATCH (a:Tactic) " + " ".join(f"WITH a, {i} AS v{i}" for i in range(60)) + " RETURN a"

REFUSED = {
    # the 37 s query: Neo4j marked it terminated at 10 s and kept running
    "RETURN reduce(a = 0, x IN range(1, 2000000000) | a + x) AS s": "range()",
    "RETURN range(1, 20000000) AS r": f"at most {MAX_RANGE:,}",
    "WITH 2000000000 AS n RETURN size([x IN range(1, n) WHERE x = -1]) AS s": "integer literals",
    "RETURN [x IN range(1, 1000) | [y IN range(1, 1000) | x * y]] AS m": "inside another",
    "RETURN reduce(s = 'ab', i IN range(1, 40) | s + s) AS s": "accumulator",
    CHAIN_200: f"at most {MAX_RELATIONSHIP_PATTERNS}",  # the 62 s of planning
    WITHS_60: "clauses",
}


@pytest.mark.parametrize("query", list(REFUSED), ids=lambda q: q[:40])
def test_texts_neo4j_cannot_stop_are_refused_before_planning(
    api: Served, graph: Graph, query: str
) -> None:
    resp, took = api.cypher("alice", query)
    body = problem(resp, 422)
    assert REFUSED[query] in body["detail"] and body["detail"].startswith("query:")
    assert took < DEADLINE
    assert not endpoint_transactions(graph)  # it never reached Neo4j


def test_ordinary_power_user_queries_still_run(api: Served) -> None:
    ok = {
        "UNWIND range(1, 10) AS x RETURN sum(x) AS s": [[55]],
        "RETURN [x IN range(1, 5) WHERE x % 2 = 1 | x * 10] AS odd": [[[10, 30, 50]]],
        "MATCH (t:Technique {attack_id: 'T1059'})-[:IN_TACTIC]->(ta:Tactic) "
        "WHERE any(p IN t.platforms WHERE p STARTS WITH 'Win') "
        "RETURN DISTINCT ta.shortname AS tactic": [["execution"]],
    }
    for query, rows in ok.items():
        resp, _ = api.cypher("alice", query)
        assert resp.status_code == 200, resp.text
        assert resp.json()["rows"] == rows


# ---------------------------------------------------------------- deadline and Neo4j's side


def test_a_timeout_ends_the_request_and_its_transaction(api: Served, graph: Graph) -> None:
    with HealthWatch(api.base) as health:
        resp, took = api.cypher("alice", SLOW)
    body = problem(resp, 504)
    assert "2 s limit" in body["detail"] and resp.headers["retry-after"]
    assert took < DEADLINE
    wait_until_gone(graph, limit=2.0)
    assert not health.failures and health.latencies


def test_a_huge_record_never_reaches_the_worker(api: Served, graph: Graph) -> None:
    before = api.rss_mb()
    with HealthWatch(api.base) as health:
        resp, took = api.cypher("alice", HUGE_RECORD)
    assert resp.status_code in (422, 504), resp.text
    assert took < DEADLINE
    assert not health.failures and health.latencies
    assert api.rss_mb() < before + 50  # decoded in the Cypher child, not the worker
    wait_until_gone(graph, limit=2.0)
    # The child may have been replaced; the next query is answered.
    assert api.cypher("alice", "RETURN 1 AS one")[0].json()["rows"] == [[1]]


def test_answers_and_parameters_are_capped(api: Served) -> None:
    before = api.rss_mb()
    big = "x" * (900 * 1024)
    resp, took = api.cypher("bob", "UNWIND range(1, 500) AS i RETURN i, $p AS p", params={"p": big})
    body = problem(resp, 422)
    assert "8 MB" in body["detail"] and "TTPGRAPH_CYPHER_MAX_MB" in body["detail"]
    assert took < DEADLINE
    assert api.rss_mb() < before + 50
    # Parameters are data for a query, not an upload: 1 MB of request body at most.
    resp, _ = api.cypher("bob", "RETURN $p AS p", params={"p": "y" * (2 * 1024 * 1024)})
    assert "1 MB" in problem(resp, 413)["detail"]
    # Values nested past the answer's depth limit: a 422, not a RecursionError.
    resp, _ = api.cypher("bob", "RETURN reduce(l = [], x IN range(1, 300) | [l]) AS deep")
    assert "nested deeper" in problem(resp, 422)["detail"]


# ---------------------------------------------------------------- concurrency


def test_per_key_and_global_limits_answer_429(api: Served, graph: Graph) -> None:
    slow = [lambda k=k: api.cypher(k, SLOW) for k in ("alice", "bob", "carol")]
    late: dict[str, Any] = {}

    def latecomers() -> None:
        time.sleep(0.8)  # the three slow ones hold every slot by now
        late["same key"] = api.cypher("alice", "RETURN 1 AS one")[0]
        late["other key"] = api.cypher("dave", "RETURN 1 AS one")[0]

    results = in_threads([*slow, latecomers])
    assert [r[0].status_code for r in results[:3]] == [504, 504, 504]
    same = problem(late["same key"], 429)
    assert "TTPGRAPH_CYPHER_PER_KEY" in same["detail"] and int(late["same key"].headers[
        "retry-after"]) >= 1  # fmt: skip
    other = problem(late["other key"], 429)
    assert "TTPGRAPH_CYPHER_MAX_CONCURRENT" in other["detail"]
    assert late["other key"].headers["retry-after"]
    wait_until_gone(graph, limit=2.0)
    assert api.cypher("alice", "RETURN 1 AS one")[0].status_code == 200


def test_ten_hostile_requests_at_once(api: Served, graph: Graph) -> None:
    """The issue's load: 10 at once. Three run (the global limit), seven get 429 at once;
    /health answers throughout and the worker's memory stays where it was."""
    before = api.rss_mb()
    keys = ["alice", "bob", "carol", "dave", "erin"] * 2
    queries = [SLOW, HUGE_RECORD] * 5
    with HealthWatch(api.base) as health:
        results = in_threads(
            [lambda k=k, q=q: api.cypher(k, q) for k, q in zip(keys, queries, strict=True)]
        )
    statuses = sorted(r[0].status_code for r in results)
    assert statuses.count(429) >= 7 and set(statuses) <= {422, 429, 504}, statuses
    assert max(took for _, took in results) < DEADLINE
    assert not health.failures and health.latencies
    assert api.rss_mb() < before + 50
    wait_until_gone(graph, limit=2.0)


def test_work_neo4j_cannot_stop_still_counts_against_the_key(api: Served, graph: Graph) -> None:
    """The zombie: ends for the caller at the deadline, keeps a Neo4j thread for a while (5.26
    cannot stop an expression), and holds the key's slot until Neo4j lets it go."""
    resp, took = api.cypher("zed", ZOMBIE)
    assert problem(resp, 504) and took < DEADLINE
    live = {r["owner"] for r in endpoint_transactions(graph)}
    if live:  # still running in Neo4j (it takes seconds on a fast machine)
        resp, _ = api.cypher("zed", "RETURN 1 AS one")
        assert "still finishing" in problem(resp, 429)["detail"]
        assert api.cypher("bob", "RETURN 1 AS one")[0].status_code == 200
    wait_until_gone(graph, limit=120)
    assert api.cypher("zed", "RETURN 1 AS one")[0].status_code == 200


# ---------------------------------------------------------------- problem bodies


def test_problem_bodies_show_no_internals(api: Served) -> None:
    resp, _ = api.cypher("bob", "CALL db.index.fulltext.queryNodes('no_such_index', 'x')")
    body = problem(resp, 422)
    assert "java." not in body["detail"] and "Exception" not in body["detail"]
    assert "no_such_index" in body["detail"]
    # Neo4j away: a 503 that says so without saying where.
    port = free_port()
    away = Settings(neo4j_uri=f"bolt://127.0.0.1:{port}", neo4j_password="x",
                    ttpgraph_api_auth=False, ttpgraph_connect_timeout=1.0)  # fmt: skip
    with TestClient(create_app(away)) as c:
        resp = c.get("/api/v1/groups/APT29")
    assert problem(resp, 503)["detail"].startswith("Neo4j")
    for internal in ("127.0.0.1", str(port), "Errno", "ServiceUnavailable", "bolt://"):
        assert internal not in resp.text, resp.text
