"""Every Cypher file: header checked, params declared == params used, runs for real as-is."""

from __future__ import annotations

from pathlib import Path

import pytest

from queries.catalog import CYPHER_DIR, CatalogError, load_catalog, parse_file
from queries.graph import Graph

# Example parameters for every query in queries/cypher/ (a new file without an entry fails).
EXAMPLES: dict[str, dict] = {
    "releases": {"limit": 10},
    "graph_counts": {"labels": ["Technique", "Group"]},
    "group_candidates": {"include_retired": False},
    "software_candidates": {"include_retired": False},
    "technique_candidates": {"include_retired": True},
    "groups_search": {"text": "financial", "limit": 5},
    "group_info": {"group_id": "G0016"},
    "group_technique_evidence": {
        "group_id": "G0016",
        "kinds": ["direct", "software", "campaign"],
        "domain": "enterprise-attack",
        "platforms": [],
    },
    "technique_details": {"technique_ids": ["T1059.001", "T1055.011"]},
    "group_software": {"group_id": "G0016", "limit": 10},
    "group_campaigns": {"group_id": "G0016", "limit": 10},
    "mitigations_for_techniques": {"technique_ids": ["T1059.001"], "limit": 10},
    "group_technique_sets": {"group_ids": ["G0016"], "include_software": True, "domain": None},
}

CATALOG = load_catalog()


def test_every_query_has_an_example() -> None:
    assert set(CATALOG) == set(EXAMPLES)


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_query_runs_against_the_loaded_graph(graph: Graph, name: str) -> None:
    q = CATALOG[name]
    params = EXAMPLES[name]
    assert set(params) == set(q.params)
    rows = graph.read(q.text, **params)
    assert isinstance(rows, list)


def test_header_checks(tmp_path: Path) -> None:
    bad = tmp_path / "q.cypher"
    bad.write_text("// name: q\n// doc: x\n// params: a\nRETURN $a, $b\n")
    with pytest.raises(CatalogError, match="declared params"):
        parse_file(bad)
    bad.write_text("// name: other\n// doc: x\n// params:\nRETURN 1\n")
    with pytest.raises(CatalogError, match="file stem"):
        parse_file(bad)
    ok = tmp_path / "ok.cypher"
    ok.write_text("// name: ok\n// doc: x\n// params: a\nRETURN $a, '$notaparam' // $nor\n")
    assert parse_file(ok).params == ("a",)


def test_cypher_dir_is_packaged() -> None:
    assert CYPHER_DIR.is_dir() and any(CYPHER_DIR.glob("*.cypher"))
