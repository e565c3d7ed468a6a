"""A real Neo4j for the whole test session, loaded once with the real ATT&CK bundles.

The server is ttpgraph's own (Neo4j Community from Maven Central), started in a temporary folder
on free loopback ports, and stopped at the end of the session — or by its watchdog if the test
process dies. In CI a server that cannot start fails the run; it is never skipped.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from loader import neo4j_server as srv
from loader.load import load_file
from queries.graph import Graph
from queries.settings import Settings

REPO = Path(__file__).resolve().parent.parent
ATTACK = Path(os.environ.get("TTPGRAPH_ATTACK_DIR", REPO.parent / "shared" / "attack"))
CORPORA = Path(os.environ.get("TTPGRAPH_CORPORA_DIR", REPO.parent / "shared" / "corpora"))
ENTERPRISE = ATTACK / "enterprise-attack-18.1.json"
ENTERPRISE_17 = ATTACK / "enterprise-attack-17.1.json"
MOBILE = ATTACK / "mobile-attack-18.1.json"
ICS = ATTACK / "ics-attack-18.1.json"
ICS_21 = ATTACK / "stix21" / "ics-attack-18.1.json"
# The session graph holds these three, side by side (ICS as STIX 2.1).
SESSION_BUNDLES = [ENTERPRISE, MOBILE, ICS_21]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def throwaway_server(
    home: Path,
    *,
    label: str = "own",
    heap: str = "1g",
    pagecache: str = "256m",
    timeout: float = 180,
    conf: dict[str, str] | None = None,
) -> Iterator[tuple[srv.ServerConfig, Settings]]:
    """A Neo4j of the caller's own, in ``home`` on free loopback ports, with a fresh password;
    stopped at the end, or by its watchdog if the test process dies. ``conf``: neo4j.conf
    settings of its own (a low transaction memory limit...)."""
    cfg = srv.ServerConfig(
        home=home,
        bolt_port=free_port(),
        http_port=free_port(),
        heap=heap,
        pagecache=pagecache,
        password=f"ttpgraph-{label}-" + os.urandom(4).hex(),
        settings=dict(conf or {}),
    )
    srv.install(cfg)
    srv.start(cfg, timeout=timeout, watch_pid=os.getpid())
    try:
        yield (
            cfg,
            Settings(
                neo4j_uri=cfg.bolt_uri,
                neo4j_user="neo4j",
                neo4j_password=cfg.password or "",
                neo4j_database="neo4j",
            ),
        )
    finally:
        srv.stop(cfg)


@pytest.fixture(scope="session")
def neo4j_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[srv.ServerConfig]:
    with throwaway_server(tmp_path_factory.mktemp("neo4j-home"), label="test") as (cfg, _):
        yield cfg


@pytest.fixture(scope="session")
def settings(neo4j_server: srv.ServerConfig) -> Settings:
    return Settings(
        neo4j_uri=neo4j_server.bolt_uri,
        neo4j_user="neo4j",
        neo4j_password=neo4j_server.password or "",
        neo4j_database="neo4j",
    )


@pytest.fixture(scope="session")
def graph(settings: Settings) -> Iterator[Graph]:
    g = Graph.connect(settings)
    g.write("MATCH (n) DETACH DELETE n")
    for bundle in SESSION_BUNDLES:
        load_file(g, str(bundle))
    yield g
    g.close()


@pytest.fixture(scope="session")
def mitre_data():
    """mitreattack-python's in-memory view of Enterprise 18.1: the dev-only test oracle."""
    from mitreattack.stix20 import MitreAttackData

    return MitreAttackData(str(ENTERPRISE))
