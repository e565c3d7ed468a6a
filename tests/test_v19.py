"""ATT&CK moving under ttpgraph: a v19-shaped Enterprise bundle (built once here from the real
18.1 bundle, see tests/v19_bundle.py: Defense Evasion split into Stealth and Defense
Impairment, techniques moved and revoked, retired techniques keeping the removed phase) loaded
over 18.1 on a throw-away Neo4j of this module's own; and the real 17.1 -> 18.1 diff. Every
expected figure is computed here from the bundles' JSON; no tactic list is written down."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loader.diff import diff_releases, diff_with, snapshot_from_source
from loader.inventory.crosswalk import load_crosswalk
from loader.inventory.importer import import_inventory
from loader.inventory_remap import remap_inventory
from loader.load import LoadResult, load_file
from loader.stix import BundleError, to_rows
from queries import coverage as C
from queries.actors import profile_group
from queries.errors import InvalidInput
from queries.graph import Graph
from queries.layers.input_layers import import_layer_as_actor_set
from queries.releases import ReleaseDiff, diff_markdown

from .bundle_facts import ext_id, is_current, objects
from .conftest import ENTERPRISE, ENTERPRISE_17, throwaway_server
from .test_inventory_import import SIGMA
from .v19_bundle import V19, build_v19

pytestmark = pytest.mark.slow
DOMAIN = "enterprise-attack"

# --------------------------------------------------------------------------- facts


def load_objects(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text(encoding="utf-8"))["objects"]


def tactics_of(objs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """STIX id -> tactic object (current ones)."""
    return {o["id"]: o for o in objs if o["type"] == "x-mitre-tactic" and is_current(o)}


def phases(o: dict[str, Any]) -> set[str]:
    return {p["phase_name"] for p in o.get("kill_chain_phases", [])}


def expected_flows(
    old: list[dict[str, Any]], new: list[dict[str, Any]]
) -> dict[str, dict[str, tuple[set[str], set[str]]]]:
    """old tactic ATT&CK id -> new tactic ATT&CK id -> (techniques moved or kept there, old
    techniques revoked into a technique there), for old tactics that lost techniques to others:
    straight from the two bundles."""
    ot, nt = tactics_of(old), tactics_of(new)
    o_short = {t["x_mitre_shortname"]: ext_id(t) for t in ot.values()}
    n_short = {t["x_mitre_shortname"]: ext_id(t) for t in nt.values()}
    new_by_id = {o["id"]: o for o in new if o["type"] == "attack-pattern"}
    new_by_ext = {ext_id(o): o for o in new_by_id.values() if is_current(o)}
    revoked_by: dict[str, list[str]] = {}
    for r in new:
        if r["type"] == "relationship" and r["relationship_type"] == "revoked-by":
            revoked_by.setdefault(r["source_ref"], []).append(r["target_ref"])
    out: dict[str, dict[str, tuple[set[str], set[str]]]] = {}
    for o in old:
        if o["type"] != "attack-pattern" or not is_current(o):
            continue
        before = {o_short[p] for p in phases(o) if p in o_short}
        now = new_by_id.get(o["id"])
        revoked = now is not None and not is_current(now)
        if revoked:
            targets = sorted(ext_id(new_by_id[t]) for t in revoked_by.get(o["id"], []))
            now = new_by_ext.get(targets[0]) if targets else None
        after = {n_short[p] for p in phases(now) if p in n_short} if now else set()
        for x in before:
            dest = after if revoked else after - (before - {x})
            for y in dest:
                moved, repl = out.setdefault(x, {}).setdefault(y, (set(), set()))
                (repl if revoked else moved).add(ext_id(o))
    return {x: d for x, d in out.items() if set(d) - {x}}


def retired_with_missing_phase(objs: list[dict[str, Any]]) -> set[str]:
    shorts = {t["x_mitre_shortname"] for t in tactics_of(objs).values()}
    return {
        ext_id(o)
        for o in objs
        if o["type"] == "attack-pattern" and not is_current(o) and phases(o) - shorts
    }


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def v19(tmp_path_factory: pytest.TempPathFactory) -> V19:
    return build_v19(tmp_path_factory.mktemp("v19"))


@pytest.fixture(scope="module")
def bundle_diff(v19: V19) -> ReleaseDiff:
    return diff_releases(None, old=str(ENTERPRISE), new=str(v19.path))


SIGMA_INV, CSV_INV = "v19-sigma", "v19-csv"
# Sigma's registry rules: 247 rules, tagged with v19 ids (T1685...) unknown to 18.1 and with ids
# v19 revokes (a part of the corpus keeps the test short)
SIGMA_PART = SIGMA / "rules" / "windows" / "registry"
ACTORS = ["G0016", "G0007"]  # APT29, APT28


def split_tags(v19: V19) -> dict[str, list[str]]:
    """Old id -> the current techniques a split revoked it into (several), from the JSON."""
    objs = load_objects(v19.path)
    by_id = {o["id"]: o for o in objs if o["type"] == "attack-pattern"}
    out: dict[str, list[str]] = {}
    for r in objs:
        if (
            r["type"] == "relationship"
            and r["relationship_type"] == "revoked-by"
            and r["source_ref"] in by_id
        ):
            out.setdefault(ext_id(by_id[r["source_ref"]]), []).append(
                ext_id(by_id[r["target_ref"]])
            )
    return {k: sorted(set(v)) for k, v in out.items() if len(set(v)) > 1}


@pytest.fixture(scope="module")
def upgraded(
    v19: V19, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Graph, Any, ReleaseDiff, LoadResult]]:
    """A server of this module's own: 18.1 loaded with the Sigma corpus and a small CSV
    inventory imported under it, diffed against v19 from the graph, then v19 loaded over it."""
    home = tmp_path_factory.mktemp("v19-neo4j")
    csv = home / "rules.csv"
    tags = sorted({*v19.revoked, *split_tags(v19), "T1059.001"})
    csv.write_text(
        "Rule Name,Technique #,ID\n" + "".join(f"rule {t},{t},R{i}\n" for i, t in enumerate(tags)),
        encoding="utf-8",
    )
    with throwaway_server(home, label="v19") as (cfg, settings), Graph.connect(settings) as g:
        load_file(g, str(ENTERPRISE))
        import_inventory(g, "sigma", SIGMA_PART, name=SIGMA_INV)
        import_inventory(g, "csv", csv, name=CSV_INV)
        from_graph = diff_with(g, snapshot_from_source(str(v19.path)), impact=False)
        result = load_file(g, str(v19.path))
        yield g, (cfg, settings), from_graph, result


# ------------------------------------------------------- retired objects' phases (pure)


def test_a_retired_technique_naming_a_removed_tactic_loads_with_a_warning(v19: V19) -> None:
    objs = load_objects(v19.path)
    want = retired_with_missing_phase(objs)
    assert want >= {t for t in v19.revoked if t.startswith("T1562")}  # they keep their phase
    rows = to_rows(objs, domain=DOMAIN, spec_version="2.0", release="19.0")
    assert len(rows.warnings) == 1
    named = {w.split(" (")[0] for w in rows.warnings[0].split(": ")[-1].split(", ")}
    assert named == want
    assert f"{len(want)} retired technique(s)" in rows.warnings[0]
    # an active technique naming the removed tactic is still refused, named
    active = copy.deepcopy(objs)
    victim = next(o for o in active if o["type"] == "attack-pattern" and is_current(o))
    victim["kill_chain_phases"] = [{"kill_chain_name": "mitre-attack", "phase_name": "gone"}]
    with pytest.raises(BundleError) as info:
        to_rows(active, domain=DOMAIN, spec_version="2.0", release="19.0")
    msg = str(info.value)
    assert victim["id"] in msg and ext_id(victim) in msg and "'gone'" in msg and "\n" not in msg


def test_the_diff_lets_the_retired_phase_through_and_says_so(bundle_diff: ReleaseDiff) -> None:
    notes = [n for n in bundle_diff.notes if "retired technique(s)" in n]
    assert len(notes) == 1 and "enterprise-attack-19.0.json" in notes[0]


# ------------------------------------------------------------- the tactics section (pure)


def test_the_diff_names_the_tactics_added_renamed_and_split(
    v19: V19, bundle_diff: ReleaseDiff
) -> None:
    old, new = list(objects(ENTERPRISE)), load_objects(v19.path)
    ot, nt = tactics_of(old), tactics_of(new)
    t = bundle_diff.tactics
    assert [x.tactic_id for x in t.added] == sorted(ext_id(nt[i]) for i in set(nt) - set(ot))
    assert [x.tactic_id for x in t.removed] == sorted(ext_id(ot[i]) for i in set(ot) - set(nt))
    renamed = {
        ext_id(nt[i]): (ot[i]["x_mitre_shortname"], nt[i]["x_mitre_shortname"])
        for i in set(ot) & set(nt)
        if (ot[i]["name"], ot[i]["x_mitre_shortname"])
        != (nt[i]["name"], nt[i]["x_mitre_shortname"])
    }
    assert {x.tactic_id: (x.old_shortname, x.shortname) for x in t.renamed} == renamed
    flows = expected_flows(old, new)
    got = {
        f.tactic_id: {d.tactic_id: (set(d.techniques), set(d.replaced)) for d in f.went_to}
        for f in t.flows
    }
    assert got == flows
    added = {x.tactic_id for x in t.added}
    split = {x for x, d in flows.items() if len(d) >= 2 and set(d) & added}
    assert {x.tactic_id for x in t.split} == split and split  # the v19 split is found
    assert t.merged == []
    s = bundle_diff.summary
    assert (s["tactics_added"], s["tactics_renamed"], s["tactics_split"]) == (
        len(t.added),
        len(t.renamed),
        len(split),
    )
    # the techniques section still lists each technique that went to another tactic
    went = {tid for x, d in flows.items() for y, (m, _) in d.items() if y != x for tid in m}
    assert went and went <= {m.technique_id for m in bundle_diff.moved}


def test_the_tactics_section_in_markdown_json_and_table(
    v19: V19, bundle_diff: ReleaseDiff, tmp_path: Path
) -> None:
    t = bundle_diff.tactics
    split = t.split[0]
    md = diff_markdown(bundle_diff)
    assert "## Tactics (" in md
    for d in split.went_to:
        assert f"{d.shortname} ({d.tactic_id}): {len(d.techniques)}" in md
    data = json.loads(bundle_diff.model_dump_json())
    assert data["tactics"]["split"][0]["tactic_id"] == split.tactic_id
    env = dict(os.environ, COLUMNS="250", NEO4J_URI="bolt://127.0.0.1:9", NEO4J_PASSWORD="x")
    env["TTPGRAPH_CONFIG_DIR"] = str(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "api.cli", "diff", str(ENTERPRISE), str(v19.path), "--no-impact"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Tactics" in proc.stdout and "split" in proc.stdout
    for x in t.added:
        assert f"{x.shortname} ({x.tactic_id})" in proc.stdout


def test_17_to_18_changes_no_tactic() -> None:
    old, new = list(objects(ENTERPRISE_17)), list(objects(ENTERPRISE))
    same = {i: (o["name"], o["x_mitre_shortname"]) for i, o in tactics_of(old).items()} == {
        i: (o["name"], o["x_mitre_shortname"]) for i, o in tactics_of(new).items()
    }
    d = diff_releases(None, old=str(ENTERPRISE_17), new=str(ENTERPRISE))
    t = d.tactics
    empty = not (t.added or t.removed or t.renamed or t.split or t.merged)
    assert empty == same and (t.flows == []) == (expected_flows(old, new) == {})
    # groups changed through every path kind, each counted (tests/test_releases.py checks the
    # sets kind by kind against the bundles)
    s = d.summary
    assert s["groups_changed"] == sum(1 for g in d.groups if g.status == "changed")
    for kind in ("direct", "campaign", "software"):
        assert s[f"groups_changed_{kind}"] == sum(
            1 for g in d.groups if g.status == "changed" and kind in g.changed_through
        )
    assert s["groups_changed"] > s["groups_changed_direct"]  # the campaigns' and software's


# ------------------------------------------------------------- v19 loaded over 18.1


def test_v19_loads_over_18_with_its_tactics(v19: V19, upgraded) -> None:
    g, _, _, result = upgraded
    objs = load_objects(v19.path)
    assert result.release == "19.0"
    assert len(result.warnings) == 1
    assert str(len(retired_with_missing_phase(objs))) in result.warnings[0]
    tactics = {
        r["id"]: (r["short"], r["n"])
        for r in g.read(
            "MATCH (t:Tactic) WHERE t.in_release OPTIONAL MATCH (x:Technique)-[:IN_TACTIC]->(t) "
            "RETURN t.attack_id AS id, t.shortname AS short, count(x) AS n"
        )
    }
    want: dict[str, tuple[str, int]] = {}
    for t in tactics_of(objs).values():
        n = sum(
            1 for o in objs if o["type"] == "attack-pattern" and t["x_mitre_shortname"] in phases(o)
        )
        want[ext_id(t)] = (t["x_mitre_shortname"], n)
    assert tactics == want


def test_the_diff_from_the_graph_equals_the_bundle_diff(bundle_diff: ReleaseDiff, upgraded) -> None:
    _, _, from_graph, _ = upgraded
    assert from_graph.tactics == bundle_diff.tactics
    assert from_graph.groups == bundle_diff.groups
    assert from_graph.summary == bundle_diff.summary


def test_a_split_tactic_is_named_with_where_it_went(v19: V19, bundle_diff, upgraded) -> None:
    g, *_ = upgraded
    split = bundle_diff.tactics.split[0]
    where = " and ".join(f"{d.shortname} ({d.tactic_id})" for d in split.went_to)
    with pytest.raises(InvalidInput) as info:
        profile_group(g, group="APT29", tactic=split.shortname, domain="enterprise")
    assert str(info.value) == (
        f"{split.shortname} is not a tactic of {DOMAIN} 19.0; it was split into {where}"
    )
    for d in split.went_to:  # the new names answer
        profile_group(g, group="APT29", tactic=d.shortname, domain="enterprise")


def test_an_older_layer_is_read_with_a_warning(v19: V19, upgraded) -> None:
    g, *_ = upgraded
    old_id, new_id = next(iter(sorted(v19.revoked.items())))
    layer = {
        "name": "made under 18",
        "versions": {"attack": "18", "navigator": "5.1.0", "layer": "4.5"},
        "domain": DOMAIN,
        "techniques": [
            {"techniqueID": old_id, "score": 1},
            {"techniqueID": "T1059.001", "score": 1},
        ],
    }
    got = import_layer_as_actor_set(g, layer=layer, similar=0)
    assert got.remapped == {old_id: new_id}
    assert any(f"{old_id} -> {new_id}" in w for w in got.warnings)
    assert any("ATT&CK 18" in w and "19.0" in w for w in got.warnings)


def test_neo4j_status_shows_the_ports_it_was_started_on(upgraded, tmp_path: Path) -> None:
    _, (cfg, settings), *_ = upgraded
    env = dict(os.environ, NEO4J_URI=settings.neo4j_uri, NEO4J_PASSWORD=settings.neo4j_password)
    env["TTPGRAPH_CONFIG_DIR"] = str(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "api.cli", "neo4j", "status", "--home", str(cfg.home),
         "--format", "json"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["bolt_uri"] == f"bolt://127.0.0.1:{cfg.bolt_port}"
    assert data["browser_url"] == f"http://127.0.0.1:{cfg.http_port}/browser/"


# ----------------------------------------------- inventories re-resolved after the load


def _statuses(ga: C.GapAnalysis) -> dict[str, str]:
    return {
        t.technique_id: "covered" if t.covered else "partial" if t.partial else "gap"
        for t in ga.techniques
    }


def test_inventories_are_re_resolved_by_the_load_as_a_re_import_would(v19: V19, upgraded) -> None:
    g, _, _, result = upgraded
    assert {i["inventory"] for i in result.inventories} == {SIGMA_INV, CSV_INV}
    sigma = next(i for i in result.inventories if i["inventory"] == SIGMA_INV)
    assert sigma["releases"][DOMAIN] == "19.0" and sigma["releases_before"][DOMAIN] == "18.1"
    assert sigma["rules_changed"] > 0  # rules tagged with ids v19 revoked
    remapped = {x["id"]: x["to"] for x in sigma["ids_remapped"] if x["via"] == "revoked"}
    assert {k: v[0] for k, v in remapped.items() if k in v19.revoked} == {
        k: v for k, v in v19.revoked.items() if k in remapped
    }
    # the same rules imported now, against v19, answer the same, technique by technique
    import_inventory(g, "sigma", SIGMA_PART, name="v19-sigma-again")
    for software in (False, True):
        kept = C.gap_analysis(g, actors=ACTORS, inventory=SIGMA_INV, include_software=software)
        again = C.gap_analysis(
            g, actors=ACTORS, inventory="v19-sigma-again", include_software=software
        )
        assert _statuses(kept) == _statuses(again)
        assert kept.inventory_releases[DOMAIN] == "19.0" and not kept.warnings


def test_a_tag_a_split_left_ambiguous_is_listed_and_a_crosswalk_decides(v19: V19, upgraded) -> None:
    g, *_ = upgraded
    splits = split_tags(v19)
    assert splits
    info = C.inventory_info(g, inventory=CSV_INV)
    listed = {a["id"]: a["choose_from"] for a in info.summary["ids_ambiguous"]}
    assert listed == splits
    rules = {r.name: r for r in C.inventory_rules(g, inventory=CSV_INV, limit=1000)}
    for tid in splits:  # covers nothing until chosen
        assert not rules[f"rule {tid}"].covers
    crosswalk = load_crosswalk(v19.crosswalk)
    chosen = remap_inventory(g, CSV_INV, crosswalk=crosswalk)
    assert chosen.ids_ambiguous == []
    via = {x["id"]: x for x in chosen.ids_remapped}
    for tid in splits:
        assert via[tid]["via"] == "crosswalk" and via[tid]["to"] == crosswalk.forward(tid)
    again = {r.name: r for r in C.inventory_rules(g, inventory=CSV_INV, limit=1000)}
    for tid in splits:
        assert {c.technique_id for c in again[f"rule {tid}"].covers} == set(crosswalk.forward(tid))
    # the crosswalk stays with the inventory: a later re-resolution decides the same way
    assert remap_inventory(g, CSV_INV).ids_ambiguous == []


def test_a_coverage_answer_over_an_inventory_mapped_elsewhere_warns(upgraded) -> None:
    g, *_ = upgraded
    # an inventory mapped under 18.1 that nothing re-resolved (as one from an older ttpgraph)
    g.write(
        "MATCH (i:Inventory {name: $n}) SET i.releases = $r",
        n=CSV_INV,
        r=json.dumps({DOMAIN: "18.1"}),
    )
    g.cache.clear()
    ga = C.gap_analysis(g, actors=ACTORS, inventory=CSV_INV)
    assert ga.inventory_releases == {DOMAIN: "18.1"}
    assert len(ga.warnings) == 1 and "18.1" in ga.warnings[0] and "19.0" in ga.warnings[0]
    assert C.inventory_coverage(g, inventory=CSV_INV).warnings == ga.warnings
    assert any(i.stale for i in C.list_inventories(g) if i.name == CSV_INV)
    remap_inventory(g, CSV_INV)
    again = C.gap_analysis(g, actors=ACTORS, inventory=CSV_INV)
    assert not again.warnings and again.inventory_releases[DOMAIN] == "19.0"
