"""Neo4j goes away and comes back: the API answers 503 problem+json meanwhile and recovers by
itself. Runs its own throw-away Neo4j (the session server is shared and never stopped), which
also shows the response cache following a reload."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from loader import neo4j_server as srv
from loader.load import load_file
from queries.graph import Graph
from queries.settings import Settings

from .conftest import ICS_21, MOBILE, throwaway_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[srv.ServerConfig]:
    home = tmp_path_factory.mktemp("neo4j-resilience")
    with throwaway_server(home, label="resilience", heap="512m", pagecache="128m", timeout=240) as (
        cfg,
        _,
    ):
        yield cfg


@pytest.fixture(scope="module")
def own_settings(own_server: srv.ServerConfig) -> Settings:
    return Settings(
        neo4j_uri=own_server.bolt_uri,
        neo4j_user="neo4j",
        neo4j_password=own_server.password or "",
        neo4j_database="neo4j",
        ttpgraph_api_auth=False,  # in-process client: loopback use
    )


@pytest.fixture(scope="module")
def own_graph(own_settings: Settings) -> Iterator[Graph]:
    g = Graph.connect(own_settings)
    load_file(g, str(ICS_21))
    yield g
    g.close()


@pytest.fixture(scope="module")
def client(own_graph: Graph, own_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(own_settings)) as c:
        yield c


def domains(resp: Any) -> set[str]:
    return {r["domain"] for r in resp.json()}


def wait_for(client: TestClient, path: str, status: int, timeout: float) -> float:
    """Seconds until ``path`` answers ``status`` (fails after ``timeout``)."""
    t0 = time.monotonic()
    last = None
    while time.monotonic() - t0 < timeout:
        last = client.get(path)
        if last.status_code == status:
            return time.monotonic() - t0
        time.sleep(0.5)
    raise AssertionError(f"{path} still {last.status_code if last else '-'} after {timeout} s")


def assert_unavailable(client: TestClient) -> None:
    for path in ("/api/v1/releases", "/api/v1/status", "/ready"):
        t0 = time.monotonic()
        resp = client.get(path)
        took = time.monotonic() - t0
        assert resp.status_code == 503, (path, resp.status_code, resp.text)
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert resp.json()["status"] == 503 and resp.headers["retry-after"]
        assert took < 20, f"{path} took {took:.1f} s to say 503"
    assert client.get("/health").json() == {"status": "ok"}


def test_cache_follows_a_reload(client: TestClient, own_graph: Graph) -> None:
    first = client.get("/api/v1/releases", headers={"Accept-Encoding": "identity"})
    assert first.status_code == 200 and domains(first) == {"ics-attack"}
    again = client.get("/api/v1/releases", headers={"If-None-Match": first.headers["etag"],
                                                    "Accept-Encoding": "identity"})  # fmt: skip
    assert again.status_code == 304
    load_file(own_graph, str(MOBILE))  # a write: the graph's data version moves
    after = client.get("/api/v1/releases", headers={"If-None-Match": first.headers["etag"],
                                                    "Accept-Encoding": "identity"})  # fmt: skip
    assert after.status_code == 200 and after.headers["x-cache"] == "miss"
    assert domains(after) == {"ics-attack", "mobile-attack"}
    assert after.headers["etag"] != first.headers["etag"]


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_neo4j_away_is_503_and_the_api_recovers(
    client: TestClient, own_server: srv.ServerConfig, how: str
) -> None:
    before = client.get("/api/v1/releases")
    assert before.status_code == 200
    assert client.get("/api/v1/releases").headers["x-cache"] == "hit"
    if how == "stop":
        srv.stop(own_server)
    else:
        srv.kill(own_server)
    try:
        assert_unavailable(client)
    finally:
        srv.start(own_server, timeout=240, watch_pid=os.getpid())
    # The same app, no restart: it finds Neo4j again by itself.
    wait_for(client, "/ready", 200, timeout=60)
    wait_for(client, "/api/v1/releases", 200, timeout=60)
    resp = client.get("/api/v1/releases")
    assert resp.json() == before.json()
    assert client.get("/api/v1/status").status_code == 200
