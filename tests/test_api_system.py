"""API skeleton: health, readiness, releases, OpenAPI, problem+json."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from queries.settings import Settings

from .bundle_facts import expected_counts
from .conftest import ENTERPRISE


@pytest.fixture(scope="module")
def client(graph, settings: Settings, tmp_path_factory: pytest.TempPathFactory):
    """The app as deployed (API keys on), called with a read key."""
    from api.auth import KeyStore

    keys_file = tmp_path_factory.mktemp("apikeys") / "api-keys.json"
    _, read_key = KeyStore(keys_file).create(role="read", name="actors-test")
    keyed = settings.model_copy(
        update={"ttpgraph_api_auth": True, "ttpgraph_api_keys_file": str(keys_file)}
    )
    with TestClient(create_app(keyed), headers={"X-API-Key": read_key}) as c:
        yield c


def test_health(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}


def test_ready(client: TestClient) -> None:
    assert client.get("/ready").json() == {"status": "ready"}


def test_releases(client: TestClient) -> None:
    resp = client.get("/api/v1/releases")
    assert resp.status_code == 200
    data = {r["domain"]: r for r in resp.json()}
    assert set(data) == {"enterprise-attack", "mobile-attack", "ics-attack"}
    assert data["enterprise-attack"]["version"] == "18.1"
    assert data["ics-attack"]["spec_version"] == "2.1"
    assert data["enterprise-attack"]["counts"] == {
        k: v for k, v in expected_counts(ENTERPRISE).items() if v
    } | {k: 0 for k, v in data["enterprise-attack"]["counts"].items() if not v}


def test_openapi_and_docs(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "/api/v1/releases" in spec["paths"]
    assert client.get("/docs").status_code == 200


def test_unknown_path_is_problem_json(client: TestClient) -> None:
    resp = client.get("/api/v1/nope")
    assert resp.status_code == 404
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["status"] == 404


def test_validation_error_names_the_field(client: TestClient) -> None:
    resp = client.get("/api/v1/releases", params={"limit": 0})
    assert resp.status_code == 422
    body = resp.json()
    assert "limit" in body["detail"] and body["errors"][0]["loc"] == ["query", "limit"]


def test_ready_without_neo4j_is_503() -> None:
    bad = Settings(neo4j_uri="bolt://127.0.0.1:1", neo4j_password="x", ttpgraph_api_auth=False)
    with TestClient(create_app(bad)) as c:
        resp = c.get("/ready")
    assert resp.status_code == 503
    assert resp.headers["content-type"].startswith("application/problem+json")
