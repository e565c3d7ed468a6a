"""The HTTP API as a product: API keys, limits, pagination, timeouts, the read-only Cypher
endpoint (writes refused, graph unchanged), the response cache and the error model."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.auth import KeyStore, Role
from api.serve import ServeError, check_bind, serve
from queries.graph import AsyncGraph, Graph, QueryTimeout
from queries.settings import Settings

from .bundle_facts import group_direct_techniques, objects
from .conftest import ENTERPRISE, SESSION_BUNDLES

# Rows (operator-level work), which Neo4j stops at the transaction timeout; a huge range() is
# refused by the Cypher endpoint before it runs.
SLOW_QUERY = (
    "MATCH (a:Technique), (b:Technique), (c:Technique) "
    "WHERE a.name + b.name < c.name RETURN count(*) AS n"
)


@pytest.fixture(scope="module")
def keys_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("apikeys") / "api-keys.json"


@pytest.fixture(scope="module")
def product_settings(settings: Settings, keys_file: Path) -> Settings:
    return settings.model_copy(
        update={
            "ttpgraph_api_auth": True,
            "ttpgraph_api_keys_file": str(keys_file),
            "ttpgraph_max_body_mb": 1.0,
            "ttpgraph_max_upload_mb": 2.0,
            "ttpgraph_cypher_max_rows": 50,
            "ttpgraph_cypher_timeout": 1.0,
        }
    )


@pytest.fixture(scope="module")
def keys(keys_file: Path) -> dict[str, str]:
    store = KeyStore(keys_file)
    _, read = store.create(role="read", name="analyst")
    _, write = store.create(role=Role.write, name="loader")
    return {"read": read, "write": write}


@pytest.fixture(scope="module")
def client(graph: Graph, product_settings: Settings):
    app = create_app(product_settings)

    # Two test-only routes: a write (no role declared) and a failure nobody planned for.
    @app.post("/api/v1/_test/write")
    def _write() -> dict[str, str]:
        return {"written": "no, but allowed"}

    @app.get("/api/v1/_test/boom")
    def _boom() -> dict[str, str]:
        raise RuntimeError("a bug")

    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def H(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


def is_problem(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body = resp.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


# ---------------------------------------------------------------- auth


def test_open_endpoints_need_no_key(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json() == {"status": "ready"}
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/docs").status_code == 200


def test_no_key_or_bad_key_is_401(client: TestClient, keys: dict[str, str]) -> None:
    body = is_problem(client.get("/api/v1/releases"), 401)
    assert "X-API-Key" in body["detail"]
    resp = client.get("/api/v1/releases", headers=H(keys["read"] + "x"))
    is_problem(resp, 401)
    assert resp.headers["www-authenticate"].startswith("Bearer")
    for bogus in ("", "Bearer", "ttpg_nothere_abc", "not-a-key"):
        assert client.get("/api/v1/releases", headers={"X-API-Key": bogus}).status_code == 401
    # Unknown paths: 401 before 404, so the key is checked before anything is said.
    is_problem(client.get("/api/v1/no-such-thing"), 401)
    is_problem(client.get("/api/v1/no-such-thing", headers=H(keys["read"])), 404)


def test_read_key_in_either_header(client: TestClient, keys: dict[str, str]) -> None:
    a = client.get("/api/v1/releases", headers=H(keys["read"]))
    b = client.get("/api/v1/releases", headers={"Authorization": f"Bearer {keys['read']}"})
    assert a.status_code == b.status_code == 200
    assert a.json() == b.json()
    assert {r["domain"] for r in a.json()} == {"enterprise-attack", "mobile-attack", "ics-attack"}


def test_writes_need_a_write_key(client: TestClient, keys: dict[str, str]) -> None:
    body = is_problem(client.post("/api/v1/_test/write", headers=H(keys["read"])), 403)
    assert "write key" in body["detail"] and "analyst" in body["detail"]
    assert client.post("/api/v1/_test/write", headers=H(keys["write"])).status_code == 200
    # A write key reads too; the Cypher endpoint is a POST that only reads.
    assert client.get("/api/v1/releases", headers=H(keys["write"])).status_code == 200
    resp = client.post("/api/v1/cypher", json={"query": "RETURN 1 AS one"}, headers=H(keys["read"]))
    assert resp.status_code == 200 and resp.json()["rows"] == [[1]]


def test_revocation_is_immediate(client: TestClient, keys_file: Path) -> None:
    store = KeyStore(keys_file)
    key, token = store.create(role="read", name="temp")
    assert client.get("/api/v1/status", headers=H(token)).status_code == 200
    store.revoke(key.id)
    is_problem(client.get("/api/v1/status", headers=H(token)), 401)
    listed = {k.id: k for k in store.list_keys()}
    assert listed[key.id].revoked and listed[key.id].revoked_at


def test_keys_are_stored_hashed(keys_file: Path, keys: dict[str, str]) -> None:
    raw = keys_file.read_text()
    assert keys["read"] not in raw and keys["write"] not in raw
    assert oct(keys_file.stat().st_mode & 0o777) == "0o600"
    data = json.loads(raw)
    assert all(k["hash"].startswith("sha256:") for k in data["keys"])


def test_openapi_documents_security(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["ApiKey"]["name"] == "X-API-Key"
    assert spec["paths"]["/health"]["get"]["security"] == []
    releases = spec["paths"]["/api/v1/releases"]["get"]
    assert releases["x-required-role"] == "read" and {"ApiKey": []} in releases["security"]
    cypher = spec["paths"]["/api/v1/cypher"]["post"]
    assert cypher["x-required-role"] == "read"
    assert spec["paths"]["/api/v1/_test/write"]["post"]["x-required-role"] == "write"
    for code in ("401", "403", "503", "504"):
        assert code in releases["responses"]


def test_auth_off_answers_loopback_only(graph: Graph, settings: Settings) -> None:
    open_settings = settings.model_copy(update={"ttpgraph_api_auth": False})
    app = create_app(open_settings)
    with TestClient(app) as local:
        assert local.get("/api/v1/releases").status_code == 200
    # The same app reached over a network address: refused.
    with TestClient(app, base_url="http://10.0.0.7") as remote:
        body = is_problem(remote.get("/api/v1/releases"), 403)
        assert "loopback" in body["detail"]


def test_serve_refuses_no_auth_off_loopback() -> None:
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        check_bind(host, auth=False)
    for host in ("0.0.0.0", "::", "10.1.2.3", "example.org"):
        check_bind(host, auth=True)
        with pytest.raises(ServeError, match="refusing to serve without authentication"):
            check_bind(host, auth=False)
    cli = typer.Typer()
    cli.command()(serve)
    cli.command("noop")(lambda: None)
    result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0", "--no-auth"])
    assert result.exit_code == 1
    assert "refusing to serve without authentication on 0.0.0.0" in result.output


def test_apikey_cli(tmp_path: Path) -> None:
    from api import cli_apikey  # noqa: F401 - registers the commands
    from api.cli import app as cli_app

    env = {"TTPGRAPH_API_KEYS_FILE": str(tmp_path / "k.json")}
    runner = CliRunner()

    def run(*args: str) -> Any:
        from queries.settings import get_settings

        get_settings.cache_clear()
        old = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            return runner.invoke(cli_app, list(args))
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            get_settings.cache_clear()

    made = run("apikey", "create", "--role", "write", "--name", "ci", "--format", "json")
    assert made.exit_code == 0, made.output
    created = json.loads(made.stdout)
    assert created["role"] == "write" and created["key"].startswith("ttpg_")
    assert KeyStore(tmp_path / "k.json").verify(created["key"]) is not None
    listed = json.loads(run("apikey", "list", "--format", "json").stdout)
    assert [k["id"] for k in listed] == [created["id"]] and "key" not in listed[0]
    assert run("apikey", "revoke", created["id"]).exit_code == 0
    assert KeyStore(tmp_path / "k.json").verify(created["key"]) is None
    bad = run("apikey", "revoke", "nope")
    assert bad.exit_code == 1 and "no such key" in bad.output
    assert run("apikey", "create", "--role", "admin").exit_code != 0


# ---------------------------------------------------------------- limits


def test_body_too_large_is_413(client: TestClient, keys: dict[str, str]) -> None:
    big = json.dumps({"query": "RETURN 1", "params": {"x": "y" * (2 * 1024 * 1024)}})
    body = is_problem(client.post("/api/v1/cypher", content=big, headers={
        **H(keys["read"]), "content-type": "application/json"}), 413)  # fmt: skip
    assert "1 MB" in body["detail"]

    def chunks():  # no Content-Length: counted as it streams
        for _ in range(3):
            yield b"x" * (512 * 1024)

    resp = client.post("/api/v1/cypher", content=chunks(),
                       headers={**H(keys["read"]), "content-type": "application/json"})  # fmt: skip
    is_problem(resp, 413)
    # Multipart uploads have their own, larger limit.
    files = {"f": ("a.json", b"x" * (1536 * 1024), "application/json")}
    resp = client.post("/api/v1/_test/write", files=files, headers=H(keys["write"]))
    assert resp.status_code == 200
    files = {"f": ("a.json", b"x" * (3 * 1024 * 1024), "application/json")}
    is_problem(client.post("/api/v1/_test/write", files=files, headers=H(keys["write"])), 413)


def test_long_url_is_414(client: TestClient, keys: dict[str, str]) -> None:
    resp = client.get("/api/v1/releases", params={"x": "y" * 9000}, headers=H(keys["read"]))
    is_problem(resp, 414)


def test_too_many_actors_is_422_naming_the_field(client: TestClient, keys: dict[str, str]) -> None:
    many = [f"G{i:04d}" for i in range(1, 52)]
    resp = client.get("/api/v1/compare", params={"actor": many}, headers=H(keys["read"]))
    body = is_problem(resp, 422)
    assert body["errors"][0]["loc"] == ["query", "actor"]


def test_pagination_with_cursor(client: TestClient, keys: dict[str, str]) -> None:
    full = client.get("/api/v1/releases", headers=H(keys["read"])).json()
    assert "link" not in {k.lower() for k in client.get("/api/v1/releases",
                          headers=H(keys["read"])).headers}  # fmt: skip
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 1}
    for _ in range(10):
        resp = client.get("/api/v1/releases", params=params, headers=H(keys["read"]))
        assert resp.status_code == 200
        seen += [r["domain"] for r in resp.json()]
        cursor = resp.headers.get("x-next-cursor")
        if not cursor:
            break
        assert f"cursor={cursor}" in resp.headers["link"] and 'rel="next"' in resp.headers["link"]
        params = {"limit": 1, "cursor": cursor}
    assert seen == sorted(r["domain"] for r in full) == sorted(set(seen))
    two = client.get("/api/v1/releases", params={"limit": 2}, headers=H(keys["read"]))
    assert [r["domain"] for r in two.json()] == seen[:2]
    body = is_problem(client.get("/api/v1/releases", params={"cursor": "!!"},
                                 headers=H(keys["read"])), 422)  # fmt: skip
    assert body["detail"].startswith("cursor:")


def test_query_timeout_is_504(client: TestClient, keys: dict[str, str], settings: Settings) -> None:
    body = is_problem(client.post("/api/v1/cypher", json={"query": SLOW_QUERY},
                                  headers=H(keys["read"])), 504)  # fmt: skip
    assert body["type"].endswith("/querytimeout")
    # The services' reads carry the same per-query timeout to Neo4j.
    quick = Graph.connect(settings.model_copy(update={"ttpgraph_query_timeout": 0.5}))
    try:
        with pytest.raises(QueryTimeout):
            quick.read(SLOW_QUERY)
    finally:
        quick.close()


# ---------------------------------------------------------------- read-only Cypher


def fingerprint(graph: Graph) -> dict[str, Any]:
    """What a write of any kind would change: counts, labels, types, keys, indexes, users."""
    with graph.driver.session(database=graph.database) as s:
        nodes = s.run("MATCH (n) RETURN count(n) AS c").single()["c"]
        rels = s.run("MATCH ()-[r]->() RETURN count(r) AS c").single()["c"]
        props = s.run("MATCH (n:Group) RETURN sum(size(keys(n))) AS c, "
                      "collect(n.name)[..20] AS names").single().data()  # fmt: skip
        labels = sorted(r["label"] for r in s.run("CALL db.labels()"))
        types = sorted(r["relationshipType"] for r in s.run("CALL db.relationshipTypes()"))
        pkeys = sorted(r["propertyKey"] for r in s.run("CALL db.propertyKeys()"))
        indexes = sorted(r["name"] for r in s.run("SHOW INDEXES YIELD name"))
    with graph.driver.session(database="system") as s:
        users = sorted(r["user"] for r in s.run("SHOW USERS YIELD user"))
    return {"nodes": nodes, "rels": rels, "props": props, "labels": labels, "types": types,
            "keys": pkeys, "indexes": indexes, "users": users}  # fmt: skip


WRITES = [
    "CREATE (x:EvilNode {name: 'x'}) RETURN x",
    "MERGE (x:EvilNode {name: 'x'}) RETURN x",
    "MATCH (g:Group {attack_id: 'G0016'}) DETACH DELETE g",
    "MATCH (g:Group {attack_id: 'G0016'}) DELETE g",
    "MATCH (g:Group {attack_id: 'G0016'}) SET g.name = 'pwned'",
    "MATCH (g:Group {attack_id: 'G0016'}) SET g:EvilLabel",
    "MATCH (g:Group {attack_id: 'G0016'}) REMOVE g.name",
    "MATCH (g:Group {attack_id: 'G0016'}) REMOVE g:Group",
    "MATCH (g:Group {attack_id: 'G0016'}) CREATE (g)-[:EVIL_REL]->(g)",
    "FOREACH (i IN range(1, 3) | CREATE (:EvilNode))",
    "LOAD CSV FROM 'file:///etc/passwd' AS row RETURN row",
    "LOAD CSV FROM 'http://127.0.0.1:1/x.csv' AS row CREATE (:EvilNode {v: row[0]})",
    "CALL dbms.components()",
    "CALL dbms.listConfig()",
    "CALL dbms.killConnections(['bolt-1'])",
    "CALL db.createLabel('EvilLabel')",
    "CALL db.createProperty('evilKey')",
    "CALL db.createRelationshipType('EVIL_REL')",
    "CALL db.clearQueryCaches()",
    "CALL apoc.create.node(['EvilNode'], {})",
    "CALL apoc.periodic.iterate('MATCH (n) RETURN n', 'DETACH DELETE n', {})",
    "CREATE INDEX evil_index FOR (n:EvilNode) ON (n.name)",
    "CREATE CONSTRAINT evil_constraint FOR (n:EvilNode) REQUIRE n.name IS UNIQUE",
    "DROP INDEX group_attack_id IF EXISTS",
    "CREATE USER evil SET PASSWORD 'evil-password-1'",
    "ALTER USER neo4j SET PASSWORD 'evil-password-1'",
    "SHOW USERS",
    "SHOW SETTINGS",
    "SHOW TRANSACTIONS",
    "TERMINATE TRANSACTIONS 'neo4j-transaction-1'",
    "USE system SHOW USERS",
    "USE system CREATE USER evil SET PASSWORD 'evil-password-1'",
    "CREATE DATABASE evil",
    "UNWIND [1, 2] AS i CALL { WITH i CREATE (:EvilNode {i: i}) } IN TRANSACTIONS",
    "CALL { MATCH (g:Group) RETURN g } IN TRANSACTIONS RETURN count(*)",
    "MATCH (n) RETURN count(n); CREATE (:EvilNode)",
    "CREATE (:EvilNode); MATCH (n) RETURN count(n)",
    "MATCH (g:Group {attack_id: $id}) SET g.name = $name RETURN g",
]


def test_cypher_refuses_every_write_and_the_graph_is_unchanged(
    client: TestClient, graph: Graph, keys: dict[str, str]
) -> None:
    before = fingerprint(graph)
    for key in ("read", "write"):  # even a write key gets a read-only endpoint
        for query in WRITES:
            payload = {"query": query, "params": {"id": "G0016", "name": "x"}}
            resp = client.post("/api/v1/cypher", headers=H(keys[key]), json=payload)
            assert 400 <= resp.status_code < 500, (query, resp.status_code, resp.text)
            assert resp.headers["content-type"].startswith("application/problem+json"), query
            assert resp.json()["detail"].startswith("query"), (query, resp.json())
    assert fingerprint(graph) == before


def test_neo4j_itself_refuses_writes_in_read_mode(graph: Graph, product_settings: Settings) -> None:
    """The second lock alone: without the plan screen, READ access mode still refuses writes."""
    import asyncio

    from queries.graph import Forbidden
    from queries.user_cypher import run_read_only

    async def attempt() -> list[str]:
        agraph = AsyncGraph.connect(product_settings)
        refused = []
        try:
            for query in ("CREATE (x:EvilNode) RETURN x", "MATCH (g:Group) SET g.evil = 1",
                          "CALL db.createLabel('EvilLabel')",
                          "CREATE INDEX evil_index FOR (n:EvilNode) ON (n.name)",
                          "CREATE USER evil SET PASSWORD 'evil-password-1'"):  # fmt: skip
                with pytest.raises(Forbidden, match="read-only transaction") as info:
                    await run_read_only(
                        agraph, query, max_rows=5, timeout=5, max_bytes=2**20, screen=False
                    )
                refused.append(str(info.value))
        finally:
            await agraph.close()
        return refused

    before = fingerprint(graph)
    assert len(asyncio.run(attempt())) == 5
    assert fingerprint(graph) == before


def test_cypher_answers_with_parameters(client: TestClient, keys: dict[str, str]) -> None:
    expected: set[str] = set()
    for bundle in SESSION_BUNDLES:
        with contextlib.suppress(StopIteration):  # not every domain has APT29
            expected |= group_direct_techniques(bundle, "G0016")
    query = (
        "MATCH (g:Group {attack_id: $group})-[:USES]->(t:Technique) "
        "WHERE NOT t.revoked AND NOT t.deprecated RETURN DISTINCT t.attack_id AS id"
    )
    payload = {"query": query, "params": {"group": "G0016"}, "limit": 50}
    resp = client.post("/api/v1/cypher", headers=H(keys["read"]), json=payload)
    body = resp.json()
    assert resp.status_code == 200 and body["columns"] == ["id"]
    assert len(expected) > 50  # APT29 uses 66 techniques directly in 18.1
    assert body["limit"] == 50 and body["row_count"] == 50 and body["truncated"] is True
    assert len({r[0] for r in body["rows"]}) == 50 and {r[0] for r in body["rows"]} <= expected
    count = query.replace("RETURN DISTINCT t.attack_id AS id", "RETURN count(DISTINCT t) AS n")
    resp = client.post("/api/v1/cypher", headers=H(keys["read"]),
                       json={"query": count, "params": {"group": "G0016"}})  # fmt: skip
    assert resp.json()["rows"] == [[len(expected)]]


def test_cypher_serializes_graph_values(client: TestClient, keys: dict[str, str]) -> None:
    apt29 = next(o for o in objects(ENTERPRISE) if o["type"] == "intrusion-set"
                 and o["name"] == "APT29")  # fmt: skip
    query = (
        "MATCH p = (g:Group {attack_id: 'G0016'})-[u:USES]->(t:Technique) "
        "RETURN g, u, p, date('2024-01-02') AS d, point({x: 1, y: 2}) AS pt LIMIT 1"
    )
    body = client.post("/api/v1/cypher", json={"query": query}, headers=H(keys["read"])).json()
    g, u, p, d, pt = body["rows"][0]
    assert "Group" in g["labels"] and g["properties"]["name"] == "APT29"
    assert set(g["properties"]["aliases"]) == set(apt29["aliases"])
    assert u["type"] == "USES" and u["start"] == g["element_id"]
    assert [n["element_id"] for n in p["nodes"]] == [g["element_id"], u["end"]]
    assert d == "2024-01-02" and pt == {"srid": 7203, "x": 1.0, "y": 2.0}


def test_cypher_bad_input(client: TestClient, keys: dict[str, str]) -> None:
    def post(payload: Any) -> Any:
        return client.post("/api/v1/cypher", json=payload, headers=H(keys["read"]))

    assert "query" in is_problem(post({"query": "MATCH (n RETURN n"}), 422)["detail"]
    assert "params.x" in is_problem(post({"query": "RETURN $x", "params": {"x": 2**70}}),
                                    422)["detail"]  # fmt: skip
    assert "params" in is_problem(post({"query": "RETURN 1", "params": [1]}), 422)["detail"]
    is_problem(post({"query": "RETURN 1", "params": {"a b": 1}}), 422)
    is_problem(post({"query": ""}), 422)
    is_problem(post({"query": "RETURN 1", "extra": 1}), 422)
    assert "limit" in is_problem(post({"query": "RETURN 1", "limit": 51}), 422)["detail"]
    is_problem(post({"query": "RETURN $missing"}), 422)
    many = post({"query": "UNWIND range(1, 100000) AS i RETURN i"}).json()
    assert many["row_count"] == 50 and many["truncated"] is True


# ---------------------------------------------------------------- cache and errors


def test_response_cache_and_etag(client: TestClient, keys: dict[str, str]) -> None:
    url = "/api/v1/groups/APT29/profile"
    plain = {**H(keys["read"]), "Accept-Encoding": "identity"}
    first = client.get(url, headers=plain)
    second = client.get(url, headers=plain)
    assert first.status_code == second.status_code == 200
    assert second.headers["x-cache"] == "hit" and second.content == first.content
    assert "content-encoding" not in second.headers
    etag = second.headers["etag"]
    assert etag == first.headers["etag"]
    again = client.get(url, headers={**plain, "If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    # gzip for clients that take it: the same document, another representation and ETag.
    gz = client.get(url, headers={**H(keys["read"]), "Accept-Encoding": "gzip"})
    assert gz.headers["content-encoding"] == "gzip" and gz.json() == first.json()
    assert gz.headers["etag"] != etag and gz.headers["vary"] == "Accept-Encoding"
    assert int(gz.headers["content-length"]) < len(first.content) / 4
    # No key, no cached answer.
    is_problem(client.get(url), 401)


def test_unexpected_errors_are_problems_without_internals(
    client: TestClient, keys: dict[str, str]
) -> None:
    body = is_problem(client.get("/api/v1/_test/boom", headers=H(keys["read"])), 500)
    assert "a bug" not in json.dumps(body) and "Traceback" not in json.dumps(body)
