"""Every Cypher file: header checked, params declared == params used, runs for real as-is."""

from __future__ import annotations

from pathlib import Path

import pytest

from queries.catalog import CYPHER_DIR, CatalogError, load_catalog, parse_file
from queries.graph import Graph

CATALOG = load_catalog()


def test_every_query_has_an_example() -> None:
    missing = [name for name, q in CATALOG.items() if q.example is None]
    assert not missing, f"add an '// example:' header to {missing}"


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_query_runs_against_the_loaded_graph(graph: Graph, name: str) -> None:
    q = CATALOG[name]
    assert q.example is not None and set(q.example) == set(q.params)
    rows = graph.read(q.text, **q.example)
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
