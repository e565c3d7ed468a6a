"""The matrix page's data: the matrix of each domain and one technique's evidence, from the
service and over HTTP, checked against the bundle JSON (tests/test_ui_matrix.py drives the page
itself in Chromium)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from queries import matrix as M
from queries.errors import InvalidInput, NotFound
from queries.graph import Graph
from queries.settings import Settings

from .bundle_facts import (
    by_stix_id,
    current_relationships,
    ext_id,
    is_current,
    mitigations_by_technique,
    objects,
    stix_id_for,
)
from .conftest import ENTERPRISE, ICS_21, MOBILE
from .test_overlap import with_read_key

ENT = "enterprise-attack"

# ---------------------------------------------------------------- facts from the bundles


def bundle_matrix(path: Path) -> tuple[list[str], list[str]]:
    """The current matrix's tactics in column order: (names, shortnames)."""
    objs = by_stix_id(path)
    matrix = next(o for o in objects(path) if o["type"] == "x-mitre-matrix" and is_current(o))
    tactics = [objs[r] for r in matrix["tactic_refs"]]
    return [t["name"] for t in tactics], [t["x_mitre_shortname"] for t in tactics]


def bundle_cells(path: Path, domain: str) -> dict[str, list[str]]:
    """Current technique ATT&CK id -> its tactic shortnames in the domain's matrix."""
    _, shortnames = bundle_matrix(path)
    chain = "mitre-attack" if domain == ENT else f"mitre-{domain}"
    out: dict[str, list[str]] = {}
    for o in objects(path):
        if o["type"] != "attack-pattern" or not is_current(o):
            continue
        if domain not in o.get("x_mitre_domains", [domain]):
            continue
        phases = [
            p["phase_name"]
            for p in o.get("kill_chain_phases", [])
            if p["kill_chain_name"] == chain and p["phase_name"] in shortnames
        ]
        if phases:
            out[ext_id(o) or o["id"]] = phases
    return out


def groups_using(path: Path, technique_id: str) -> set[str]:
    """Groups using a technique directly or through a campaign attributed to them."""
    objs = by_stix_id(path)
    tid = stix_id_for(path, "attack-pattern", technique_id)
    rels = current_relationships(path)
    users = {
        r["source_ref"] for r in rels if r["relationship_type"] == "uses" and r["target_ref"] == tid
    }
    groups = {ext_id(objs[u]) for u in users if u.startswith("intrusion-set--")}
    campaigns = {u for u in users if u.startswith("campaign--")}
    for r in rels:
        if (
            r["relationship_type"] == "attributed-to"
            and r["source_ref"] in campaigns
            and r["target_ref"].startswith("intrusion-set--")
        ):
            groups.add(ext_id(objs[r["target_ref"]]))
    return {g for g in groups if g}


def strategies_detecting(path: Path, technique_id: str) -> set[str]:
    objs = by_stix_id(path)
    tid = stix_id_for(path, "attack-pattern", technique_id)
    return {
        ext_id(objs[r["source_ref"]]) or ""
        for r in current_relationships(path)
        if r["relationship_type"] == "detects"
        and r["target_ref"] == tid
        and r["source_ref"].startswith("x-mitre-detection-strategy--")
    }


def seen_by_data_component(path: Path, component: str) -> set[str]:
    """Techniques a data component (by name) can show: detection strategy -> analytic -> log
    source of that component (ATT&CK v18), straight from the bundle."""
    objs = by_stix_id(path)
    dc = next(
        o["id"]
        for o in objs.values()
        if o["type"] == "x-mitre-data-component" and o["name"] == component
    )
    analytics = {
        o["id"]
        for o in objs.values()
        if o["type"] == "x-mitre-analytic"
        and is_current(o)
        and any(
            r["x_mitre_data_component_ref"] == dc
            for r in o.get("x_mitre_log_source_references", [])
        )
    }
    strategies = {
        o["id"]
        for o in objs.values()
        if o["type"] == "x-mitre-detection-strategy"
        and is_current(o)
        and analytics & set(o.get("x_mitre_analytic_refs", []))
    }
    return {
        ext_id(objs[r["target_ref"]]) or ""
        for r in current_relationships(path)
        if r["relationship_type"] == "detects" and r["source_ref"] in strategies
    }


@pytest.fixture(scope="module")
def client(graph: Graph, settings: Settings, tmp_path_factory: pytest.TempPathFactory):
    keyed, token = with_read_key(settings, tmp_path_factory.mktemp("matrix-keys"))
    from api.app import create_app

    with TestClient(create_app(keyed), headers={"X-API-Key": token}) as c:
        yield c


@pytest.mark.parametrize(
    ("domain", "bundle"),
    [("enterprise-attack", ENTERPRISE), ("mobile-attack", MOBILE), ("ics-attack", ICS_21)],
)
def test_each_domain_matrix_is_the_bundles(graph: Graph, domain: str, bundle) -> None:
    skel = M.matrix_skeleton(graph, domain=domain)
    names, shortnames = bundle_matrix(bundle)
    assert [t.name for t in skel.tactics] == names
    assert [t.shortname for t in skel.tactics] == shortnames
    assert [t.order for t in skel.tactics] == list(range(len(names)))
    cells = bundle_cells(bundle, domain)
    drawn = {
        (x.technique_id, t.shortname)
        for t in skel.tactics
        for tech in t.techniques
        for x in [tech, *tech.subtechniques]
    }
    assert drawn == {(tid, ta) for tid, tas in cells.items() for ta in tas}
    assert skel.cells == len(drawn)
    assert skel.techniques == sum("." not in t for t in cells)
    assert skel.subtechniques == sum("." in t for t in cells)
    for t in skel.tactics:
        assert t.technique_count == sum(
            1 for tid, tas in cells.items() if t.shortname in tas and "." not in tid
        )
        names_here = [x.name.casefold() for x in t.techniques]
        assert names_here == sorted(names_here)
        for tech in t.techniques:  # sub-techniques sit under their own parent
            assert all(
                s.technique_id.startswith(tech.technique_id + ".") for s in tech.subtechniques
            )
    assert skel.attack_version == "18.1"


def test_a_subtechnique_without_its_parent_in_the_column_stands_alone() -> None:
    rows = [
        {
            "matrix": "M", "matrix_url": None, "version": "1", "tactic_id": "TA1",
            "shortname": "a", "name": "A", "url": None, "order": 0,
            "techniques": [
                {"technique_id": "T1", "name": "b", "parent_id": None, "platforms": ["X"]},
                {"technique_id": "T2.001", "name": "a", "parent_id": "T2", "platforms": ["Y"]},
                {"technique_id": "T1.001", "name": "z", "parent_id": "T1", "platforms": ["X"]},
            ],
        }
    ]  # fmt: skip
    skel = M.shape_skeleton("enterprise-attack", rows)
    (tactic,) = skel.tactics
    assert [t.technique_id for t in tactic.techniques] == ["T2.001", "T1"]
    assert [s.technique_id for s in tactic.techniques[1].subtechniques] == ["T1.001"]
    assert (skel.techniques, skel.subtechniques, skel.cells) == (1, 2, 3)
    assert skel.platforms == ["X", "Y"]


def test_evidence_of_a_technique_is_the_bundles(graph: Graph) -> None:
    ev = M.technique_evidence(graph, technique="PowerShell")  # a name resolves
    assert ev.technique_id == "T1059.001" and ev.parent_id == "T1059"
    assert {g.group_id for g in ev.groups} == groups_using(ENTERPRISE, "T1059.001")
    assert {d.strategy_id for d in ev.detection_strategies} == strategies_detecting(
        ENTERPRISE, "T1059.001"
    )
    assert {m.mitigation_id for m in ev.mitigations} == mitigations_by_technique([ENTERPRISE])[
        "T1059.001"
    ]
    apt29 = [g for g in ev.groups if g.group_id == "G0016"]
    assert {g.kind for g in apt29} == {"direct", "campaign"}
    direct = next(g for g in apt29 if g.kind == "direct")
    assert direct.procedure and len(direct.citations) == len(direct.citation_urls) > 0
    assert [t.shortname for t in ev.tactics] == ["execution"]
    analytics = [a for d in ev.detection_strategies for a in d.analytics]
    assert any(ls.data_component_id == "DC0032" for a in analytics for ls in a.log_sources)
    parent = M.technique_evidence(graph, technique="T1059")
    assert "T1059.001" in {s.technique_id for s in parent.subtechniques}


def test_errors(graph: Graph) -> None:
    with pytest.raises(InvalidInput):
        M.matrix_skeleton(graph, domain="pre-attack")
    with pytest.raises(NotFound) as err:
        M.technique_evidence(graph, technique="Powershel")
    assert "T1059.001" in " ".join(err.value.suggestions) or "PowerShell" in str(
        err.value.suggestions
    )


def test_over_http(client: TestClient, graph: Graph) -> None:
    r = client.get("/api/v1/matrix", params={"domain": "ics"})
    assert r.status_code == 200
    assert r.json() == M.matrix_skeleton(graph, domain="ics-attack").model_dump(mode="json")
    assert client.get("/api/v1/matrix", params={"domain": "pre"}).status_code == 422
    r = client.get("/api/v1/techniques/T1059.001/evidence")
    assert r.status_code == 200 and r.json()["technique_id"] == "T1059.001"
    r = client.get("/api/v1/techniques/T9999/evidence")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    page = client.get("/ui/matrix")
    assert page.status_code == 200 and '<script src="matrix.js">' in page.text
    assert client.get("/ui/matrix.js").status_code == 200


def test_the_page_is_open_but_the_data_needs_a_key(graph: Graph, client: TestClient) -> None:
    with TestClient(client.app) as anonymous:
        assert anonymous.get("/ui/matrix").status_code == 200
        assert anonymous.get("/api/v1/matrix").status_code == 401
