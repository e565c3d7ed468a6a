"""The API's conventions hold on every route: actor lists are taken one way (``actor``
repeated or comma-separated), every list route pages with ``limit`` and ``cursor`` (next page
in ``Link``), and error ``type``s are the ones docs/api.md lists.

Expected groups come from the bundle JSON; the other lists are checked page by page against the
same list asked for in one page.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from loader.inventory.importer import delete_inventory, import_inventory
from queries.graph import Graph
from queries.settings import Settings

from .bundle_facts import ext_id, is_current, objects
from .conftest import REPO, SESSION_BUNDLES

TYPES = "https://ttpgraph.dev/problems/"
NAME = "t-consistency-soc"


@pytest.fixture(scope="module")
def client(graph: Graph, settings: Settings) -> Iterator[TestClient]:
    import_inventory(graph, "sigma", REPO / "examples" / "soc", name=NAME)
    app = create_app(settings.model_copy(update={"ttpgraph_api_auth": False}))
    try:
        with TestClient(app) as c:
            yield c
    finally:
        delete_inventory(graph, NAME)


def all_pages(client: TestClient, url: str, **params: Any) -> tuple[list[Any], int]:
    """Follow ``Link: <...>; rel="next"`` to the end; the items and the number of pages."""
    resp = client.get(url, params=params)
    items, pages = [], 0
    while True:
        assert resp.status_code == 200, resp.text
        items += resp.json()
        pages += 1
        link = resp.headers.get("link")
        if not link:
            return items, pages
        m = re.match(r'<([^>]+)>; rel="next"', link)
        assert m, link
        assert resp.headers["x-next-cursor"] in m.group(1)
        resp = client.get(m.group(1))


def current_groups() -> set[str]:
    return {
        ext_id(o)
        for path in SESSION_BUNDLES
        for o in objects(path)
        if o["type"] == "intrusion-set" and is_current(o) and ext_id(o)
    }


def test_groups_without_q_lists_every_group_in_pages(client: TestClient) -> None:
    groups, pages = all_pages(client, "/api/v1/groups", limit=50)
    ids = [g["group_id"] for g in groups]
    assert len(ids) == len(set(ids))  # no page repeats an item
    assert set(ids) == current_groups()
    assert pages == -(-len(ids) // 50)
    assert ids == sorted(ids)


def test_group_search_pages_keep_the_ranking(client: TestClient) -> None:
    whole = client.get("/api/v1/groups", params={"q": "financial", "limit": 200}).json()
    paged, pages = all_pages(client, "/api/v1/groups", q="financial", limit=3)
    assert [g["group_id"] for g in paged] == [g["group_id"] for g in whole]
    assert pages > 1
    scores = [g["score"] for g in paged]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/inventories",
        f"/api/v1/inventories/{NAME}/rules",
        "/api/v1/intel/sources",
        "/api/v1/incidents",
        "/api/v1/threat-models",
        "/api/v1/releases",
    ],
)
def test_every_list_route_pages_with_limit_and_cursor(client: TestClient, url: str) -> None:
    whole = client.get(url, params={"limit": 1000})
    assert whole.status_code == 200, whole.text
    paged, _ = all_pages(client, url, limit=1)
    assert paged == whole.json()
    bad = client.get(url, params={"cursor": "not-a-cursor"})
    problem = bad.json()
    assert bad.status_code == 422 and problem["type"] == TYPES + "invalidinput"
    assert problem["detail"].startswith("cursor")


def test_rules_pages_are_the_rule_files(client: TestClient) -> None:
    rules, pages = all_pages(client, f"/api/v1/inventories/{NAME}/rules", limit=3)
    files = sorted(p.name for p in (REPO / "examples" / "soc").glob("*.yml"))
    assert sorted(r["file"].rsplit("/", 1)[-1] for r in rules) == files
    assert pages == -(-len(files) // 3)


ACTOR_ROUTES = [
    ("/api/v1/compare", {}),
    ("/api/v1/gaps", {"inventory": NAME}),
    ("/api/v1/layers/compare", {}),
    ("/api/v1/layers/gaps", {"inventory": NAME}),
    ("/api/v1/layers/telemetry", {"inventory": NAME}),
]


@pytest.mark.parametrize(("url", "extra"), ACTOR_ROUTES)
def test_actor_lists_are_taken_one_way(client: TestClient, url: str, extra: dict) -> None:
    repeated = client.get(url, params=[("actor", "APT29"), ("actor", "FIN7"), *extra.items()])
    comma = client.get(url, params={"actor": "APT29,FIN7", **extra})
    assert repeated.status_code == 200, repeated.text
    assert comma.status_code == 200, comma.text
    assert strip_times(repeated.json()) == strip_times(comma.json())

    many = client.get(url, params={"actor": ",".join(["APT29"] * 51), **extra})
    problem = many.json()
    assert many.status_code == 422, many.text
    assert problem["type"] == TYPES + "invalidinput"
    assert problem["detail"].startswith("query.actor")
    assert problem["errors"][0]["loc"] == ["query", "actor"]


def test_the_older_actors_spelling_still_works(client: TestClient) -> None:
    new = client.get("/api/v1/layers/gaps", params={"actor": "APT29,FIN7", "inventory": NAME})
    old = client.get("/api/v1/layers/gaps", params={"actors": "APT29,FIN7", "inventory": NAME})
    assert new.status_code == old.status_code == 200
    assert strip_times(new.json()) == strip_times(old.json())


def strip_times(data: Any) -> Any:
    """Answers carry when they were made; the rest must be equal."""
    if isinstance(data, dict):
        return {k: strip_times(v) for k, v in data.items() if k not in ("generated_at", "created")}
    if isinstance(data, list):
        return [strip_times(x) for x in data]
    return data


def test_error_types_are_the_documented_ones(client: TestClient) -> None:
    documented = set(
        re.findall(r"\| `([a-z-]+)` \|", (REPO / "docs" / "api.md").read_text(encoding="utf-8"))
    )
    assert {"invalidinput", "notfound"} <= documented
    answers = {
        "invalidinput": client.get("/api/v1/groups", params={"limit": "many"}),
        "notfound": client.get("/api/v1/no-such-route"),
    }
    answers["notfound (a name)"] = client.get("/api/v1/groups/APT%2029")
    for expected, resp in answers.items():
        kind = expected.split()[0]
        assert kind in documented
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert resp.json()["type"] == TYPES + kind, (expected, resp.json())
