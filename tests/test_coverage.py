"""Gap analysis and telemetry priorities on real ATT&CK: the threat model, coverage, per-tactic
rows, priority factors and the greedy telemetry order, each checked against facts computed
here from the bundle JSON (and, for the real corpus, from the Sigma rule files). The ATT&CK v17
path (data components that DETECT techniques) runs on a throw-away Neo4j of its own.

Inventories written here are named ``t-cov-*`` and deleted at the end.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from loader.inventory.importer import delete_inventory, import_inventory
from loader.load import load_file
from queries import coverage as C
from queries.catalog import Q
from queries.errors import InvalidInput, NotFound
from queries.graph import Graph

from .bundle_facts import (
    by_stix_id,
    current_relationships,
    ext_id,
    group_technique_paths,
    is_current,
    mitigations_by_technique,
    technique_facts,
)
from .conftest import ENTERPRISE_17, SESSION_BUNDLES, throwaway_server
from .test_inventory_import import (
    CROSSWALK,
    SIGMA,
    bundle_techniques,
    crosswalk_reverse,
    expected_direct,
    sigma_raw,
)

GROUPS = ["G0016", "G0007", "G0046", "G0032", "G0102"]  # APT29, APT28, FIN7, Lazarus, Wizard Spider
NAMES = ["APT29", "APT28", "FIN7", "Lazarus Group", "Wizard Spider"]
PREFIX = "t-cov-"

# --------------------------------------------------------------------------- facts


def threat_model(groups: list[str], paths: list[Path] = SESSION_BUNDLES) -> dict[str, set[str]]:
    """Technique id -> the selected groups using it directly or through a campaign."""
    out: dict[str, set[str]] = {}
    for g in groups:
        kinds = group_technique_paths(paths, g)
        for t in set(kinds["direct"]) | set(kinds["campaign"]):
            out.setdefault(t, set()).add(g)
    return out


def tactic_facts(paths: list[Path]) -> tuple[dict[str, list[tuple[str, str]]], dict[str, list]]:
    """(technique id -> [(domain, tactic shortname)], domain -> tactic shortnames in order)."""
    techniques: dict[str, list[tuple[str, str]]] = {}
    order: dict[str, list[str]] = {}
    for path in paths:
        objs = by_stix_id(path)
        for o in objs.values():
            if o["type"] == "x-mitre-matrix" and is_current(o):
                dom = ext_id(o)
                order[dom] = [objs[r]["x_mitre_shortname"] for r in o["tactic_refs"]]
        for o in objs.values():
            if o["type"] == "attack-pattern" and is_current(o):
                dom = o["x_mitre_domains"][0]
                techniques[ext_id(o)] = [
                    (dom, p["phase_name"])
                    for p in o.get("kill_chain_phases", [])
                    if p["kill_chain_name"].startswith("mitre-")
                ]
    return techniques, order


def groups_using(paths: list[Path]) -> dict[str, set[str]]:
    """Technique id -> current groups using it directly or through an attributed campaign."""
    out: dict[str, set[str]] = {}
    for path in paths:
        objs = by_stix_id(path)
        rels = current_relationships(path)
        attributed: dict[str, set[str]] = {}
        for r in rels:
            if r["relationship_type"] == "attributed-to":
                attributed.setdefault(r["source_ref"], set()).add(r["target_ref"])
        for r in rels:
            if r["relationship_type"] != "uses" or not r["target_ref"].startswith("attack-pattern"):
                continue
            src = r["source_ref"]
            groups = {src} if src.startswith("intrusion-set") else attributed.get(src, set())
            for group in groups:
                if group.startswith("intrusion-set") and group in objs:
                    out.setdefault(ext_id(objs[r["target_ref"]]), set()).add(ext_id(objs[group]))
    return out


def log_source_reach(paths: list[Path], level: str) -> dict[str, set[str]]:
    """Source name -> techniques it can show: detects (v18 detection strategies) -> analytics
    -> log source references; v17 data components that detect a technique."""
    reach: dict[str, set[str]] = {}
    for path in paths:
        objs = by_stix_id(path)
        for r in current_relationships(path):
            if r["relationship_type"] != "detects":
                continue
            src, tech = objs[r["source_ref"]], ext_id(objs[r["target_ref"]])
            if src["type"] == "x-mitre-data-component":
                reach.setdefault(src["name"], set()).add(tech)
                continue
            for a in src.get("x_mitre_analytic_refs", []):
                an = objs.get(a)
                if an is None or not is_current(an):
                    continue
                for ref in an.get("x_mitre_log_source_references", []):
                    dc = objs[ref["x_mitre_data_component_ref"]]
                    if not is_current(dc):
                        continue
                    key = ref["name"] if level == "log_source" else dc["name"]
                    reach.setdefault(key, set()).add(tech)
    return reach


def greedy(gaps: dict[str, float], reach: dict[str, set[str]]) -> list[tuple[str, list[str]]]:
    remaining = set(gaps) & set().union(*reach.values()) if reach else set()
    reach = {k: set(v) for k, v in reach.items()}
    steps = []
    while remaining and reach:
        best = min(
            reach,
            key=lambda s: (
                -sum(gaps[t] for t in reach[s] & remaining),
                -len(reach[s] & remaining),
                s,
            ),
        )
        gained = reach.pop(best) & remaining
        if not gained:
            break
        remaining -= gained
        steps.append((best, sorted(gained)))
    return steps


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def cleanup(graph: Graph) -> Iterator[None]:
    yield
    for r in graph.read(
        "MATCH (i:Inventory) WHERE i.name STARTS WITH $p RETURN i.name AS n", p=PREFIX
    ):
        delete_inventory(graph, r["n"])


@pytest.fixture(scope="module")
def tm() -> dict[str, set[str]]:
    return threat_model(GROUPS)


@pytest.fixture(scope="module")
def half(graph: Graph, tm: dict[str, set[str]], cleanup: None, tmp_path_factory) -> set[str]:
    """An inventory covering every other technique of the threat model (a plain list)."""
    chosen = set(sorted(tm)[::2])
    path = tmp_path_factory.mktemp("inv") / "half.txt"
    path.write_text("\n".join(sorted(chosen)) + "\n", encoding="utf-8")
    import_inventory(graph, "csv", path, name=PREFIX + "half")
    return chosen


def partial_set(direct: set[str]) -> set[str]:
    facts = bundle_techniques()
    out = set()
    for t, f in facts.items():
        if not f["current"] or t in direct:
            continue
        if f["parent"] in direct:
            out.add(t)
        if any(facts[s]["parent"] == t for s in direct if s in facts):
            out.add(t)
    return out


# --------------------------------------------------------------------------- gap analysis


def test_totals_and_coverage(graph: Graph, tm: dict, half: set[str]) -> None:
    ga = C.gap_analysis(graph, actors=NAMES, inventory=PREFIX + "half")
    assert [a.group_id for a in ga.actors] == GROUPS
    assert {t.technique_id for t in ga.techniques} == set(tm)
    assert ga.total == len(tm)
    covered = set(tm) & half
    assert {t.technique_id for t in ga.techniques if t.covered} == covered
    assert ga.covered == len(covered) and ga.gaps == len(tm) - len(covered)
    assert ga.coverage_pct == round(100 * len(covered) / len(tm), 1)
    partial = partial_set(half) & set(tm)
    assert {t.technique_id for t in ga.techniques if t.partial} == partial
    for t in ga.techniques:
        assert set(t.actors) == tm[t.technique_id]
        assert bool(t.rules) == (t.technique_id in half)
    # Gaps first, by priority.
    gaps = ga.gap_techniques()
    assert ga.techniques[: len(gaps)] == gaps
    assert [g.priority for g in gaps] == sorted((g.priority for g in gaps), reverse=True)


def test_partial_counts_as_covered(graph: Graph, tm: dict, half: set[str]) -> None:
    ga = C.gap_analysis(
        graph, actors=NAMES, inventory=PREFIX + "half", partial_counts_as_covered=True
    )
    expected = (set(tm) & half) | (partial_set(half) & set(tm))
    assert {t.technique_id for t in ga.techniques if t.covered} == expected
    assert ga.covered == len(expected)


def test_tactic_rows_follow_the_matrix(graph: Graph, tm: dict, half: set[str]) -> None:
    ga = C.gap_analysis(graph, actors=NAMES, inventory=PREFIX + "half")
    tactics_of, order = tactic_facts(SESSION_BUNDLES)
    domains = {d for t in tm for d, _ in tactics_of[t]}
    assert [(r.domain, r.shortname) for r in ga.tactics] == [
        (d, s) for d in sorted(domains) for s in order[d]
    ]
    for row in ga.tactics:
        members = {t for t in tm if (row.domain, row.shortname) in tactics_of[t]}
        assert row.total == len(members), row
        assert row.covered == len(members & half), row
        assert row.gaps == row.total - row.covered
        if row.total:
            assert row.coverage_pct == round(100 * row.covered / row.total, 1)
            filled = round(row.coverage_pct / 10)
            assert row.bar == "█" * filled + "░" * (10 - filled)
    line = C.tactic_bar_lines([r for r in ga.tactics if r.total])[0]
    r0 = next(r for r in ga.tactics if r.total)
    assert line.startswith(r0.tactic) and line.endswith(f"% ({r0.covered}/{r0.total})")


def test_priority_factors_from_the_bundle(graph: Graph, tm: dict, half: set[str]) -> None:
    ga = C.gap_analysis(graph, actors=NAMES, inventory=PREFIX + "half")
    using = groups_using(SESSION_BUNDLES)
    mitigations = mitigations_by_technique(SESSION_BUNDLES)
    dets: dict[str, int] = {}
    for path in SESSION_BUNDLES:
        objs = by_stix_id(path)
        for r in current_relationships(path):
            if r["relationship_type"] == "detects" and r["source_ref"].startswith("x-mitre-det"):
                tid = ext_id(objs[r["target_ref"]])
                dets[tid] = dets.get(tid, 0) + 1
    current_groups = sum(
        1
        for o in {
            **by_stix_id(SESSION_BUNDLES[0]),
            **by_stix_id(SESSION_BUNDLES[1]),
            **by_stix_id(SESSION_BUNDLES[2]),
        }.values()  # fmt: skip
        if o["type"] == "intrusion-set" and is_current(o)
    )
    w = C.PriorityWeights().normalised()
    max_groups = max(len(using.get(t, ())) for t in tm)
    for t in ga.techniques:
        tid = t.technique_id
        assert t.groups_using == len(using.get(tid, ())), tid
        assert t.total_groups == current_groups
        assert t.mitigations == len(mitigations.get(tid, ())), tid
        assert t.detection_strategies == dets.get(tid, 0), tid
        assert t.factors["actor_usage"] == round(len(tm[tid]) / len(GROUPS), 4)
        assert t.factors["prevalence"] == round(len(using.get(tid, ())) / max_groups, 4)
        assert t.factors["mitigations"] == round(1 / (1 + t.mitigations), 4)
        score = 100 * sum(w[k] * v for k, v in t.factors.items())
        if t.partial:
            score *= C.PARTIAL_FACTOR
        assert abs(t.priority - round(score, 1)) <= 0.11, tid
        assert len(t.reasons) >= 5
        assert f"used by {len(tm[tid])} of {len(GROUPS)} selected actors" in t.reasons[0]
        assert f"used by {t.groups_using} of {current_groups} ATT&CK groups" in t.reasons[1]


def test_weights_platforms_and_domain(graph: Graph, tm: dict, half: set[str]) -> None:
    ga = C.gap_analysis(graph, actors={"APT29": 3, "FIN7": 1}, inventory=PREFIX + "half")
    both = threat_model(["G0016", "G0046"])
    for t in ga.techniques:
        assert t.actor_weight == 3 * ("G0016" in both[t.technique_id]) + (
            "G0046" in both[t.technique_id]
        )
        assert "(weight" in t.reasons[0]
    tf = technique_facts(SESSION_BUNDLES)
    linux = C.gap_analysis(graph, actors=NAMES, inventory=PREFIX + "half", platforms=["linux"])
    assert {t.technique_id for t in linux.techniques} == {
        t for t in tm if "Linux" in tf[t]["platforms"]
    }
    ics = C.gap_analysis(graph, actors=NAMES, inventory=PREFIX + "half", domain="ics")
    tactics_of, _ = tactic_facts(SESSION_BUNDLES)
    assert {t.technique_id for t in ics.techniques} == {
        t for t in tm if any(d == "ics-attack" for d, _ in tactics_of[t])
    }
    assert {r.domain for r in ics.tactics} == {"ics-attack"}


def test_bad_input(graph: Graph, half: set[str]) -> None:
    inv = PREFIX + "half"
    with pytest.raises(NotFound, match="no inventory named"):
        C.gap_analysis(graph, actors=NAMES, inventory="no-such-inventory")
    with pytest.raises(NotFound) as exc:
        C.gap_analysis(graph, actors=["APT2999"], inventory=inv)
    assert "APT2999" in exc.value.detail
    with pytest.raises(InvalidInput, match="at least one actor"):
        C.gap_analysis(graph, actors=[], inventory=inv)
    with pytest.raises(InvalidInput, match="domain"):
        C.gap_analysis(graph, actors=NAMES, inventory=inv, domain="cloud")
    with pytest.raises(InvalidInput, match="weight"):
        C.gap_analysis(graph, actors={"APT29": -1}, inventory=inv)
    with pytest.raises(InvalidInput, match="level"):
        C.prioritize_telemetry(graph, actors=NAMES, inventory=inv, level="packets")
    assert C.parse_actor_args(["APT29=2", "FIN7"]) == {"APT29": 2.0, "FIN7": 1.0}
    assert C.parse_actor_args(["APT29", "FIN7"]) == ["APT29", "FIN7"]


def test_answers_follow_a_reimport(graph: Graph, tm: dict, half: set[str], tmp_path: Path) -> None:
    name = PREFIX + "moving"
    path = tmp_path / "a.txt"
    path.write_text(next(iter(sorted(tm))) + "\n", encoding="utf-8")
    import_inventory(graph, "csv", path, name=name)
    before = C.gap_analysis(graph, actors=NAMES, inventory=name)
    assert before.covered == 1
    path.write_text("\n".join(sorted(tm)) + "\n", encoding="utf-8")
    import_inventory(graph, "csv", path, name=name)
    after = C.gap_analysis(graph, actors=NAMES, inventory=name)
    assert after.covered == len(tm) and after.gaps == 0
    cov = C.inventory_coverage(graph, inventory=name)
    assert {t.technique_id for t in cov.techniques if not t.partial} == set(tm)


def test_real_sigma_corpus_against_five_actors(graph: Graph, tm: dict, cleanup: None) -> None:
    name = PREFIX + "sigma"
    import_inventory(graph, "sigma", SIGMA, name=name, crosswalk=CROSSWALK)
    exp = expected_direct(set().union(*sigma_raw()), crosswalk_reverse(CROSSWALK))["covered"]
    ga = C.gap_analysis(graph, actors=NAMES, inventory=name)
    assert {t.technique_id for t in ga.techniques if t.covered} == set(tm) & exp
    assert ga.coverage_pct == round(100 * len(set(tm) & exp) / len(tm), 1)


# --------------------------------------------------------------------------- telemetry


@pytest.mark.parametrize("level", ["log_source", "data_component"])
def test_telemetry_greedy_order(graph: Graph, tm: dict, half: set[str], level: str) -> None:
    plan = C.prioritize_telemetry(
        graph, actors=NAMES, inventory=PREFIX + "half", level=level, limit=100
    )
    gaps = {t: float(len(tm[t])) for t in tm if t not in half}
    reach = log_source_reach(SESSION_BUNDLES, level)
    expected = greedy(gaps, reach)
    assert [(s.source, s.techniques_gained) for s in plan.steps] == expected
    reachable = set(gaps) & set().union(*reach.values())
    assert plan.reachable == len(reachable)
    assert set(plan.unreachable) == set(gaps) - reachable
    covered = len(set(tm) & half)
    for s in plan.steps:
        assert s.covered_before == covered and s.gain == len(s.techniques_gained)
        covered += s.gain
        assert s.coverage_after == round(100 * covered / len(tm), 1)
        assert s.analytics and {a.technique_id for a in s.analytics} <= set(s.techniques_gained)
    assert plan.final_coverage_pct == round(100 * covered / len(tm), 1)


def test_telemetry_collected_sources_are_skipped(graph: Graph, half: set[str]) -> None:
    first = C.prioritize_telemetry(graph, actors=NAMES, inventory=PREFIX + "half", limit=3)
    src = first.steps[0].source
    again = C.prioritize_telemetry(
        graph, actors=NAMES, inventory=PREFIX + "half", limit=3, collected=[src]
    )
    assert src not in [s.source for s in again.steps]
    assert not set(first.steps[0].techniques_gained) & {
        t for s in again.steps for t in s.techniques_gained
    }


@pytest.mark.parametrize("platforms", [[], ["linux"], ["windows", "macos"]])
def test_stored_telemetry_is_what_the_edges_say(graph: Graph, platforms: list[str]) -> None:
    """What the load stores on each technique and a plan reads (filtered by platform in
    Python) equals ``telemetry_sources`` walking strategies, analytics and log sources."""
    stored = graph.read(
        "MATCH (t:Technique) WHERE NOT t.revoked AND NOT t.deprecated "
        "RETURN t.attack_id AS technique_id, t.rank_telemetry AS telemetry"
    )
    ids = {r["technique_id"] for r in stored}
    v18, v17 = C.stored_telemetry(stored, ids, platforms)
    walked = graph.read(Q.telemetry_sources, technique_ids=sorted(ids), platforms=platforms)[0]

    def key(r: dict) -> str:
        return json.dumps(r, sort_keys=True)

    assert sorted(map(key, v18)) == sorted(map(key, walked["v18"]))
    assert sorted(map(key, v17)) == sorted(map(key, walked["v17"]))
    assert len(walked["v18"]) > (100 if platforms else 1000)


# --------------------------------------------------------------------------- ATT&CK v17


@pytest.fixture(scope="module")
def v17_graph(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Graph]:
    """A throw-away Neo4j holding Enterprise 17.1 only (never the shared session graph)."""
    with throwaway_server(tmp_path_factory.mktemp("neo4j-v17"), label="v17") as (_, s):
        g = Graph.connect(s)
        try:
            load_file(g, str(ENTERPRISE_17))
            yield g
        finally:
            g.close()


def test_v17_data_components_that_detect(v17_graph: Graph, tmp_path: Path) -> None:
    groups = ["G0016", "G0046"]
    tm17 = threat_model(groups, [ENTERPRISE_17])
    path = tmp_path / "v17.txt"
    path.write_text("\n".join(sorted(tm17)[::3]) + "\n", encoding="utf-8")
    import_inventory(v17_graph, "csv", path, name="v17")
    covered = set(sorted(tm17)[::3])
    reach = log_source_reach([ENTERPRISE_17], "data_component")
    assert reach, "v17 data components DETECT techniques"
    gaps = {t: float(len(tm17[t])) for t in tm17 if t not in covered}
    for level in ("data_component", "log_source"):
        plan = C.prioritize_telemetry(
            v17_graph, actors=groups, inventory="v17", level=level, limit=100
        )
        assert [(s.source, s.techniques_gained) for s in plan.steps] == greedy(gaps, reach)
        assert all(s.v17 and s.kind == "data_component" for s in plan.steps)
    ga = C.gap_analysis(v17_graph, actors=groups, inventory="v17")
    dcs: dict[str, int] = {}
    for r in current_relationships(ENTERPRISE_17):
        if r["relationship_type"] == "detects":
            tid = ext_id(by_stix_id(ENTERPRISE_17)[r["target_ref"]])
            dcs[tid] = dcs.get(tid, 0) + 1
    for t in ga.techniques:
        assert t.data_components == dcs.get(t.technique_id, 0)
        assert t.detection_strategies == 0
    assert ga.releases == {"enterprise-attack": "17.1"}
