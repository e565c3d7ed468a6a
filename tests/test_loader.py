"""The loader against the real server and the real ATT&CK bundles."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest

from loader.load import load_file
from loader.stix import BundleError
from queries.graph import Graph

from .bundle_facts import expected_counts, group_direct_techniques, objects, union_counts
from .conftest import ENTERPRISE, ICS, ICS_21, MOBILE, SESSION_BUNDLES


def fingerprint(graph: Graph) -> dict[str, int | str | None]:
    """Counts that change if anything is written, plus the releases' load times."""
    rows = graph.read(
        "MATCH (n) WITH count(n) AS nodes "
        "MATCH ()-[r]->() WITH nodes, count(r) AS rels "
        "OPTIONAL MATCH (x:Release) "
        "RETURN nodes, rels, collect(x.domain + '@' + x.loaded_at) AS releases"
    )[0]
    rows["releases"] = ",".join(sorted(rows["releases"]))
    return rows


@pytest.mark.parametrize("bundle", SESSION_BUNDLES, ids=lambda p: p.name)
def test_release_counts_equal_the_bundle(graph: Graph, bundle: Path) -> None:
    expected = expected_counts(bundle)
    domain = next(o for o in objects(bundle) if o["type"] == "x-mitre-matrix")
    domain_id = next(
        r["external_id"]
        for r in domain["external_references"]
        if r["source_name"] == "mitre-attack"
    )
    rel = graph.read(
        "MATCH (r:Release {domain: $d}) RETURN r.counts AS counts, r.version AS version",
        d=domain_id,
    )
    assert rel, f"no Release node for {domain_id}"
    counts = {k: v for k, v in json.loads(rel[0]["counts"]).items() if v}
    assert counts == {k: v for k, v in expected.items() if v}
    assert rel[0]["version"] == "18.1"


def test_graph_counts_equal_the_union_of_bundles(graph: Graph) -> None:
    """Each label and STIX relationship type holds exactly the distinct objects of the bundles."""
    expected = union_counts(SESSION_BUNDLES)
    for name, n in expected.items():
        if name.isupper():
            got = graph.read(f"MATCH ()-[r:{name}]->() RETURN count(r) AS n")[0]["n"]
        else:
            got = graph.read(f"MATCH (n:{name}) RETURN count(n) AS n")[0]["n"]
        assert got == n, name
    dup = graph.read(
        "MATCH (n:AttackObject) WITH n.stix_id AS id, count(*) AS c WHERE c > 1 "
        "RETURN count(*) AS d"
    )
    assert dup[0]["d"] == 0


def test_revoked_and_deprecated_are_kept_and_flagged(graph: Graph) -> None:
    objs = objects(ENTERPRISE)
    revoked = {o["id"] for o in objs if o.get("revoked") and o["type"] != "relationship"}
    deprecated = {
        o["id"] for o in objs if o.get("x_mitre_deprecated") and o["type"] != "relationship"
    }
    got = graph.read(
        "MATCH (n:AttackObject) WHERE 'enterprise-attack' IN n.loaded_domains "
        "RETURN collect(CASE WHEN n.revoked THEN n.stix_id END) AS r, "
        "collect(CASE WHEN n.deprecated THEN n.stix_id END) AS d"
    )[0]
    assert set(got["r"]) == revoked
    assert set(got["d"]) == deprecated
    # every revoked-by relationship of the bundle is a REVOKED_BY edge from the revoked object
    expected = {
        (o["source_ref"], o["target_ref"])
        for o in objs
        if o["type"] == "relationship" and o["relationship_type"] == "revoked-by"
    }
    rows = graph.read(
        "MATCH (a)-[r:REVOKED_BY]->(b) WHERE 'enterprise-attack' IN r.loaded_domains "
        "RETURN a.stix_id AS a, b.stix_id AS b, a.revoked AS flagged"
    )
    assert {(r["a"], r["b"]) for r in rows} == expected
    assert all(r["flagged"] for r in rows)


def test_groups_carry_their_name_as_words_are_compared(graph: Graph) -> None:
    """Every group of the three domains, revoked and deprecated ones too, stores its name
    trimmed, lower-cased and with white space collapsed (``name_key``: what an analyst's words
    are looked up by), and the index that finds it is online."""
    expected = {
        o["id"]: " ".join(o["name"].lower().split())
        for bundle in (ENTERPRISE, MOBILE, ICS)
        for o in objects(bundle)
        if o["type"] == "intrusion-set"
    }
    rows = graph.read("MATCH (g:Group) RETURN g.stix_id AS id, g.name_key AS key")
    assert {r["id"]: r["key"] for r in rows if r["id"] in expected} == expected
    index = graph.read(
        "SHOW INDEXES YIELD name, state, labelsOrTypes, properties "
        "WHERE name = 'group_name_key' RETURN state, labelsOrTypes, properties"
    )
    assert index == [{"state": "ONLINE", "labelsOrTypes": ["Group"], "properties": ["name_key"]}]


def test_tactics_come_from_kill_chain_phases(graph: Graph) -> None:
    """T1055.011 sits in two tactics in 18.1; every technique's tactics match its phases."""
    objs = objects(ENTERPRISE)
    tactic_by_short = {
        o["x_mitre_shortname"]: o["id"] for o in objs if o["type"] == "x-mitre-tactic"
    }
    expected = {
        o["id"]: sorted(tactic_by_short[p["phase_name"]] for p in o.get("kill_chain_phases", []))
        for o in objs
        if o["type"] == "attack-pattern"
    }
    rows = graph.read(
        "MATCH (t:Technique) WHERE 'enterprise-attack' IN t.loaded_domains "
        "OPTIONAL MATCH (t)-[:IN_TACTIC]->(ta:Tactic) "
        "RETURN t.stix_id AS id, collect(ta.stix_id) AS tactics"
    )
    got = {r["id"]: sorted(r["tactics"]) for r in rows}
    assert got == expected
    t = graph.read(
        "MATCH (t:Technique {attack_id: 'T1055.011'})-[:IN_TACTIC]->(ta) "
        "RETURN collect(ta.shortname) AS s"
    )[0]["s"]
    assert sorted(t) == ["defense-evasion", "privilege-escalation"]


@pytest.mark.parametrize("group", ["G0016", "G0007", "G0032", "G0046"])
def test_direct_techniques_match_mitreattack_python(graph: Graph, group: str, mitre_data) -> None:
    gid = next(
        o["id"]
        for o in objects(ENTERPRISE)
        if o["type"] == "intrusion-set"
        and any(r.get("external_id") == group for r in o["external_references"])
    )
    oracle = {
        entry["object"].external_references[0].external_id
        for entry in mitre_data.get_related("intrusion-set", "uses", "attack-pattern").get(gid, [])
        if not entry["object"].get("revoked") and not entry["object"].get("x_mitre_deprecated")
    }
    rows = graph.read(
        "MATCH (g:Group {attack_id: $g})-[u:USES]->(t:Technique) "
        "WHERE NOT t.revoked AND NOT t.deprecated AND NOT u.revoked AND NOT u.deprecated "
        "AND 'enterprise-attack' IN t.domains RETURN collect(DISTINCT t.attack_id) AS ids",
        g=group,
    )
    got = set(rows[0]["ids"])
    assert got == oracle
    assert got == group_direct_techniques(ENTERPRISE, group)
    assert len(got) > 10


def test_uses_edges_keep_procedure_text_and_citations(graph: Graph) -> None:
    rel = next(
        o
        for o in objects(ENTERPRISE)
        if o["type"] == "relationship"
        and o["relationship_type"] == "uses"
        and len(o.get("external_references", [])) >= 2
    )
    row = graph.read(
        "MATCH ()-[u:USES {stix_id: $id}]->() RETURN u.description AS d, u.citations AS c, "
        "u.citation_urls AS urls",
        id=rel["id"],
    )[0]
    assert row["d"] == rel["description"]
    assert row["c"] == [r["source_name"] for r in rel["external_references"]]
    assert row["urls"] == [r.get("url", "") for r in rel["external_references"]]


def test_v18_detection_model(graph: Graph) -> None:
    """Detection strategy -> analytic -> log source -> data component, as the bundle says."""
    objs = objects(ENTERPRISE)
    an = next(
        o for o in objs if o["type"] == "x-mitre-analytic" and o["x_mitre_log_source_references"]
    )
    expected = sorted(
        (r["name"], r["channel"], r["x_mitre_data_component_ref"])
        for r in an["x_mitre_log_source_references"]
    )
    rows = graph.read(
        "MATCH (a:Analytic {stix_id: $id})-[:USES_LOG_SOURCE]->(l:LogSource)"
        "-[:OF_DATA_COMPONENT]->(dc:DataComponent) RETURN l.name AS n, l.channel AS c, "
        "dc.stix_id AS dc",
        id=an["id"],
    )
    assert sorted((r["n"], r["c"], r["dc"]) for r in rows) == expected
    strategy = next(
        o
        for o in objs
        if o["type"] == "x-mitre-detection-strategy" and an["id"] in o["x_mitre_analytic_refs"]
    )
    rows = graph.read(
        "MATCH (d:DetectionStrategy {stix_id: $d})-[:HAS_ANALYTIC]->(a:Analytic {stix_id: $a}) "
        "MATCH (d)-[:DETECTS]->(t:Technique) RETURN count(t) AS n",
        d=strategy["id"],
        a=an["id"],
    )
    assert rows[0]["n"] >= 1


def test_reload_is_idempotent(graph: Graph) -> None:
    before = fingerprint(graph)
    load_file(graph, str(ENTERPRISE))
    after = fingerprint(graph)
    assert (after["nodes"], after["rels"]) == (before["nodes"], before["rels"])


def test_stix20_and_stix21_ics_give_the_same_graph(graph: Graph, tmp_path: Path) -> None:
    before = fingerprint(graph)
    gz = tmp_path / "ics-attack-18.1.json.gz"
    with open(ICS, "rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    res = load_file(graph, str(gz))
    assert res.spec_version == "2.0" and res.release == "18.1"
    after = fingerprint(graph)
    assert (after["nodes"], after["rels"]) == (before["nodes"], before["rels"])
    res = load_file(graph, str(ICS_21))
    assert res.spec_version == "2.1" and res.release == "18.1"


def test_mobile_and_enterprise_side_by_side(graph: Graph) -> None:
    rows = graph.read(
        "MATCH (t:Technique)-[:IN_TACTIC]->(ta:Tactic) "
        "WITH t, ta WHERE NOT any(d IN t.domains WHERE d IN ta.domains) RETURN count(*) AS n"
    )
    assert rows[0]["n"] == 0, "a technique is tied to another domain's tactic"
    mob = {o["id"] for o in objects(MOBILE) if o["type"] == "attack-pattern"}
    got = graph.read(
        "MATCH (t:Technique) WHERE 'mobile-attack' IN t.loaded_domains RETURN count(t) AS n"
    )
    assert got[0]["n"] == len(mob)


BAD_INPUTS = {
    "not-json.json": (b"this is not json {", "not valid JSON"),
    "array.json": (b"[1, 2, 3]", "expected a STIX bundle object"),
    "not-bundle.json": (b'{"type": "indicator", "id": "x"}', "not a STIX bundle"),
    "truncated.json": (None, "not valid JSON"),
    "not-attack.json": (
        json.dumps(
            {
                "type": "bundle",
                "id": "bundle--00000000-0000-4000-8000-000000000000",
                "objects": [
                    {
                        "type": "identity",
                        "id": "identity--00000000-0000-4000-8000-000000000001",
                        "name": "x",
                    }
                ],
            }
        ).encode(),
        "not an ATT&CK bundle",
    ),
    "dangling.json": (None, "not in the bundle"),
    "bad-type.json": (None, "'name' must be a non-empty string"),
}


def _bad_bytes(name: str) -> bytes:
    data, _ = BAD_INPUTS[name]
    if data is not None:
        return data
    raw = ICS_21.read_bytes()
    if name == "truncated.json":
        return raw[: len(raw) // 2]
    bundle = json.loads(raw)
    if name == "dangling.json":
        rel = next(o for o in bundle["objects"] if o["type"] == "relationship")
        rel["target_ref"] = "attack-pattern--00000000-0000-4000-8000-00000000dead"
    if name == "bad-type.json":
        tech = next(o for o in bundle["objects"] if o["type"] == "attack-pattern")
        tech["name"] = 42
    return json.dumps(bundle).encode()


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_is_refused_and_writes_nothing(graph: Graph, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(_bad_bytes(name))
    before = fingerprint(graph)
    with pytest.raises(BundleError) as info:
        load_file(graph, str(path))
    message = str(info.value)
    assert BAD_INPUTS[name][1] in message
    assert "\n" not in message and name in message
    assert fingerprint(graph) == before


def test_gzip_bomb_is_refused(graph: Graph, tmp_path: Path, monkeypatch) -> None:
    from loader import sources

    monkeypatch.setattr(sources, "MAX_BUNDLE_BYTES", 1024 * 1024)
    path = tmp_path / "bomb.json.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(b'{"type": "bundle", "objects": [' + b" " * (8 * 1024 * 1024) + b"]}")
    before = fingerprint(graph)
    with pytest.raises(BundleError, match="larger than 1 MB"):
        load_file(graph, str(path))
    assert fingerprint(graph) == before


def test_wrong_domain_is_refused(graph: Graph) -> None:
    with pytest.raises(BundleError, match="holds mobile-attack, not enterprise-attack"):
        load_file(graph, str(MOBILE), domain="enterprise")
