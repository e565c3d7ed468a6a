"""Shared benchmark plumbing: a throw-away Neo4j of ttpgraph's own, on free loopback ports."""

from __future__ import annotations

import os
import socket
import statistics
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from loader import neo4j_server as srv
from queries.settings import Settings

REPO = Path(__file__).resolve().parent.parent
ATTACK = Path(os.environ.get("TTPGRAPH_ATTACK_DIR", REPO.parent / "shared" / "attack"))
ENTERPRISE = ATTACK / "enterprise-attack-18.1.json"


_SERVERS: dict[str, srv.ServerConfig] = {}


def described(doc: str | None) -> str:
    """A benchmark's ``--help`` description: its docstring's first paragraph, as one line."""
    return " ".join((doc or "").split("\n\n")[0].split())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def bench_server(heap: str = "2g", pagecache: str = "512m") -> Iterator[Settings]:
    with tempfile.TemporaryDirectory(prefix="ttpgraph-bench-") as home:
        cfg = srv.ServerConfig(
            home=Path(home),
            bolt_port=free_port(),
            http_port=free_port(),
            heap=heap,
            pagecache=pagecache,
            password="bench-" + os.urandom(4).hex(),
        )
        srv.install(cfg)
        srv.start(cfg, timeout=180, watch_pid=os.getpid())
        _SERVERS[cfg.bolt_uri] = cfg
        try:
            yield Settings(neo4j_uri=cfg.bolt_uri, neo4j_password=cfg.password or "")
        finally:
            _SERVERS.pop(cfg.bolt_uri, None)
            srv.stop(cfg)


def server_cpu_seconds(settings: Settings) -> float:
    """CPU seconds (user + system) the benchmark's Neo4j process has used so far."""
    pid = srv.running_pid(_SERVERS[settings.neo4j_uri])
    if pid is None:
        return float("nan")
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def summary(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    p95 = values[min(len(values) - 1, int(round(0.95 * (len(values) - 1))))]
    return {
        "median": statistics.median(values),
        "p95": p95,
        "min": values[0],
        "max": values[-1],
        "n": len(values),
    }
