"""Actor endpoints: resource-shaped, typed, 404 with close matches, 422 for bad input."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from queries import actors
from queries.graph import Graph
from queries.settings import Settings


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


@pytest.mark.parametrize(
    "params",
    [{}, {"rollup": "true", "tactic": "persistence"}, {"kind": "software", "platform": "Linux"}],
)
def test_profile_endpoint_equals_the_service(
    client: TestClient, graph: Graph, params: dict[str, str]
) -> None:
    """The route sends the service's data as it is (orjson), not through the model: the body is
    the model's JSON, field for field."""
    resp = client.get("/api/v1/groups/cozy bear/profile", params=params)
    assert resp.status_code == 200
    body = resp.json()
    expected = actors.profile_group(
        graph,
        group="cozy bear",
        kinds=[actors.PathKind(params["kind"])] if "kind" in params else None,
        platforms=[params["platform"]] if "platform" in params else None,
        tactic=params.get("tactic"),
        rollup="rollup" in params,
    )
    assert body["group_id"] == "G0016" and body["techniques"]
    assert body == expected.model_dump(mode="json")
    assert list(body) == list(expected.model_dump())  # the model's field order


def test_profile_filters(client: TestClient) -> None:
    resp = client.get(
        "/api/v1/groups/G0016/profile", params={"kind": "direct", "tactic": "execution"}
    )
    assert resp.status_code == 200
    techniques = resp.json()["techniques"]
    assert techniques
    assert all(t["kinds"] == ["direct"] and "execution" in t["tactics"] for t in techniques)


def test_unknown_group_is_404_with_suggestions(client: TestClient) -> None:
    resp = client.get("/api/v1/groups/APT 29/profile")
    assert resp.status_code == 404
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert any("G0016" in s for s in resp.json()["suggestions"])


def test_bad_inputs_are_422(client: TestClient) -> None:
    assert client.get("/api/v1/compare", params={"actor": ["APT29"]}).status_code == 422
    many = [f"G{i:04d}" for i in range(51)]
    assert client.get("/api/v1/compare", params={"actor": many}).status_code == 422
    resp = client.get("/api/v1/groups/G0016/profile", params={"kind": "telepathy"})
    assert resp.status_code == 422 and "kind" in resp.json()["detail"]
    resp = client.get("/api/v1/groups/G0016/profile", params={"domain": "mars"})
    assert resp.status_code == 422


def test_compare_and_similar(client: TestClient, graph: Graph) -> None:
    resp = client.get("/api/v1/compare", params={"actor": ["APT29", "APT28", "Lazarus Group"]})
    assert resp.status_code == 200
    body = resp.json()
    assert [a["group_id"] for a in body["actors"]] == ["G0016", "G0007", "G0032"]
    expected = actors.compare_groups(graph, groups=["G0016", "G0007", "G0032"])
    assert body["common"] == expected.common
    resp = client.get("/api/v1/groups/FIN7/similar", params={"limit": 5})
    assert resp.status_code == 200
    assert len(resp.json()["similar"]) == 5


def test_search_and_resolve(client: TestClient) -> None:
    hits = client.get("/api/v1/groups", params={"q": "financial"}).json()
    assert hits and all(h["score"] > 0 for h in hits)
    assert client.get("/api/v1/software/cobalt strike").json()["attack_id"] == "S0154"
    assert client.get("/api/v1/techniques/PowerShell").json()["attack_id"] == "T1059.001"


def test_openapi_documents_the_models(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    for name in ("GroupProfile", "Comparison", "Similarity", "Problem"):
        assert name in schemas


def test_cached_answers_follow_the_graph_version(graph: Graph) -> None:
    """A cached answer is reused while the data version is unchanged, recomputed after a bump."""
    from queries.cache import bump_graph_version

    first = actors.similar_groups(graph, group="FIN7", limit=3)
    assert actors.similar_groups(graph, group="FIN7", limit=3) is first
    with graph.driver.session(database=graph.database) as s:
        s.execute_write(bump_graph_version)
    again = actors.similar_groups(graph, group="FIN7", limit=3)
    assert again is not first and again == first
