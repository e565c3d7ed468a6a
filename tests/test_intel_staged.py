"""The organisation's intelligence written in batches: a batched, streamed import of a real
export equals the one-shot one; an import that fails midway (bad object, Neo4j going away, a
killed process) leaves the previous import answering and nothing of itself visible; the fast
acceptance of plain STIX objects never accepts what ``stix2`` refuses.

Imports use source labels starting with ``test-staged`` and are removed at the end.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import stix2

from benchmarks.synthetic import intel_objects
from loader import intel as L
from loader.intel import imports as intel_imports
from loader.intel import rows as intel_rows
from loader.intel import store as intel_store
from loader.intel.fastcheck import plainly_valid
from queries import intel as I
from queries.errors import InvalidInput, NotFound
from queries.graph import Graph

EXAMPLE = Path(__file__).parent.parent / "examples" / "opencti-export.json"
VOLATILE = {"key", "source", "imported_at", "import_id"}


@pytest.fixture(scope="module", autouse=True)
def _cleanup(graph: Graph) -> Iterator[None]:
    yield
    for r in graph.read(
        "MATCH (s:IntelSource) WHERE s.source STARTS WITH 'test-staged' RETURN s.source AS s"
    ):
        L.delete_source(graph, r["s"])


def bundle() -> dict[str, Any]:
    return json.loads(EXAMPLE.read_text(encoding="utf-8"))


def snapshot(graph: Graph, source: str) -> tuple[list[Any], list[Any]]:
    """What the graph answers for a source: its visible nodes and their relationships,
    without what differs between imports (key, source, time, import id)."""
    nodes = graph.read(
        "MATCH (n:OrgObject {source: $s}) MATCH (i:IntelSource {source: $s}) "
        "WHERE coalesce(n.import_id, '') = coalesce(i.import_id, '') "
        "RETURN labels(n) AS labels, properties(n) AS props",
        s=source,
    )
    edges = graph.read(
        "MATCH (a:OrgObject {source: $s})-[r]->(b) MATCH (i:IntelSource {source: $s}) "
        "WHERE coalesce(a.import_id, '') = coalesce(i.import_id, '') "
        "RETURN type(r) AS type, a.stix_id AS a, b.stix_id AS b, properties(r) AS props",
        s=source,
    )
    n = sorted(
        json.dumps([sorted(r["labels"]), {k: v for k, v in r["props"].items()
                                          if k not in VOLATILE}], sort_keys=True)
        for r in nodes
    )  # fmt: skip
    e = sorted(
        json.dumps([r["type"], r["a"], r["b"], {k: v for k, v in r["props"].items()
                                                if k != "source"}], sort_keys=True)
        for r in edges
    )  # fmt: skip
    return n, e


def leftovers(graph: Graph, source: str) -> dict[str, int]:
    """Nodes of the source that are not its live import's, and markers."""
    row = graph.read(
        "OPTIONAL MATCH (i:IntelSource {source: $s}) WITH i "
        "CALL (i) { MATCH (n:OrgObject {source: $s}) "
        "  WHERE coalesce(n.import_id, '') <> coalesce(i.import_id, '') RETURN count(n) AS stale } "
        "CALL () { MATCH (n:OrgStaged {source: $s}) RETURN count(n) AS staged } "
        "CALL () { MATCH (n:OrgRetired {source: $s}) RETURN count(n) AS retired } "
        "CALL () { MATCH (m:IntelStaging {source: $s}) RETURN count(m) AS markers } "
        "RETURN stale, staged, retired, markers",
        s=source,
    )[0]
    return {k: int(v) for k, v in row.items()}


def ioc_sources(graph: Graph, value: str) -> list[tuple[str, str]]:
    graph.cache.clear()
    try:
        return sorted((m.source, m.stix_id) for m in I.ioc_lookup(graph, value=value).matches)
    except NotFound:
        return []


def test_batched_streamed_import_equals_one_shot(
    graph: Graph, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = bundle()
    one = L.import_intel_file(graph, EXAMPLE, source="test-staged one-shot")
    # every label and relationship type in several batches
    monkeypatch.setattr(intel_rows, "BATCH", 2)
    monkeypatch.setattr(intel_imports, "STREAM_ABOVE", 0)  # read with ijson, two passes
    batched = L.import_intel_file(graph, EXAMPLE, source="test-staged batched")
    assert batched.nodes == one.nodes and batched.relationships == one.relationships
    assert batched.skipped == one.skipped and batched.warnings == one.warnings
    assert snapshot(graph, "test-staged batched") == snapshot(graph, "test-staged one-shot")
    # and what was written is the bundle's (counted from the JSON here)
    indicators = [o for o in data["objects"] if o["type"] == "indicator"]
    assert one.nodes["Indicator"] == len(indicators)
    answering = {s for s, _ in ioc_sources(graph, "203.0.113.77")}
    for source in ("test-staged one-shot", "test-staged batched"):
        assert leftovers(graph, source) == {"stale": 0, "staged": 0, "retired": 0, "markers": 0}
        assert source in answering


def test_failed_import_midway_leaves_the_previous_answering(
    graph: Graph, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = "test-staged failing"
    monkeypatch.setattr(intel_rows, "BATCH", 2)
    monkeypatch.setattr(intel_imports, "STREAM_ABOVE", 0)
    L.import_intel_file(graph, EXAMPLE, source=source)
    before = snapshot(graph, source)
    assert ioc_sources(graph, "203.0.113.77")  # the previous import answers for its IOC

    # The next version: the IOC changed, and one invalid indicator at the very end.
    data = bundle()
    changed = next(
        o for o in data["objects"] if o["type"] == "indicator" and "203.0.113.77" in o["pattern"]
    )
    changed["pattern"] = "[ipv4-addr:value = '198.51.100.99']"
    bad = copy.deepcopy(next(o for o in data["objects"] if o["type"] == "indicator"))
    bad["id"] = "indicator--0b7e4c8a-9a3e-4d55-9a77-1f1c2a3b4c5d"
    bad["pattern"] = "[ipv4-addr:value = "
    data["objects"].append(bad)
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(data), encoding="utf-8")
    n = len(data["objects"]) - 1
    with pytest.raises(InvalidInput, match=rf"^objects\[{n}\] \({bad['id']}\): .*pattern"):
        L.import_intel_file(graph, broken, source=source)
    assert snapshot(graph, source) == before
    assert (source, changed["id"]) in ioc_sources(graph, "203.0.113.77")
    assert not ioc_sources(graph, "198.51.100.99")
    assert leftovers(graph, source) == {"stale": 0, "staged": 0, "retired": 0, "markers": 0}

    # Neo4j goes away after the nodes are written, in the middle of the relationships.
    data["objects"].pop()
    fixed = tmp_path / "fixed.json"
    fixed.write_text(json.dumps(data), encoding="utf-8")
    calls = itertools.count()
    real_write_edges = intel_store.StagedIntel.write_edges

    def failing(self: Any, *args: Any, **kwargs: Any) -> None:
        if next(calls) == 3:
            raise OSError("connection reset")
        real_write_edges(self, *args, **kwargs)

    monkeypatch.setattr(intel_store.StagedIntel, "write_edges", failing)
    with pytest.raises(OSError):
        L.import_intel_file(graph, fixed, source=source)
    assert snapshot(graph, source) == before
    assert not ioc_sources(graph, "198.51.100.99")
    assert leftovers(graph, source) == {"stale": 0, "staged": 0, "retired": 0, "markers": 0}

    # A killed process: nothing discards what it staged; readers still see the previous import,
    # and the next import of the source removes what it left.
    calls = itertools.count()
    monkeypatch.setattr(intel_store.StagedIntel, "discard", lambda self: None)
    with pytest.raises(OSError):
        L.import_intel_file(graph, fixed, source=source)
    left = leftovers(graph, source)
    assert left["stale"] > 0 and left["staged"] > 0 and left["markers"] == 1
    assert snapshot(graph, source) == before
    assert not ioc_sources(graph, "198.51.100.99")
    monkeypatch.setattr(intel_store.StagedIntel, "write_edges", real_write_edges)
    res = L.import_intel_file(graph, fixed, source=source)
    assert res.replaced
    assert leftovers(graph, source) == {"stale": 0, "staged": 0, "retired": 0, "markers": 0}
    assert [s for s, _ in ioc_sources(graph, "198.51.100.99")] == [source]
    assert (source, changed["id"]) not in ioc_sources(graph, "203.0.113.77")


def _mutations(obj: dict[str, Any]) -> Iterator[dict[str, Any]]:
    changes: list[tuple[str, Any]] = [
        ("created", "2026-13-01T00:00:00.000Z"),
        ("modified", "2000-01-01T00:00:00.000Z"),
        ("created", "2026-11-20T00:00:00Z"),
        ("id", obj["id"][:-12] + "zzzzzzzzzzzz"),
        ("id", obj["id"].split("--")[0] + "--00000000-0000-4000-0000-000000000000"),
        ("spec_version", "2.0"),
        ("name", ""),
        ("pattern", "[ipv4-addr:value = '1.2.3.4'"),
        ("pattern", "[ipv4-addr:valu = '1.2.3.4']"),
        ("pattern_type", "sigma"),
        ("valid_from", "yesterday"),
        ("source_ref", "bundle--0b7e4c8a-9a3e-4d55-9a77-1f1c2a3b4c5d"),
        ("target_ref", "not-an-id"),
        ("relationship_type", "Uses It"),
        ("sighting_of_ref", "ipv4-addr--0b7e4c8a-9a3e-4d55-9a77-1f1c2a3b4c5d"),
        ("count", -1),
        ("count", True),
        ("last_seen", "2000-01-01T00:00:00.000Z"),
        ("where_sighted_refs", ["indicator--0b7e4c8a-9a3e-4d55-9a77-1f1c2a3b4c5d"]),
        ("value", ""),
        ("value", 7),
        ("x_custom", 1),
    ]
    for key, value in changes:
        yield {**obj, key: value}
    for key in list(obj):
        yield {k: v for k, v in obj.items() if k != key}


def test_fast_acceptance_never_accepts_what_stix2_refuses() -> None:
    by_type: dict[str, list[dict[str, Any]]] = {}
    for o in intel_objects(300):
        by_type.setdefault(o["type"], []).append(o)
    objs = [o for group in by_type.values() for o in group[:60]] + bundle()["objects"]
    accepted = 0
    for obj in objs:
        for candidate in [obj, *_mutations(obj)]:
            if not plainly_valid(candidate):
                continue
            accepted += 1
            stix2.parse(candidate, allow_custom=True, version="2.1")  # raises if refused
    # it does accept the plain objects a million-IOC bundle is made of
    kinds = {o["type"] for o in objs if plainly_valid(o)}
    assert {"relationship", "indicator", "domain-name", "sighting"} <= kinds
    assert accepted > 400


def _operators(plan: Any) -> Iterator[tuple[str, str]]:
    yield plan.get("operatorType", ""), str(plan.get("args", {}).get("Details", ""))
    for child in plan.get("children", []):
        yield from _operators(child)


@pytest.mark.parametrize(
    ("src_small", "dst"), [(False, "small"), (False, "bulk"), (True, "attack"), (True, "small")]
)
def test_edge_batches_find_both_ends_by_key(graph: Graph, src_small: bool, dst: str) -> None:
    """Every edge batch seeks its ends in the ``key`` index, whatever the statistics say."""
    L.ensure_intel_schema(graph)
    stmt = intel_store.edge_statement("INDICATES", src_small=src_small, dst=dst)
    with graph.driver.session(database=graph.database) as session:
        indexes = session.run(
            "SHOW INDEXES YIELD name, state WHERE name IN $names RETURN name, state",
            names=["org_object_key_lookup", "org_staged_key"],
        ).data()
        assert sorted(indexes, key=str) == [
            {"name": "org_object_key_lookup", "state": "ONLINE"},
            {"name": "org_staged_key", "state": "ONLINE"},
        ], indexes
        # planned now, on these indexes (a plan cached by an earlier test could predate them)
        session.run("CALL db.clearQueryCaches()").consume()
        summary = session.run("EXPLAIN " + stmt, rows=[], id="x").consume()
    seeks = [d for op, d in _operators(summary.plan) if "IndexSeek" in op]
    ends = 1 if dst == "attack" else 2
    why = (
        list(_operators(summary.plan)),
        [g.status_description for g in summary.gql_status_objects],
    )
    assert len([d for d in seeks if "(key)" in d]) == ends, why
    assert not [d for d in seeks if "import_id" in d], seeks
