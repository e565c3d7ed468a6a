"""ATT&CK releases over time, on a throw-away Neo4j of this module's own (never the session graph):
upgrading 17.1 -> 18.1 equals a fresh 18.1 load, retired objects are kept only while something
points at them, the release diff matches facts computed from the two bundles, and `sync` fetches
from a real TAXII server (medallion) only what was added since the last load."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from loader import neo4j_server as srv
from loader.diff import diff_releases
from loader.load import load_file
from loader.sync import sync, sync_lock
from queries.graph import Graph
from queries.layers import validate_layer
from queries.releases import diff_layer, diff_markdown, release_impact
from queries.settings import Settings

from .bundle_facts import expected_counts, ext_id, objects
from .conftest import ENTERPRISE, ENTERPRISE_17, ICS, ICS_21, free_port, throwaway_server

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parent.parent

# --------------------------------------------------------------------------- shared helpers


def reset(graph: Graph) -> None:
    graph.write("MATCH (n) DETACH DELETE n")


def _freeze(props: dict[str, Any]) -> tuple:
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in props.items()))


def attack_fingerprint(graph: Graph) -> tuple[dict[str, tuple], Counter]:
    """Every ATT&CK node (by STIX id or log source key: labels and properties) and every edge
    between ATT&CK nodes (type, ends, properties); load tokens left out."""
    nodes = {
        r["k"]: (tuple(sorted(r["labels"])), _freeze(r["p"]))
        for r in graph.read(
            "MATCH (n) WHERE n:AttackObject OR n:LogSource "
            "RETURN coalesce(n.stix_id, n.key) AS k, labels(n) AS labels, "
            "n {.*, load_token: null} AS p"
        )
    }
    for k, (labels, props) in nodes.items():
        nodes[k] = (labels, tuple(p for p in props if p[1] is not None))
    rels: Counter = Counter()
    for r in graph.read(
        "MATCH (a)-[r]->(b) WHERE (a:AttackObject OR a:LogSource) "
        "AND (b:AttackObject OR b:LogSource) "
        "RETURN type(r) AS t, coalesce(a.stix_id, a.key) AS a, coalesce(b.stix_id, b.key) AS b, "
        "r {.*, load_token: null} AS p"
    ):
        p = {k: v for k, v in r["p"].items() if v is not None}
        rels[(r["t"], r["a"], r["b"], _freeze(p))] += 1
    return nodes, rels


def assert_same_graph(got: tuple[dict, Counter], want: tuple[dict, Counter]) -> None:
    gn, gr = got
    wn, wr = want
    extra = sorted(set(gn) - set(wn))[:5]
    missing = sorted(set(wn) - set(gn))[:5]
    changed = sorted(k for k in set(gn) & set(wn) if gn[k] != wn[k])[:5]
    assert not extra and not missing and not changed, (
        f"nodes: extra {extra}, missing {missing}, different {changed}"
    )
    assert len(gn) == len(wn)
    extra_r = list((gr - wr).elements())[:3]
    missing_r = list((wr - gr).elements())[:3]
    assert not extra_r and not missing_r, f"relationships: extra {extra_r}, missing {missing_r}"


def duplicates(graph: Graph) -> int:
    nodes = graph.read(
        "MATCH (n:AttackObject) WITH n.stix_id AS id, count(*) AS c WHERE c > 1 "
        "RETURN count(*) AS d"
    )[0]["d"]
    rels = graph.read(
        "MATCH ()-[r]->() WHERE r.stix_id IS NOT NULL WITH r.stix_id AS id, count(*) AS c "
        "WHERE c > 1 RETURN count(*) AS d"
    )[0]["d"]
    return nodes + rels


def release_counts(graph: Graph, domain: str) -> dict[str, int]:
    row = graph.read("MATCH (r:Release {domain: $d}) RETURN r.counts AS c", d=domain)
    return {k: v for k, v in json.loads(row[0]["c"]).items() if v}


# ------------------------------------------------------------------- facts from the bundles


def _current(o: dict[str, Any]) -> bool:
    return not o.get("revoked") and not o.get("x_mitre_deprecated")


def _phases(o: dict[str, Any]) -> list[str]:
    return sorted(
        {
            p["phase_name"]
            for p in o.get("kill_chain_phases", [])
            if p["kill_chain_name"].startswith("mitre-")
        }
    )


def diff_facts(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> dict[str, Any]:
    """What changed between two releases, computed straight from their objects."""

    def techniques(objs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        return {o["id"]: o for o in objs if o["type"] == "attack-pattern"}

    ot, nt = techniques(old), techniques(new)
    by_id_new = {o["id"]: o for o in new if o["type"] != "relationship"}
    revoked_by = {
        r["source_ref"]: r["target_ref"]
        for r in new
        if r["type"] == "relationship" and r["relationship_type"] == "revoked-by"
    }

    def replacement(i: str) -> str | None:
        for _ in range(5):
            i = revoked_by.get(i, "")
            if i in nt and not nt[i].get("revoked"):
                return ext_id(nt[i])
        return None

    both = set(ot) & set(nt)

    def group_sets(objs: list[dict[str, Any]]) -> dict[str, dict[str, set[str]]]:
        """group -> path kind -> techniques: direct, campaign, software (own and campaigns')."""
        objs_by_id = {o["id"]: o for o in objs if o["type"] != "relationship"}

        def live(i: str) -> bool:
            return i in objs_by_id and _current(objs_by_id[i])

        uses: dict[str, set[str]] = {}
        campaigns: dict[str, set[str]] = {}
        for r in objs:
            if r["type"] != "relationship" or not _current(r):
                continue
            if not (live(r["source_ref"]) and live(r["target_ref"])):
                continue
            if r["relationship_type"] == "uses":
                uses.setdefault(r["source_ref"], set()).add(r["target_ref"])
            elif r["relationship_type"] == "attributed-to" and r["source_ref"].startswith(
                "campaign--"
            ):
                campaigns.setdefault(r["target_ref"], set()).add(r["source_ref"])

        def techniques(src: str) -> set[str]:
            return {ext_id(objs_by_id[t]) for t in uses.get(src, ()) if "attack-pattern" in t}

        def software(src: str) -> set[str]:
            return {s for s in uses.get(src, ()) if s.startswith(("malware--", "tool--"))}

        out = {}
        for o in objs:
            if o["type"] != "intrusion-set" or not _current(o):
                continue
            mine = campaigns.get(o["id"], set())
            tools = software(o["id"]).union(*(software(c) for c in mine))
            out[ext_id(o)] = {
                "direct": techniques(o["id"]),
                "campaign": set().union(*(techniques(c) for c in mine)),
                "software": set().union(*(techniques(s) for s in tools)),
            }
        return out

    og, ng = group_sets(old), group_sets(new)
    groups = {}
    empty: dict[str, set[str]] = {"direct": set(), "campaign": set(), "software": set()}
    for g in set(og) | set(ng):
        ok, nk = og.get(g, empty), ng.get(g, empty)
        kinds = [k for k in ("direct", "campaign", "software") if ok[k] != nk[k]]
        if g in og and g in ng and not kinds:
            continue
        before, after = set().union(*ok.values()), set().union(*nk.values())
        status = "changed" if g in og and g in ng else ("added" if g in ng else "retired")
        groups[g] = (status, sorted(after - before), sorted(before - after), kinds)

    def component_detects(objs: list[dict[str, Any]]) -> int:
        ids = {o["id"]: o for o in objs if o["type"] != "relationship"}
        return sum(
            1
            for r in objs
            if r["type"] == "relationship"
            and r["relationship_type"] == "detects"
            and r["source_ref"].startswith("x-mitre-data-component--")
            and _current(r)
            and _current(ids[r["target_ref"]])
        )

    return {
        "added": sorted(ext_id(nt[i]) for i in set(nt) - set(ot) if _current(nt[i])),
        "removed": sorted(ext_id(ot[i]) for i in set(ot) - set(nt) if _current(ot[i])),
        "revoked": sorted(
            (ext_id(nt[i]), replacement(i))
            for i in both
            if nt[i].get("revoked") and not ot[i].get("revoked")
        ),
        "deprecated": sorted(
            ext_id(nt[i])
            for i in both
            if nt[i].get("x_mitre_deprecated")
            and not ot[i].get("x_mitre_deprecated")
            and not nt[i].get("revoked")
        ),
        "renamed": sorted(
            (ext_id(nt[i]), ot[i]["name"], nt[i]["name"])
            for i in both
            if _current(nt[i]) and nt[i]["name"] != ot[i]["name"]
        ),
        "moved": sorted(
            (ext_id(nt[i]), _phases(ot[i]), _phases(nt[i]))
            for i in both
            if _current(nt[i]) and _phases(nt[i]) != _phases(ot[i])
        ),
        "groups": groups,
        "component_detects": (component_detects(old), component_detects(new)),
        "strategies": (
            sum(1 for o in old if o["type"] == "x-mitre-detection-strategy" and _current(o)),
            sum(1 for o in new if o["type"] == "x-mitre-detection-strategy" and _current(o)),
        ),
        "by_id_new": by_id_new,
    }


def assert_diff_matches(d, facts: dict[str, Any]) -> None:
    assert [c.technique_id for c in d.added] == facts["added"]
    assert [c.technique_id for c in d.removed] == facts["removed"]
    assert [(c.technique_id, c.replaced_by) for c in d.revoked] == facts["revoked"]
    assert [c.technique_id for c in d.deprecated] == facts["deprecated"]
    assert [(c.technique_id, c.old_name, c.name) for c in d.renamed] == facts["renamed"]
    assert [(c.technique_id, c.old_tactics, c.tactics) for c in d.moved] == facts["moved"]
    assert {g.group_id: (g.status, g.gained, g.lost, g.changed_through) for g in d.groups} == facts[
        "groups"
    ]
    for g in d.groups:  # each kind's change is the difference of that kind's sets
        for kind, c in g.by_kind.items():
            assert c.new_count - c.old_count == len(c.gained) - len(c.lost), (g.group_id, kind)
    assert (d.detection.old.component_detects, d.detection.new.component_detects) == facts[
        "component_detects"
    ]
    assert (d.detection.old.strategies, d.detection.new.strategies) == facts["strategies"]


# ------------------------------------------------------------------------- pure diff tests


def test_diff_17_to_18_matches_the_bundles() -> None:
    d = diff_releases(None, old=str(ENTERPRISE_17), new=str(ENTERPRISE))
    facts = diff_facts(list(objects(ENTERPRISE_17)), list(objects(ENTERPRISE)))
    assert_diff_matches(d, facts)
    assert (d.old_version, d.new_version, d.domain) == ("17.1", "18.1", "enterprise-attack")
    # What 18.1 did, as MITRE's release notes say: new techniques, two renames, and the move
    # of detections from data components to detection strategies.
    assert "T1677" in facts["added"] and len(d.added) == 12
    assert ("T1552.003", "Bash History", "Shell History") in facts["renamed"]
    assert d.detection.model_changed
    assert d.detection.old.model == "data components (v17)"
    assert d.detection.new.model == "detection strategies (v18)"
    # A data component's v17 DETECTS techniques are now reached through analytics: the diff says
    # per component how many it keeps; DC0032 Process Creation is the classic example.
    proc = next(c for c in d.detection.components if c.data_component_id == "DC0032")
    assert proc.old_model == "DETECTS" and proc.new_model == "analytics"
    assert proc.kept > 50 and proc.old_techniques > 100
    md = diff_markdown(d)
    assert "| T1552.003 | Bash History | Shell History |" in md
    assert "## Detection model" in md
    layer = diff_layer(d)
    validate_layer(layer)
    colors = {t["techniqueID"]: t.get("color") for t in layer["techniques"]}
    assert colors["T1677"] == "#8ec843" and colors["T1552.003"] == "#ffe766"
    assert layer["versions"]["attack"] == "18.1"


def _edited_release(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """Enterprise 18.1 with the edits MITRE makes between releases, on real objects: a technique
    revoked by another, one deprecated, one moved to another tactic, one renamed, one removed
    with its relationships, and a group that stops using one technique and starts another."""
    objs = json.loads(ENTERPRISE.read_text(encoding="utf-8"))["objects"]
    by_ext = {ext_id(o): o for o in objs if o["type"] == "attack-pattern" and _current(o)}
    picks = {
        "revoked": "T1003.008",
        "replacement": "T1003.001",
        "deprecated": "T1021.005",
        "moved": "T1059.004",
        "renamed": "T1566.001",
        "removed": "T1001.002",
    }
    now = "2026-01-01T00:00:00.000Z"
    by_ext[picks["revoked"]]["revoked"] = True
    by_ext[picks["deprecated"]]["x_mitre_deprecated"] = True
    by_ext[picks["moved"]]["kill_chain_phases"].append(
        {"kill_chain_name": "mitre-attack", "phase_name": "persistence"}
    )
    by_ext[picks["renamed"]]["name"] = "Spearphishing Attachment (edited)"
    gone = by_ext[picks["removed"]]["id"]
    objs = [
        o
        for o in objs
        if o["id"] != gone and gone not in (o.get("source_ref"), o.get("target_ref"))
    ]
    objs.append(
        {
            "type": "relationship",
            "id": f"relationship--{uuid.uuid4()}",
            "created": now,
            "modified": now,
            "relationship_type": "revoked-by",
            "source_ref": by_ext[picks["revoked"]]["id"],
            "target_ref": by_ext[picks["replacement"]]["id"],
        }
    )
    apt29 = next(o for o in objs if o["type"] == "intrusion-set" and ext_id(o) == "G0016")
    dropped = next(
        o
        for o in objs
        if o["type"] == "relationship"
        and o["relationship_type"] == "uses"
        and o["source_ref"] == apt29["id"]
        and o["target_ref"].startswith("attack-pattern--")
        and o["target_ref"] != by_ext[picks["revoked"]]["id"]
    )
    objs.remove(dropped)
    picks["group_lost"] = ext_id(next(o for o in objs if o["id"] == dropped["target_ref"]))
    objs.append(
        {
            "type": "relationship",
            "id": f"relationship--{uuid.uuid4()}",
            "created": now,
            "modified": now,
            "relationship_type": "uses",
            "source_ref": apt29["id"],
            "target_ref": by_ext["T1680"]["id"],
        }
    )
    path = tmp_path / "enterprise-attack-18.2.json"
    path.write_text(
        json.dumps({"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": objs})
    )
    return path, picks


def test_diff_catches_every_kind_of_change(tmp_path: Path) -> None:
    edited, picks = _edited_release(tmp_path)
    d = diff_releases(None, old=str(ENTERPRISE), new=str(edited))
    old = list(objects(ENTERPRISE))
    new = json.loads(edited.read_text())["objects"]
    assert_diff_matches(d, diff_facts(old, new))
    assert d.new_version == "18.2"
    assert [(c.technique_id, c.replaced_by) for c in d.revoked] == [
        (picks["revoked"], picks["replacement"])
    ]
    assert [c.technique_id for c in d.deprecated] == [picks["deprecated"]]
    assert [c.technique_id for c in d.removed] == [picks["removed"]]
    moved = {c.technique_id: c for c in d.moved}
    assert moved[picks["moved"]].added_tactics == ["persistence"]
    assert [c.technique_id for c in d.renamed] == [picks["renamed"]]
    apt29 = next(g for g in d.groups if g.group_id == "G0016")
    direct = apt29.by_kind["direct"]
    assert "T1680" in direct.gained and picks["group_lost"] in direct.lost
    assert "direct" in apt29.changed_through
    assert not d.detection.model_changed


def test_diff_refuses_a_bad_bundle_with_one_line(tmp_path: Path) -> None:
    from loader.stix import BundleError

    bad = tmp_path / "enterprise-attack-99.1.json"
    bad.write_text('{"type": "bundle", "objects": [')
    with pytest.raises(BundleError) as info:
        diff_releases(None, old=str(ENTERPRISE_17), new=str(bad))
    assert "not valid JSON" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(BundleError, match=r"\(enterprise-attack\) with .*\(ics-attack\): not the"):
        diff_releases(None, old=str(ENTERPRISE_17), new=str(ICS))


# --------------------------------------------------------------------- on our own server


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[srv.ServerConfig, Graph]]:
    with throwaway_server(tmp_path_factory.mktemp("neo4j-releases")) as (cfg, settings):
        g = Graph.connect(settings)
        try:
            yield cfg, g
        finally:
            g.close()


@pytest.fixture(scope="module")
def fresh_18(own: tuple[srv.ServerConfig, Graph]) -> tuple[dict, Counter]:
    """The graph a fresh Enterprise 18.1 load gives, to compare upgrades and syncs with."""
    g = own[1]
    reset(g)
    load_file(g, str(ENTERPRISE))
    return attack_fingerprint(g)


def _import_inventory(g: Graph, tmp_path: Path, name: str, rows: list[tuple[str, str]]) -> None:
    """An inventory through ttpgraph's own importer (a plain CSV of rule name, technique)."""
    from loader.inventory.importer import import_inventory

    path = tmp_path / f"{name}.csv"
    lines = ["Rule Name,Technique,ID"] + [
        f"{rule},{tech},R-{i:03d}" for i, (rule, tech) in enumerate(rows)
    ]
    path.write_text("\n".join(lines) + "\n")
    import_inventory(g, "csv", path, name=name)


def _covers(g: Graph, name: str) -> set[tuple[str, str]]:
    rows = g.read(
        "MATCH (:Inventory {name: $n})-[:HAS_RULE]->(r:DetectionRule)-[:COVERS]->(t:Technique) "
        "RETURN r.rule_id AS rule, t.stix_id AS t",
        n=name,
    )
    return {(r["rule"], r["t"]) for r in rows}


def test_upgrade_17_to_18_equals_a_fresh_load_and_keeps_inventories(
    own: tuple[srv.ServerConfig, Graph], fresh_18: tuple[dict, Counter], tmp_path: Path
) -> None:
    g = own[1]
    reset(g)
    load_file(g, str(ENTERPRISE_17))
    # Rules on a renamed technique (T1552.003), a plain one, a revoked one (T1086 -> T1059.001)
    # and a sub-technique.
    _import_inventory(
        g,
        tmp_path,
        "soc",
        [("Shell history read", "T1552.003"), ("Encoded PowerShell", "T1059.001"),
         ("Old PowerShell tag", "T1086"), ("LSASS dump", "T1003.001")],
    )  # fmt: skip
    covers_before = _covers(g, "soc")
    assert len(covers_before) >= 4
    load_file(g, str(ENTERPRISE))
    assert_same_graph(attack_fingerprint(g), fresh_18)
    assert _covers(g, "soc") == covers_before, "an inventory lost COVERS edges in the upgrade"
    assert release_counts(g, "enterprise-attack") == expected_counts(ENTERPRISE)
    assert duplicates(g) == 0
    # 17.1's data-component DETECTS edges are gone, 18.1's detection strategies are there.
    n = g.read("MATCH (:DataComponent)-[d:DETECTS]->() RETURN count(d) AS n")[0]["n"]
    assert n == 0


def test_objects_leaving_the_release_are_kept_only_while_pointed_at(
    own: tuple[srv.ServerConfig, Graph], fresh_18: tuple[dict, Counter], tmp_path: Path
) -> None:
    g = own[1]
    reset(g)
    load_file(g, str(ENTERPRISE))
    _import_inventory(g, tmp_path, "kept", [("Keylogging rule", "T1056.001")])
    objs = json.loads(ENTERPRISE.read_text(encoding="utf-8"))["objects"]
    pointed = next(o for o in objs if o["type"] == "attack-pattern" and ext_id(o) == "T1056.001")
    loose = next(o for o in objs if o["type"] == "attack-pattern" and ext_id(o) == "T1001.002")
    gone = {pointed["id"], loose["id"]}
    trimmed = [
        o
        for o in objs
        if o["id"] not in gone
        and o.get("source_ref") not in gone
        and o.get("target_ref") not in gone
    ]
    dropped_rels = len(objs) - len(trimmed) - 2
    path = tmp_path / "enterprise-attack-18.1-trimmed.json"
    path.write_text(json.dumps({"type": "bundle", "id": "bundle--" + str(uuid.uuid4()),
                                "objects": trimmed}))  # fmt: skip
    load_file(g, str(path))
    row = g.read(
        "MATCH (t:Technique {stix_id: $id}) OPTIONAL MATCH (t)-[r]-() "
        "RETURN t.in_release AS in_release, t.removed_from AS removed_from, "
        "t.loaded_domains AS loaded, collect(type(r)) AS rels",
        id=pointed["id"],
    )
    assert row, "a technique an inventory rule covers was deleted"
    assert row[0]["in_release"] is False
    assert row[0]["removed_from"] == ["enterprise-attack"] and row[0]["loaded"] == []
    assert row[0]["rels"] == ["COVERS"], "a retired technique keeps only what points at it"
    assert g.read("MATCH (t {stix_id: $id}) RETURN count(t) AS n", id=loose["id"])[0]["n"] == 0
    assert dropped_rels > 0
    # The inventory impact names the rule: its technique is unknown to the loaded release.
    impact = release_impact(g, domain="enterprise")
    items = [i for inv in impact if inv.inventory == "kept" for i in inv.items]
    assert [(i.technique_id, i.problem) for i in items] == [("T1056.001", "unknown")]
    # The full release again: everything back as a fresh load has it.
    load_file(g, str(ENTERPRISE))
    g.write("MATCH (i:Inventory {name: 'kept'})-[:HAS_RULE]->(r) DETACH DELETE i, r")
    assert_same_graph(attack_fingerprint(g), fresh_18)


def test_diff_against_the_loaded_release_and_inventory_impact(
    own: tuple[srv.ServerConfig, Graph], tmp_path: Path
) -> None:
    g = own[1]
    reset(g)
    load_file(g, str(ENTERPRISE_17))
    load_file(g, str(ICS))
    revoked_18 = {
        ext_id(o): o for o in objects(ENTERPRISE) if o["type"] == "attack-pattern"
    }  # every technique of 18.1 by ATT&CK id (revoked and deprecated ones too)
    _import_inventory(
        g,
        tmp_path,
        "soc",
        [("Old PowerShell tag", "T1086"), ("Deprecated tag", "T1064"),
         ("Typo tag", "T1999"), ("ICS rule", "T0801"), ("Good rule", "T1059.001")],
    )  # fmt: skip
    from_graph = diff_releases(g, new=str(ENTERPRISE))
    from_files = diff_releases(None, old=str(ENTERPRISE_17), new=str(ENTERPRISE))
    skip = {"old_source", "impact", "notes", "threat_models"}
    assert from_graph.model_dump(exclude=skip) == from_files.model_dump(exclude=skip)
    assert_diff_matches(
        from_graph, diff_facts(list(objects(ENTERPRISE_17)), list(objects(ENTERPRISE)))
    )
    soc = next(i for i in from_graph.impact or [] if i.inventory == "soc")
    got = {(i.technique_id, i.problem, i.replacement) for i in soc.items}
    replacement = next(
        ext_id(o2)
        for r in objects(ENTERPRISE)
        if r["type"] == "relationship"
        and r["relationship_type"] == "revoked-by"
        and r["source_ref"] == revoked_18["T1086"]["id"]
        for o2 in objects(ENTERPRISE)
        if o2["id"] == r["target_ref"]
    )
    assert revoked_18["T1064"].get("x_mitre_deprecated")
    assert got == {("T1086", "revoked", replacement), ("T1064", "deprecated", None),
                   ("T1999", "unknown", None)}  # fmt: skip
    assert soc.rules == 5 and soc.affected_rules == 3

    cfg = own[0]
    env = dict(os.environ, NEO4J_URI=cfg.bolt_uri, NEO4J_USER="neo4j",
               NEO4J_PASSWORD=cfg.password or "", COLUMNS="200")  # fmt: skip
    layer_path = tmp_path / "diff-layer.json"
    proc = subprocess.run(
        [sys.executable, "-m", "api.cli", "diff", str(ENTERPRISE), "--format", "json",
         "--layer", str(layer_path)],
        capture_output=True, text=True, env=env, timeout=300, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["summary"] == from_graph.summary
    assert {(i["technique_id"], i["problem"]) for inv in data["impact"] for i in inv["items"]} >= {
        ("T1086", "revoked")
    }
    validate_layer(json.loads(layer_path.read_text()))
    # Two bundles need no database: with Neo4j unreachable the diff still comes, without impact.
    env["NEO4J_URI"] = f"bolt://127.0.0.1:{free_port()}"
    proc = subprocess.run(
        [sys.executable, "-m", "api.cli", "diff", str(ENTERPRISE_17), str(ENTERPRISE),
         "--format", "markdown"],
        capture_output=True, text=True, env=env, timeout=300, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("# ATT&CK enterprise-attack: 17.1 -> 18.1")
    assert "impact on inventories not computed" in proc.stdout

    # Over HTTP: the loaded ICS (STIX 2.0 file) against the same release as STIX 2.1: no change.
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.auth import KeyStore

    keys_file = tmp_path / "api-keys.json"
    _, read_key = KeyStore(keys_file).create(role="read", name="releases-test")
    settings = Settings(neo4j_uri=cfg.bolt_uri, neo4j_user="neo4j",
                        neo4j_password=cfg.password or "", neo4j_database="neo4j",
                        ttpgraph_api_auth=True, ttpgraph_api_keys_file=str(keys_file))  # fmt: skip
    # A read key is enough: a diff only reads, whatever the HTTP method.
    with TestClient(create_app(settings), headers={"X-API-Key": read_key}) as client:
        with open(ICS_21, "rb") as fh:
            resp = client.post("/api/v1/releases/diff", files={"new": (ICS_21.name, fh)})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["domain"] == "ics-attack" and not any(body["summary"].values())
        resp = client.get("/api/v1/releases/enterprise/impact")
        assert resp.status_code == 200
        items = {(i["technique_id"], i["problem"]) for inv in resp.json() for i in inv["items"]}
        assert ("T1999", "unknown") in items  # 17.1 is loaded: T1086 is revoked there too
        resp = client.post("/api/v1/releases/diff", files={"new": ("x.json", b"{not json")})
        assert resp.status_code == 422
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert "not valid JSON" in resp.json()["detail"]


# ------------------------------------------------------------------ sync through medallion

COLLECTION = "1f5f1533-f617-4ca8-9ab4-6a02367fa019"  # MITRE's Enterprise collection (UUID part)
OLD_DATE = "2025-05-06T14:00:00.000000Z"
NEW_DATE = "2025-11-13T14:00:00.000000Z"

# medallion's memory backend filters and pages in O(n^2) (fine for ICS, hours for Enterprise's
# 25,000 objects). The test server runs medallion with those three functions replaced by
# index-based ones with the same results; everything else is medallion as published.
MEDALLION = r"""
import sys
from medallion.common import determine_spec_version, find_att, string_to_datetime
from medallion.filters import basic_filter as bf

def filter_by_added_after(data, manifest_info, added_after_date):
    after = string_to_datetime(added_after_date)
    if manifest_info is None:
        return [o for o in data if string_to_datetime(o["date_added"]) > after]
    newer = {(m["id"], find_att(m)) for m in manifest_info
             if string_to_datetime(m["date_added"]) > after}
    return [o for o in data if (o["id"], find_att(o)) in newer]

def _spec(o):
    return o["media_type"].split("version=")[1] if "media_type" in o else determine_spec_version(o)

def filter_by_spec_version(data, spec_):
    if spec_:
        wanted = spec_.split(",")
        return [o for o in data if _spec(o) in wanted]
    best = {}
    for o in data:
        best[o["id"]] = max(best.get(o["id"], ""), _spec(o))
    return [o for o in data if _spec(o) >= best[o["id"]]]

def sort_and_paginate(self, data, limit, manifest):
    if not data:
        return [], {}, {}
    if not manifest:
        return ORIGINAL(self, data, limit, manifest)
    manifest.sort(key=lambda x: x["date_added"])
    index = {}
    for o in data:
        index.setdefault((o["id"], find_att(o)), o)
    new, headers, last = [], {}, None
    for m in manifest:
        o = index.get((m["id"], find_att(m)))
        if o is None:
            continue
        headers.setdefault("X-TAXII-Date-Added-First", m["date_added"])
        new.append(o)
        last = m
        if len(new) == limit:
            headers["X-TAXII-Date-Added-Last"] = m["date_added"]
    next_save = {}
    if limit and limit < len(data):
        next_save, new = new[limit:], new[:limit]
    else:
        headers["X-TAXII-Date-Added-Last"] = last["date_added"]
    return new, next_save, headers

ORIGINAL = bf.BasicFilter.sort_and_paginate
bf.BasicFilter.filter_by_added_after = staticmethod(filter_by_added_after)
bf.BasicFilter.filter_by_spec_version = staticmethod(filter_by_spec_version)
bf.BasicFilter.sort_and_paginate = sort_and_paginate

from medallion.scripts.run import main
sys.argv = ["medallion", *sys.argv[1:]]
main()
"""


def _collection_object(version: str, modified: str) -> dict[str, Any]:
    """The x-mitre-collection object MITRE's STIX 2.1 data carries (the 2.0 files lack it)."""
    return {
        "type": "x-mitre-collection",
        "id": f"x-mitre-collection--{COLLECTION}",
        "spec_version": "2.1",
        "name": "Enterprise ATT&CK",
        "x_mitre_version": version,
        "created": "2018-01-17T12:56:55.080Z",
        "modified": modified,
        "description": "ATT&CK for Enterprise",
    }


def _served(objs: list[dict[str, Any]], dates: dict[str, str]) -> dict[str, Any]:
    objs = [{**o, "spec_version": "2.1"} for o in objs]
    manifest = [
        {
            "id": o["id"],
            "date_added": dates[o["id"]],
            "version": o.get("modified", o.get("created")),
            "media_type": "application/stix+json;version=2.1",
        }
        for o in objs
    ]
    return {
        "/discovery": {"title": "test TAXII", "default": "http://127.0.0.1/api1/",
                       "api_roots": ["http://127.0.0.1/api1/"]},
        "api1": {
            "information": {"title": "ATT&CK", "versions": ["application/taxii+json;version=2.1"],
                            "max_content_length": 100000000},
            "status": [],
            "collections": [{
                "id": COLLECTION, "title": "Enterprise ATT&CK", "can_read": True,
                "can_write": False, "media_types": ["application/stix+json;version=2.1"],
                "objects": objs, "manifest": manifest,
            }],
        },
    }  # fmt: skip


@contextmanager
def medallion(folder: Path, port: int, data: dict[str, Any]) -> Iterator[str]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data.json").write_text(json.dumps(data))
    (folder / "config.json").write_text(json.dumps({
        "backend": {"module": "medallion.backends.memory_backend",
                    "module_class": "MemoryBackend", "filename": str(folder / "data.json"),
                    "session_timeout": 900},
        "users": {"reader": "secret"},
        "taxii": {"max_page_size": 1000},
    }))  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-c", MEDALLION, "--host", "127.0.0.1", "--port", str(port),
         str(folder / "config.json")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/taxii2/", timeout=2)
                break
            except urllib.error.HTTPError:
                break  # answering (401 without credentials)
            except OSError:
                assert proc.poll() is None, "medallion exited during start-up"
                assert time.monotonic() < deadline, "medallion did not start"
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/api1/"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_sync_fetches_only_what_was_added_and_ends_equal_to_a_full_load(
    own: tuple[srv.ServerConfig, Graph], fresh_18: tuple[dict, Counter], tmp_path: Path
) -> None:
    g = own[1]
    reset(g)
    old = [*objects(ENTERPRISE_17), _collection_object("17.1", "2025-05-06T14:00:00.000Z")]
    new = [*objects(ENTERPRISE), _collection_object("18.1", "2025-11-13T14:00:00.000Z")]
    old_by_id = {o["id"]: o for o in old}
    changed = {o["id"] for o in new if old_by_id.get(o["id"]) != o}
    port = free_port()
    lock = tmp_path / "sync.lock"
    kw: dict[str, Any] = {"domains": ["enterprise"], "user": "reader", "password": "secret",
                          "lock_path": lock}  # fmt: skip

    with medallion(tmp_path / "v17", port, _served(old, dict.fromkeys(old_by_id, OLD_DATE))) as url:
        [first] = sync(g, taxii_url=url, **kw)  # nothing loaded yet: the whole collection
    assert (first.status, first.new_version, first.fetched) == ("loaded", "17.1", len(old))
    assert first.added_last == OLD_DATE

    dates = {o["id"]: NEW_DATE if o["id"] in changed else OLD_DATE for o in new}
    with medallion(tmp_path / "v18", port, _served(new, dates)) as url:
        with sync_lock(lock) as got:  # a sync already running: the cron run writes nothing
            assert got
            [locked] = sync(g, taxii_url=url, **kw)
        assert locked.status == "locked"
        [report] = sync(g, taxii_url=url, **kw)
        assert report.status == "updated" and report.added_after is not None
        assert report.added_after.startswith(OLD_DATE[:19])
        assert report.fetched == len(changed) < len(new) // 3
        assert report.fetched_by_type == dict(Counter(o["id"].split("--")[0] for o in new
                                                      if o["id"] in changed))  # fmt: skip
        assert report.removed == len(set(old_by_id) - {o["id"] for o in new})
        assert (report.old_version, report.new_version) == ("17.1", "18.1")
        assert report.diff is not None and report.diff.summary["techniques_added"] == 12
        assert_same_graph(attack_fingerprint(g), fresh_18)
        assert release_counts(g, "enterprise-attack") == expected_counts(ENTERPRISE)
        assert duplicates(g) == 0
        stamp = g.read("MATCH (v:GraphVersion) RETURN v.value AS v")[0]["v"]
        [again] = sync(g, taxii_url=url, **kw)
        assert (again.status, again.fetched, again.removed) == ("up-to-date", 0, 0)
        assert g.read("MATCH (v:GraphVersion) RETURN v.value AS v")[0]["v"] == stamp
