"""Conformance: schemathesis generates requests from the app's own OpenAPI document and sends
them to a real uvicorn over HTTP; no answer may be a server error (5xx).

Read operations (GET, and POSTs that declare ``x-required-role: read``) run against the shared
session graph with a read key. Write operations run with a write key against a throw-away
Neo4j of their own, so generated uploads never land in the graph other tests read. Bounded:
per operation at most 20 valid and 20 invalid requests, derandomized (a fixed seed).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from api.auth import KeyStore
from loader.load import load_file
from queries.graph import Graph
from queries.settings import Settings

from .conftest import ICS_21, REPO, free_port, throwaway_server

MAX_EXAMPLES = 20
# Operations that fetch from the network on the server's behalf: never fuzzed (none yet).
NETWORK_OPERATIONS: set[tuple[str, str]] = set()


class Api:
    """uvicorn serving api.app in a second process, on a free loopback port."""

    def __init__(self, settings: Settings, keys_file: Path) -> None:
        self.port = free_port()
        env = dict(
            os.environ,
            NEO4J_URI=settings.neo4j_uri,
            NEO4J_USER=settings.neo4j_user,
            NEO4J_PASSWORD=settings.neo4j_password,
            NEO4J_DATABASE=settings.neo4j_database,
            TTPGRAPH_API_AUTH="true",
            TTPGRAPH_API_KEYS_FILE=str(keys_file),
            TTPGRAPH_QUERY_TIMEOUT="20",
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory",
             "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"],
            cwd=REPO, env=env,
        )  # fmt: skip
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"uvicorn exited with {self.proc.returncode}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    break
            time.sleep(0.2)
        assert httpx.get(self.base + "/ready", timeout=30).status_code == 200

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    path = tmp_path_factory.mktemp("schemathesis-keys") / "api-keys.json"
    store = KeyStore(path)
    return path, {
        "read": store.create(role="read", name="schemathesis")[1],
        "write": store.create(role="write", name="schemathesis")[1],
    }


@pytest.fixture(scope="module")
def read_api(graph: Graph, settings: Settings, keys: tuple[Path, dict[str, str]]) -> Iterator[Api]:
    api = Api(settings, keys[0])
    try:
        yield api
    finally:
        api.close()


@pytest.fixture(scope="module")
def write_schema(
    tmp_path_factory: pytest.TempPathFactory, keys: tuple[Path, dict[str, str]]
) -> Iterator[Any]:
    """The API over a throw-away Neo4j (ICS loaded) for write operations: generated uploads
    never land in the session graph other tests read."""
    home = tmp_path_factory.mktemp("neo4j-schemathesis")
    with throwaway_server(
        home, label="schemathesis", heap="512m", pagecache="128m", timeout=240
    ) as (_, own):
        api = None
        try:
            with Graph.connect(own) as g:
                load_file(g, str(ICS_21))
            api = Api(own, keys[0])
            yield schemathesis.openapi.from_url(api.base + "/openapi.json")
        finally:
            if api is not None:
                api.close()


def _bare_app() -> Any:
    from api.app import create_app

    return create_app(Settings(neo4j_uri="bolt://127.0.0.1:1"))


def operations(role: str) -> list[tuple[str, str]]:
    """(METHOD, path) of every operation needing ``role``, from the app's OpenAPI document
    (no database needed to describe the API)."""
    spec = _bare_app().openapi()
    return [
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if isinstance(op, dict)
        and (op.get("x-required-role") or ("read" if method == "get" else "write")) == role
        and (method.upper(), path) not in NETWORK_OPERATIONS
    ]


def fuzz(schema: Any, method: str, path: str, key: str) -> None:
    """Up to MAX_EXAMPLES valid and MAX_EXAMPLES invalid requests; no answer may be a 5xx."""
    operation = schema[path][method]
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

        @given(case=operation.as_strategy(generation_mode=mode))
        @BOUNDED
        def check(case: Any) -> None:
            case.call_and_validate(
                headers={"X-API-Key": key}, checks=[not_a_server_error], timeout=60
            )

        try:
            check()
        except Unsatisfiable:
            # No invalid request exists for an operation without parameters or body.
            assert mode == GenerationMode.NEGATIVE, f"{method} {path}: no valid request"


BOUNDED = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def read_schema(read_api: Api) -> Any:
    return schemathesis.openapi.from_url(read_api.base + "/openapi.json")


READS = operations("read")


@pytest.mark.parametrize(("method", "path"), READS, ids=[f"{m} {p}" for m, p in READS])
def test_read_operation_has_no_server_errors(
    read_schema: Any, keys: tuple[Path, dict[str, str]], method: str, path: str
) -> None:
    fuzz(read_schema, method, path, keys[1]["read"])


WRITES = [pytest.param(m, p, id=f"{m} {p}") for m, p in operations("write")] or [
    pytest.param("-", "-", id="none", marks=pytest.mark.skip(reason="no write operations yet"))
]


@pytest.mark.parametrize(("method", "path"), WRITES)
def test_write_operation_has_no_server_errors(
    write_schema: Any, keys: tuple[Path, dict[str, str]], method: str, path: str
) -> None:
    fuzz(write_schema, method, path, keys[1]["write"])
