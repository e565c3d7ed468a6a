"""The Neo4j Browser kit: every query of the pack runs against the real graph and returns what
the bundles say; the style sheet parses the way Neo4j Browser parses it and styles every label
of the graph model; the favorites zip is what Browser imports."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import Any

import neo4j
import pytest

from queries import browser as kit
from queries.catalog import CypherQuery
from queries.graph import Graph
from queries.settings import Settings

from .bundle_facts import by_stix_id, current_relationships, ext_id, is_current, stix_id_for
from .conftest import ENTERPRISE, REPO, SESSION_BUNDLES
from .test_cli import run_cli

PACK = kit.pack()
GRAPH_MODEL = REPO / "docs" / "graph-model.md"


def paths(graph: Graph, query: CypherQuery, **params: Any) -> list[neo4j.graph.Path]:
    """Run a graph-shaped query and keep the real Path objects (what Browser draws)."""
    records, _, _ = graph.driver.execute_query(
        query.text, {**(query.example or {}), **params}, database_=graph.database
    )
    return [r["p"] for r in records]


def aid(node: neo4j.graph.Node) -> str:
    return node["attack_id"]


def query(name: str) -> CypherQuery:
    return next(q for q in PACK if q.name == name)


# ---------------------------------------------------------------- the pack runs


def test_pack_holds_the_graph_shaped_queries() -> None:
    names = [q.name for q in PACK]
    for name in ("browser_actor_graph", "browser_actors_between", "browser_technique_log_sources"):
        assert name in names
    assert len(names) == len(set(names))
    assert all(q.example is not None for q in PACK)


@pytest.mark.parametrize("name", [q.name for q in PACK])
def test_every_pack_query_runs_as_pasted(graph: Graph, name: str) -> None:
    q = query(name)
    rows = graph.read(q.text, **(q.example or {}))
    if name.startswith("browser_"):
        assert rows, f"{name}: its example draws nothing"
        for p in paths(graph, q):
            assert isinstance(p, neo4j.graph.Path) and len(p) >= 1
            for n in p.nodes:
                assert not n.get("revoked") and not n.get("deprecated")
            for r in p.relationships:
                assert not r.get("revoked") and not r.get("deprecated")


# ---------------------------------------------------------------- what they draw is right


def _current_uses(source_attack_id: str, stix_type: str) -> dict[str, set[str]]:
    """STIX type prefix -> ATT&CK ids the object USES (current objects and relationships)."""
    out: dict[str, set[str]] = {}
    for path in SESSION_BUNDLES:
        objs = by_stix_id(path)
        sid = stix_id_for(path, stix_type, source_attack_id)
        if sid is None:
            continue
        for r in current_relationships(path):
            if r["relationship_type"] == "uses" and r["source_ref"] == sid:
                kind = r["target_ref"].split("--")[0]
                out.setdefault(kind, set()).add(ext_id(objs[r["target_ref"]]))
    return out


def test_actor_graph_is_the_actor_its_techniques_software_and_campaigns(graph: Graph) -> None:
    drawn = paths(graph, query("browser_actor_graph"), actor="cozy bear", limit=5000)
    assert {aid(p.start_node) for p in drawn} == {"G0016"}
    ends = {(next(iter(p.end_node.labels & {"Technique", "Software", "Campaign"})),
             aid(p.end_node)) for p in drawn}  # fmt: skip
    uses = _current_uses("G0016", "intrusion-set")
    assert {i for k, i in ends if k == "Technique"} == uses["attack-pattern"]
    assert {i for k, i in ends if k == "Software"} == uses.get("malware", set()) | uses.get(
        "tool", set()
    )
    gid = stix_id_for(ENTERPRISE, "intrusion-set", "G0016")
    objs = by_stix_id(ENTERPRISE)
    campaigns = {
        ext_id(objs[r["source_ref"]])
        for r in current_relationships(ENTERPRISE)
        if r["relationship_type"] == "attributed-to" and r["target_ref"] == gid
    }
    assert campaigns and {i for k, i in ends if k == "Campaign"} == campaigns


def test_actors_between_shows_what_both_use(graph: Graph) -> None:
    drawn = paths(graph, query("browser_actors_between"), actor_a="APT29", actor_b="Fancy Bear",
                  limit=100000)  # fmt: skip
    assert drawn and all({aid(p.start_node), aid(p.end_node)} == {"G0016", "G0007"} for p in drawn)
    assert all(2 <= len(p) <= 3 for p in drawn)
    assert all("Group" not in n.labels for p in drawn for n in p.nodes[1:-1])
    lengths = [len(p) for p in drawn]
    assert lengths == sorted(lengths)  # shortest first
    a, b = _current_uses("G0016", "intrusion-set"), _current_uses("G0007", "intrusion-set")
    middle = {(next(iter(p.nodes[1].labels & {"Technique", "Software"})), aid(p.nodes[1]))
              for p in drawn if len(p) == 2}  # fmt: skip
    shared_t = a["attack-pattern"] & b["attack-pattern"]
    shared_s = (a.get("malware", set()) | a.get("tool", set())) & (
        b.get("malware", set()) | b.get("tool", set())
    )
    assert shared_t and {i for k, i in middle if k == "Technique"} == shared_t
    assert {i for k, i in middle if k == "Software"} == shared_s


def _log_source_chains(technique: str) -> set[tuple[str, str, str, str, str]]:
    """(strategy, analytic, log source name, channel, data component) for a technique, from the
    bundle: detects relationships, analytic refs, log source references."""
    objs = by_stix_id(ENTERPRISE)
    tid = stix_id_for(ENTERPRISE, "attack-pattern", technique)
    out = set()
    for r in current_relationships(ENTERPRISE):
        if r["relationship_type"] != "detects" or r["target_ref"] != tid:
            continue
        strategy = objs[r["source_ref"]]
        if strategy["type"] != "x-mitre-detection-strategy":
            continue
        for ref in strategy.get("x_mitre_analytic_refs", []):
            analytic = objs[ref]
            if not is_current(analytic):
                continue
            for ls in analytic.get("x_mitre_log_source_references", []):
                dc = objs[ls["x_mitre_data_component_ref"]]
                if is_current(dc):
                    out.add((ext_id(strategy), ext_id(analytic), ls["name"], ls["channel"],
                             ext_id(dc)))  # fmt: skip
    return out


@pytest.mark.parametrize("technique", ["T1059.001", "T1003.001", "T1566"])
def test_gap_technique_to_log_sources(graph: Graph, technique: str) -> None:
    expected = _log_source_chains(technique)
    assert expected, f"{technique} has no v18 detection chain in the bundle"
    drawn = paths(graph, query("browser_technique_log_sources"), technique_id=technique.lower(),
                  limit=100000)  # fmt: skip
    chains = set()
    for p in drawn:
        labels = [next(iter(n.labels - {"AttackObject"})) for n in p.nodes]
        assert labels == ["Technique", "DetectionStrategy", "Analytic", "LogSource",
                          "DataComponent"]  # fmt: skip
        assert [r.type for r in p.relationships] == [
            "DETECTS", "HAS_ANALYTIC", "USES_LOG_SOURCE", "OF_DATA_COMPONENT"
        ]  # fmt: skip
        t, s, a, ls, dc = p.nodes
        assert aid(t) == technique
        chains.add((aid(s), aid(a), ls["name"], ls["channel"], aid(dc)))
    assert chains == expected


# ---------------------------------------------------------------- the style sheet


def parse_grass(text: str) -> dict[str, dict[str, str]]:
    """Neo4j Browser's own GraSS reader (``parseGrassCSS`` in neo4j-browser's
    ``src/shared/services/grassUtils.ts``), ported line by line: what it cannot read is lost
    silently in Browser, so the test reads it the same way."""
    inside_string = inside_props = inside_binding = False
    keyword = props = ""
    rules: dict[str, str] = {}
    for c in text:
        skip = True
        if c == "{":
            if inside_string:
                skip = False
            elif inside_props:
                inside_binding = True
            else:
                inside_props = True
        elif c == "}":
            if inside_string:
                skip = False
            elif inside_binding:
                inside_binding = False
            else:
                inside_props = False
                rules[keyword] = props
                keyword = props = ""
        elif c in "'\"":
            inside_string = not inside_string
        else:
            skip = False
        if skip:
            continue
        if inside_props:
            props += c
        elif not c.isspace():
            keyword += c
    parsed: dict[str, dict[str, str]] = {}
    for key, body in rules.items():
        parsed[key] = {}
        for prop in body.split(";"):
            parts = prop.split(":")
            if len(parts) == 2:
                parsed[key][parts[0].strip()] = parts[1].strip()
    return parsed


def model_labels_and_types() -> tuple[set[str], set[str]]:
    """Every node label and relationship type docs/graph-model.md names."""
    text = GRAPH_MODEL.read_text(encoding="utf-8")
    table = text.split("## Nodes", 1)[1].split("##", 1)[0]
    labels = set()
    for line in table.splitlines():
        if line.startswith("| `"):
            labels |= set(re.findall(r"`([A-Z][A-Za-z]+)`", line.split("|")[1]))
    labels |= set(re.findall(r"label `([A-Z][A-Za-z]+)`", text))
    mermaid = text.split("```mermaid", 1)[1].split("```", 1)[0]
    types = set(re.findall(r"--\s*\"?([A-Z][A-Z_]+)", mermaid))
    return labels, types


@pytest.fixture(scope="module")
def grass() -> dict[str, dict[str, str]]:
    return parse_grass(kit.grass_text())


def test_grass_styles_every_label_and_type_of_the_model(grass: dict[str, dict[str, str]]) -> None:
    labels, types = model_labels_and_types()
    assert {"Technique", "Group", "LogSource", "Release", "AttackObject", "Malware"} <= labels
    assert {"USES", "DETECTS", "OF_DATA_COMPONENT", "REVOKED_BY"} <= types
    for label in labels:
        rule = grass.get(f"node.{label}")
        assert rule, f"no rule for label {label}"
        assert re.fullmatch(r"#[0-9A-Fa-f]{6}", rule.get("color", "")), label
        assert "caption" in rule, label
    for rel in types:
        assert f"relationship.{rel}" in grass, rel
    colors = [grass[f"node.{label}"]["color"].upper() for label in labels]
    assert len(colors) == len(set(colors)), "two labels share a colour"
    assert grass["node"]["diameter"].endswith("px")


def test_grass_lost_nothing(grass: dict[str, dict[str, str]]) -> None:
    # Browser drops a property whose value holds a ':' and reads comments as selectors.
    text = kit.grass_text()
    assert "/*" not in text and "//" not in text
    declared = len(re.findall(r"^\s+[a-z-]+:", text, flags=re.M))
    assert sum(len(props) for props in grass.values()) == declared


def _browser_style(grass: dict[str, dict[str, str]], labels: list[str]) -> dict[str, str]:
    """Browser's StyleElement.applyRules: every rule whose classes the node has, in file order."""
    props: dict[str, str] = {}
    for key, rule in grass.items():
        tag, *classes = key.split(".")
        if tag == "node" and set(classes) <= set(labels):
            props.update(rule)
    return props


@pytest.mark.parametrize(
    "labels, own",
    [(["AttackObject", "Software", "Malware"], "Malware"), (["AttackObject", "Software", "Tool"],
     "Tool"), (["AttackObject", "Technique"], "Technique"), (["LogSource"], "LogSource")],
)  # fmt: skip
def test_the_most_specific_label_wins(
    grass: dict[str, dict[str, str]], labels: list[str], own: str
) -> None:
    assert _browser_style(grass, labels)["color"] == grass[f"node.{own}"]["color"]


def test_captions_name_properties_every_node_has(
    graph: Graph, grass: dict[str, dict[str, str]]
) -> None:
    labels, _ = model_labels_and_types()
    for label in sorted(labels):
        caption = _browser_style(grass, ["AttackObject", label] if label != "LogSource"
                                 and label != "Release" else [label])["caption"]  # fmt: skip
        props = re.findall(r"\{(\w+)\}", caption)
        assert props, f"{label}: caption {caption!r} shows no property"
        rows = graph.read(
            "MATCH (n) WHERE $label IN labels(n) "
            "RETURN count(n) AS n, sum(CASE WHEN all(k IN $props WHERE n[k] IS NOT NULL) "
            "THEN 1 ELSE 0 END) AS captioned",
            label=label,
            props=props,
        )
        assert rows[0]["n"] > 0, f"no {label} node in the test graph"
        assert rows[0]["captioned"] == rows[0]["n"], f"{label} nodes lack {props}"


# ---------------------------------------------------------------- favorites and docs


def _split_favorite(text: str) -> tuple[str, dict[str, str], str]:
    lines = text.splitlines()
    params = {}
    i = 1
    while lines[i].startswith(":param "):
        m = re.fullmatch(r":param (\w+) => (.+);", lines[i])
        assert m, lines[i]
        params[m.group(1)] = m.group(2)
        i += 1
    return lines[0], params, "\n".join(lines[i:]) + "\n"


def test_favorites_zip_is_what_browser_imports() -> None:
    data = kit.favorites_zip()
    assert data == kit.favorites_zip()  # same pack, same bytes
    pack = kit.pack()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
        assert names == [f"ttpgraph/{q.name}.cypher" for q in pack]
        for q in pack:
            title, params, body = _split_favorite(zf.read(f"ttpgraph/{q.name}.cypher").decode())
            assert title.startswith("// ttpgraph ")
            assert set(params) == set(q.params)
            assert body == q.text.rstrip() + "\n"


def test_favorite_params_set_what_the_query_needs(graph: Graph) -> None:
    # Browser evaluates each `:param k => v` as Cypher (RETURN v AS k): do the same.
    for q in PACK:
        _, params, body = _split_favorite(kit.favorite_text(q))
        values = {k: graph.read(f"RETURN {v} AS v")[0]["v"] for k, v in params.items()}
        assert values == q.example
        assert isinstance(graph.read(body, **values), list)


def test_docs_cover_the_pack() -> None:
    text = (REPO / "docs" / "browser-kit.md").read_text(encoding="utf-8")
    for q in PACK:
        if q.name.startswith("browser_"):
            assert q.name in text, q.name
    assert "ttpgraph.grass" in text and "favorites.zip" in text and ":param" in text


def test_cli_writes_the_kit(settings: Settings, tmp_path: Path) -> None:
    proc = run_cli(settings, "browser-kit", "--output", str(tmp_path / "kit"))
    assert proc.returncode == 0, proc.stderr
    written = {p.name for p in (tmp_path / "kit").iterdir()}
    assert {"ttpgraph.grass", "ttpgraph-favorites.zip"} <= written
    assert {f"{q.name}.cypher" for q in PACK} <= written
    assert (tmp_path / "kit" / "ttpgraph.grass").read_text() == kit.grass_text()
