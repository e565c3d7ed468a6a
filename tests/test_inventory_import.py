"""Inventories in the graph: the real corpora import cleanly, ids resolve the way ATT&CK says
(revoked -> replacement, v19 ids through Elastic's crosswalk, unknown ids listed), coverage
semantics (parent / sub-technique) and atomic replacement.

Expectations are computed here from the raw rule files (regexes, tomllib) and the bundle JSON,
never from the importer's output. Every inventory this module writes is named ``t-inv-*`` and
deleted at the end.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from loader.inventory import Rule, parse_inventory
from loader.inventory import importer as II
from loader.inventory.crosswalk import load_crosswalk, parse_crosswalk
from loader.inventory.importer import delete_inventory, import_inventory, import_parsed
from loader.inventory.planner import ImportOptions
from queries import coverage as C
from queries.errors import Conflict, InvalidInput, NotFound
from queries.graph import Graph

from .bundle_facts import by_stix_id, ext_id, objects
from .conftest import CORPORA, ENTERPRISE, SESSION_BUNDLES

SIGMA = CORPORA / "sigma"
ELASTIC = CORPORA / "elastic"
CROSSWALK = ELASTIC / "detection_rules" / "etc" / "attack-version-maps" / "attack_v18_to_v19.yaml"
REDIRECTS = ELASTIC / "detection_rules" / "etc" / "attack-technique-redirects.json"
ART_LAYER = (
    CORPORA / "atomic-red-team" / "atomics" / "Indexes" / "Attack-Navigator-Layers"
    / "art-navigator-layer-windows.json"
)  # fmt: skip
PREFIX = "t-inv-"

# --------------------------------------------------------------------------- facts


@lru_cache(maxsize=1)
def bundle_techniques() -> dict[str, dict[str, Any]]:
    """ATT&CK id -> {current, revoked, name, parent, replaced_by} for every technique of the
    session bundles (revoked-by read from the relationships)."""
    out: dict[str, dict[str, Any]] = {}
    for path in SESSION_BUNDLES:
        objs = by_stix_id(path)
        revoked_by = {
            o["source_ref"]: o["target_ref"]
            for o in objects(path)
            if o["type"] == "relationship" and o["relationship_type"] == "revoked-by"
        }
        parent = {
            o["source_ref"]: o["target_ref"]
            for o in objects(path)
            if o["type"] == "relationship" and o["relationship_type"] == "subtechnique-of"
        }
        for o in objs.values():
            if o["type"] != "attack-pattern" or not ext_id(o):
                continue
            rb = revoked_by.get(o["id"])
            out[ext_id(o)] = {
                "current": not o.get("revoked") and not o.get("x_mitre_deprecated"),
                "revoked": bool(o.get("revoked")),
                "name": o["name"],
                "parent": ext_id(objs[parent[o["id"]]]) if o["id"] in parent else None,
                "replaced_by": ext_id(objs[rb]) if rb in objs else None,
            }
    return out


def follow(tid: str) -> str | None:
    """The current technique ``tid`` is or was revoked into (bundle facts)."""
    facts = bundle_techniques()
    for _ in range(6):
        t = facts.get(tid)
        if t is None:
            return None
        if t["current"]:
            return tid
        if not t["revoked"] or not t["replaced_by"]:
            return None
        tid = t["replaced_by"]
    return None


def crosswalk_reverse(path: Path) -> dict[str, list[str]]:
    """v19 id -> the current v18 ids the Elastic version map says it came from (several: those
    whose name is the v19 name)."""
    data = yaml.safe_load(path.read_text())
    back: dict[str, list[tuple[str, str]]] = {}
    for block in ("techniques", "subtechniques"):
        for src, tgt in (data.get(block) or {}).items():
            if isinstance(tgt, dict):
                back.setdefault(tgt["id"], []).append((src, tgt.get("name") or ""))
    facts = bundle_techniques()
    out: dict[str, list[str]] = {}
    for new, olds in back.items():
        cands = [(follow(o), name) for o, name in olds]
        cands = [(c, n) for c, n in cands if c]
        named = [c for c, n in cands if facts[c]["name"].lower() == n.lower()]
        chosen = named if len(cands) > 1 and named else [c for c, _ in cands]
        out[new] = sorted(set(chosen))
    return out


def expected_direct(ids: set[str], crosswalk: dict[str, list[str]] | None) -> dict[str, Any]:
    """Resolve raw ids the way ATT&CK says: covered set, remapped, unknown, retired."""
    facts = bundle_techniques()
    covered: set[str] = set()
    remapped: dict[str, list[str]] = {}
    unknown: set[str] = set()
    retired: set[str] = set()
    for tid in ids:
        target = follow(tid)
        if target == tid:
            covered.add(tid)
        elif target:
            covered.add(target)
            remapped[tid] = [target]
        elif crosswalk and crosswalk.get(tid) and tid not in facts:
            covered.update(crosswalk[tid])
            remapped[tid] = crosswalk[tid]
        elif tid in facts:
            retired.add(tid)
        else:
            unknown.add(tid)
    return {"covered": covered, "remapped": remapped, "unknown": unknown, "retired": retired}


_SIGMA_TAG = re.compile(
    r"^\s*-\s*['\"]?attack\.(t\d{4}(?:\.\d{3})?)['\"]?\s*(?:#.*)?$", re.M | re.I
)


@lru_cache(maxsize=1)
def sigma_raw() -> list[set[str]]:
    """Technique ids of every Sigma rule: a regex over the raw text of each file; the few
    multi-document files are read document by document (PyYAML) and count once per titled
    document."""
    out = []
    for path in sorted(SIGMA.rglob("*.yml")):
        text = path.read_text(encoding="utf-8", errors="replace")
        if re.search(r"^---\s*$", text, re.M):
            for doc in yaml.safe_load_all(text):
                if isinstance(doc, dict) and doc.get("title"):
                    tags = "\n".join(f"- {t}" for t in doc.get("tags") or [] if isinstance(t, str))
                    out.append({m.upper() for m in _SIGMA_TAG.findall(tags)})
        else:
            out.append({m.upper() for m in _SIGMA_TAG.findall(text)})
    return out


def covered_in_graph(graph: Graph, name: str, *, partial: bool = False) -> set[str]:
    """Techniques the inventory covers (rules), or covers partially (partial rules)."""
    cov = C.inventory_coverage(graph, inventory=name)
    return {t.technique_id for t in cov.techniques if (t.partial_rules if partial else t.rules)}


def direct_edges(graph: Graph, name: str) -> set[str]:
    rows = graph.read(
        "MATCH (:Inventory {name: $n})-[:HAS_RULE]->(:DetectionRule)-[:COVERS]->(t:Technique) "
        "RETURN DISTINCT t.attack_id AS id",
        n=name,
    )
    return {r["id"] for r in rows}


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def cleanup(graph: Graph) -> Iterator[None]:
    yield
    for r in graph.read(
        "MATCH (i:Inventory) WHERE i.name STARTS WITH $p RETURN i.name AS n", p=PREFIX
    ):
        delete_inventory(graph, r["n"])


@pytest.fixture(scope="module")
def sigma(graph: Graph, cleanup: None) -> dict[str, Any]:
    return import_inventory(
        graph, "sigma", SIGMA, name=PREFIX + "sigma", crosswalk=CROSSWALK
    ).summary


@pytest.fixture(scope="module")
def elastic(graph: Graph, cleanup: None) -> dict[str, Any]:
    return import_inventory(
        graph,
        "elastic",
        ELASTIC,
        name=PREFIX + "elastic",
        options=ImportOptions(exclude_status=["deprecated"]),
    ).summary


def csv_inventory(tmp: Path, rows: list[tuple[str, str, str]]) -> Path:
    path = tmp / "inv.csv"
    path.write_text(
        "rule,technique,status\n" + "".join(f"{a},{b},{c}\n" for a, b, c in rows),
        encoding="utf-8",
    )
    return path


# --------------------------------------------------------------------------- Sigma


def test_sigma_imports_cleanly_with_a_summary(sigma: dict[str, Any]) -> None:
    raw = sigma_raw()
    assert sigma["rules_read"] == sigma["rules"] == 4039  # the corpus README's count
    assert sigma["parse_issues"] == 0
    for key in ("mapped", "unmapped", "unresolved", "ids_remapped", "ids_unknown", "ids_retired"):
        assert key in sigma
    assert len(raw) == sigma["rules"]
    assert sigma["unmapped"] == sum(1 for ids in raw if not ids)
    facts = bundle_techniques()
    cw = crosswalk_reverse(CROSSWALK)
    resolvable = [
        ids for ids in raw if any(follow(t) or (t not in facts and cw.get(t)) for t in ids)
    ]
    assert sigma["mapped"] == len(resolvable)
    assert sigma["mapped"] + sigma["unmapped"] + sigma["unresolved"] == sigma["rules"]


def test_sigma_covered_set_from_raw_tags_and_the_bundle(graph: Graph, sigma: dict) -> None:
    raw_ids = set().union(*sigma_raw())
    exp = expected_direct(raw_ids, crosswalk_reverse(CROSSWALK))
    assert direct_edges(graph, PREFIX + "sigma") == exp["covered"]
    assert covered_in_graph(graph, PREFIX + "sigma") == exp["covered"]
    assert sigma["techniques_covered"] == len(exp["covered"])
    assert {u["id"] for u in sigma["ids_unknown"]} == exp["unknown"]
    assert {u["id"] for u in sigma["ids_retired"]} == exp["retired"]
    remapped = {r["id"]: r["to"] for r in sigma["ids_remapped"]}
    assert remapped == exp["remapped"]
    # The real cases the corpus README names: revoked ids and v19 ids.
    assert remapped["T1086"] == ["T1059.001"]
    assert remapped["T1685"] == ["T1562.001"]  # name chosen among T1562, .001, .006
    assert {r["via"] for r in sigma["ids_remapped"]} == {"revoked", "crosswalk"}
    assert sigma["ids_unknown"], "v19 ids the crosswalk does not map must be listed"


def test_sigma_partial_coverage_is_parents_and_subtechniques(graph: Graph, sigma: dict) -> None:
    direct = covered_in_graph(graph, PREFIX + "sigma")
    facts = bundle_techniques()
    children: dict[str, set[str]] = {}
    for tid, f in facts.items():
        if f["parent"] and f["current"]:
            children.setdefault(f["parent"], set()).add(tid)
    expected = set()
    for t in direct:
        if facts[t]["parent"]:
            if facts[facts[t]["parent"]]["current"]:
                expected.add(facts[t]["parent"])
        else:
            expected |= children.get(t, set())
    # A technique can be partial through one rule and covered by another: compare the
    # techniques that are only partially covered.
    partial = covered_in_graph(graph, PREFIX + "sigma", partial=True) - direct
    assert partial == expected - direct
    assert sigma["techniques_partial"] == len(expected - direct)


def test_unknown_ids_stay_on_the_rules(graph: Graph, sigma: dict) -> None:
    # Unresolved ids stay on their rules: unknown to the release, or retired in it.
    unresolved = sigma["ids_unknown"] + sigma["ids_retired"]
    unknown = {u["id"] for u in unresolved}
    rows = graph.read(
        "MATCH (:Inventory {name: $n})-[:HAS_RULE]->(r) UNWIND r.unknown_ids AS u "
        "RETURN u, count(*) AS rules",
        n=PREFIX + "sigma",
    )
    assert {r["u"] for r in rows} == unknown
    assert {r["u"]: r["rules"] for r in rows} == {u["id"]: u["rules"] for u in unresolved}


def test_without_crosswalk_v19_ids_are_unknown_not_dropped(graph: Graph, cleanup: None) -> None:
    one = SIGMA / "rules" / "windows" / "process_creation"
    s = import_inventory(graph, "sigma", one, name=PREFIX + "sigma-pc").summary
    raw = {
        m.upper()
        for p in one.glob("*.yml")
        for m in _SIGMA_TAG.findall(p.read_text(encoding="utf-8"))
    }
    exp = expected_direct(raw, None)
    assert {u["id"] for u in s["ids_unknown"]} == exp["unknown"]
    assert any(u.startswith("T168") for u in exp["unknown"])
    assert covered_in_graph(graph, PREFIX + "sigma-pc") == exp["covered"]


# --------------------------------------------------------------------------- Elastic


def elastic_raw() -> list[dict[str, Any]]:
    out = []
    for path in sorted(ELASTIC.rglob("*.toml")):
        rel = path.relative_to(ELASTIC).as_posix()
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        if "rule" in data:
            ids = set()
            for threat in data["rule"].get("threat", []):
                for tech in threat.get("technique", []):
                    ids.add(tech["id"])
                    ids.update(s["id"] for s in tech.get("subtechnique", []))
            maturity = data.get("metadata", {}).get("maturity")
            deprecated = "_deprecated" in rel.split("/") or maturity == "deprecated"
            out.append({"id": data["rule"]["rule_id"], "ids": ids, "deprecated": deprecated})
        elif "hunt" in data:
            ids = {m for m in data["hunt"].get("mitre", []) if re.fullmatch(r"T\d{4}(\.\d{3})?", m)}
            out.append({"id": data["hunt"]["uuid"], "ids": ids, "deprecated": False})
    return out


def test_elastic_imports_every_rule_even_reused_ids(graph: Graph, elastic: dict) -> None:
    raw = elastic_raw()
    kept = [r for r in raw if not r["deprecated"]]
    assert elastic["rules_read"] == len(raw)
    assert elastic["excluded"] == {"deprecated": len(raw) - len(kept)}
    assert elastic["rules"] == len(kept)
    n = graph.read(
        "MATCH (:Inventory {name: $n})-[:HAS_RULE]->(r) RETURN count(r) AS n, "
        "count(DISTINCT r.key) AS keys, count(DISTINCT r.rule_id) AS ids",
        n=PREFIX + "elastic",
    )[0]
    assert n["n"] == n["keys"] == len(kept)
    assert n["ids"] < n["n"], "Elastic reuses a few rule ids across files: each file is kept"
    exp = expected_direct(set().union(*(r["ids"] for r in kept)), None)
    assert covered_in_graph(graph, PREFIX + "elastic") == exp["covered"]
    assert {r["id"] for r in elastic["ids_remapped"]} == set(exp["remapped"])
    assert elastic["unmapped"] == sum(1 for r in kept if not r["ids"])


# --------------------------------------------------------------------------- semantics


def test_parent_and_subtechnique_coverage_modes(graph: Graph, tmp_path: Path, cleanup) -> None:
    path = csv_inventory(tmp_path, [("a", "T1059", "active"), ("b", "T1003.001", "active")])
    subs_1059 = {
        t for t, f in bundle_techniques().items() if f["parent"] == "T1059" and f["current"]
    }
    name = PREFIX + "modes"
    import_inventory(graph, "csv", path, name=name)
    assert covered_in_graph(graph, name) == {"T1059", "T1003.001"}
    assert covered_in_graph(graph, name, partial=True) == subs_1059 | {"T1003"}
    import_inventory(graph, "csv", path, name=name, options=ImportOptions(parent_coverage="full"))
    assert covered_in_graph(graph, name) == {"T1059", "T1003.001"} | subs_1059
    assert covered_in_graph(graph, name, partial=True) == {"T1003"}
    opts = ImportOptions(parent_coverage="none", subtechnique_coverage="none")
    import_inventory(graph, "csv", path, name=name, options=opts)
    assert covered_in_graph(graph, name, partial=True) == set()
    cov = C.inventory_coverage(graph, inventory=name)
    assert {t.technique_id for t in cov.techniques} == {"T1059", "T1003.001"}


def test_exclude_status(graph: Graph, tmp_path: Path, cleanup: None) -> None:
    path = csv_inventory(
        tmp_path,
        [("a", "T1059.001", "active"), ("b", "T1003.001", "deprecated"), ("c", "T1021", "beta")],
    )
    s = import_inventory(
        graph, "csv", path, name=PREFIX + "status",
        options=ImportOptions(exclude_status=["deprecated", "experimental"]),
    ).summary  # fmt: skip
    assert s["rules_read"] == 3 and s["rules"] == 1
    assert s["excluded"] == {"deprecated": 1, "experimental": 1}
    assert covered_in_graph(graph, PREFIX + "status") == {"T1059.001"}
    with pytest.raises(InvalidInput, match="unknown status 'retired'"):
        ImportOptions(exclude_status=["retired"]).check()


def test_navigator_layer_inventory(graph: Graph, cleanup: None) -> None:
    layer = json.loads(ART_LAYER.read_text())
    scored = {e["techniqueID"] for e in layer["techniques"] if (e.get("score") or 0) > 0}
    s = import_inventory(graph, "layer", ART_LAYER, name=PREFIX + "layer").summary
    exp = expected_direct(scored, None)
    assert covered_in_graph(graph, PREFIX + "layer") == exp["covered"]
    assert {u["id"] for u in s["ids_unknown"]} == exp["unknown"]


# --------------------------------------------------------------------------- replacement


def rule_count(graph: Graph, name: str) -> int:
    return graph.read(
        "MATCH (:Inventory {name: $n})-[:HAS_RULE]->(r) RETURN count(r) AS n", n=name
    )[0]["n"]


def test_reimport_replaces_and_bad_input_leaves_the_old_one(
    graph: Graph, tmp_path: Path, cleanup: None
) -> None:
    name = PREFIX + "replace"
    first = csv_inventory(tmp_path, [("a", "T1059.001", "active"), ("b", "T1003", "active")])
    import_inventory(graph, "csv", first, name=name)
    assert rule_count(graph, name) == 2
    again = import_inventory(graph, "csv", first, name=name).summary
    assert again["rules_unchanged"] == 2 and rule_count(graph, name) == 2
    (tmp_path / "second.txt").write_text("T1021.001\n", encoding="utf-8")
    import_inventory(graph, "csv", tmp_path / "second.txt", name=name)
    assert rule_count(graph, name) == 1
    assert covered_in_graph(graph, name) == {"T1021.001"}
    with pytest.raises(InvalidInput, match="does not exist"):
        import_inventory(graph, "csv", tmp_path / "missing.csv", name=name)
    with pytest.raises(InvalidInput, match="no sigma rules found"):
        import_inventory(graph, "sigma", tmp_path / "second.txt", name=name)
    with pytest.raises(InvalidInput, match="unknown inventory format"):
        import_inventory(graph, "qradar", first, name=name)
    with pytest.raises(Conflict):
        import_inventory(graph, "csv", first, name=name, options=ImportOptions(replace=False))
    assert covered_in_graph(graph, name) == {"T1021.001"}


def test_a_failure_inside_the_transaction_writes_nothing(
    graph: Graph, tmp_path: Path, cleanup: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = PREFIX + "atomic"
    import_inventory(graph, "csv", csv_inventory(tmp_path, [("a", "T1059", "active")]), name=name)
    parsed = parse_inventory("csv", csv_inventory(tmp_path, [("x", "T1003", "active")] * 1))
    good = parsed.rules[0]
    # Neo4j refuses a map as a property value: the last batch fails after the first was sent.
    bad = Rule(**{**good.__dict__, "rule_id": "bad", "raw_status": {"not": "a string"}})  # type: ignore[arg-type]
    parsed.rules = [good, bad]
    monkeypatch.setattr(II, "BATCH", 1)
    with pytest.raises(Exception):  # noqa: B017 - whatever the driver raises
        import_parsed(graph, parsed, name=name)
    assert rule_count(graph, name) == 1
    assert covered_in_graph(graph, name) == {"T1059"}


def test_names_and_delete(graph: Graph, tmp_path: Path, cleanup: None) -> None:
    path = csv_inventory(tmp_path, [("a", "T1059.001", "active")])
    for bad in ("", "   ", "x" * 101, "tab\there"):
        with pytest.raises(InvalidInput):
            import_inventory(graph, "csv", path, name=bad)
    import_inventory(graph, "csv", path, name=PREFIX + "del")
    assert delete_inventory(graph, PREFIX + "del") == 1
    with pytest.raises(NotFound):
        delete_inventory(graph, PREFIX + "del")
    assert not graph.read(
        "MATCH (r:DetectionRule {inventory: $n}) RETURN r LIMIT 1", n=PREFIX + "del"
    )


# --------------------------------------------------------------------------- crosswalks


def test_crosswalk_shapes() -> None:
    cw = load_crosswalk(CROSSWALK)
    pairs = {(e.src, e.dst) for e in cw.entries}
    raw = yaml.safe_load(CROSSWALK.read_text())
    expected = {
        (k, v["id"]) for b in ("techniques", "subtechniques") for k, v in raw[b].items() if v
    }
    assert pairs == expected
    redirects = load_crosswalk(REDIRECTS)
    mapping = json.loads(REDIRECTS.read_text())["mapping"]
    assert {(e.src, e.dst) for e in redirects.entries} == {
        (k, v) for k, v in mapping.items() if k != v
    }
    assert {
        (e.src, e.dst) for e in parse_crosswalk("T1086,T1059.001\n", csv_hint=True).entries
    } == {("T1086", "T1059.001")}
    assert parse_crosswalk('{"T1562.001": ["T1685"]}').entries[0].dst == "T1685"
    with pytest.raises(InvalidInput, match="no technique id pairs"):
        parse_crosswalk("a: b\n")
    with pytest.raises(InvalidInput, match="does not exist"):
        load_crosswalk(Path("/nonexistent/crosswalk.yaml"))


def test_bundle_facts_cover_the_graph(graph: Graph) -> None:
    """The test's own resolver agrees with the graph on what is current (a sanity check)."""
    current = {
        r["id"]
        for r in graph.read(
            "MATCH (t:Technique) WHERE NOT t.revoked AND NOT t.deprecated RETURN t.attack_id AS id"
        )
    }
    assert current == {t for t, f in bundle_techniques().items() if f["current"]}
    assert ENTERPRISE in SESSION_BUNDLES
