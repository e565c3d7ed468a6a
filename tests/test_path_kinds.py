"""One definition of the path kinds that tie an actor to a technique (direct; software, the
actor's own and its campaigns'; campaign), the same in every command: for EVERY group of the
session graph, the technique set of `gaps --software` is the profile's, that of `gaps` is the
profile's direct and campaign techniques, and both are the sets computed here from the bundle
JSON; the release snapshot (diff, threat-model changes) and the gap prevalence count the same
paths. The Cypher catalog refuses a copy of the shared block that differs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from loader.diff import snapshot_from_objects
from loader.inventory.importer import delete_inventory, import_inventory
from queries import coverage as C
from queries.actors import (
    PathKind,
    compare_groups,
    group_technique_sets,
    path_kinds,
    profile_group,
    similar_groups,
)
from queries.catalog import CYPHER_DIR, CatalogError, Q, check_shared_blocks, load_catalog
from queries.coverage.gaps import TECHNIQUE_FIELDS as GAP_TECHNIQUE_FIELDS
from queries.graph import Graph
from queries.layers.detection_layers import gaps_layer_for
from queries.releases import snapshot_from_graph
from queries.resolve import NO_WORDS

from .bundle_facts import ext_id, group_technique_paths, is_current, objects
from .conftest import ENTERPRISE, SESSION_BUNDLES

DOMAIN = "enterprise-attack"
INVENTORY = "t-paths-one"
# The queries that tie actors to techniques, each carrying the actor_techniques block.
CARRIERS = {
    "compare_groups",
    "coverage_threat_model",
    "gap_analysis",
    "group_technique_evidence",
    "group_technique_ids",
    "group_technique_sets",
    "intel_cluster_technique_sets",
    "profile_group",
    "telemetry_plan",
}


def oracle(group_id: str) -> tuple[set[str], set[str]]:
    """(direct + campaign, every kind) techniques of a group in Enterprise 18.1, from the JSON."""
    p = group_technique_paths([ENTERPRISE], group_id)
    base = set(p["direct"]) | set(p["campaign"])
    return base, base | set(p["software"]) | set(p["campaign_software"])


@pytest.fixture(scope="module")
def groups() -> list[str]:
    return sorted(
        ext_id(o)
        for o in objects(ENTERPRISE)
        if o["type"] == "intrusion-set" and is_current(o) and ext_id(o)
    )


@pytest.fixture(scope="module")
def inventory(graph: Graph, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path = tmp_path_factory.mktemp("paths") / "one.txt"
    path.write_text("T1059.001\n", encoding="utf-8")
    import_inventory(graph, "csv", path, name=INVENTORY)
    yield INVENTORY
    delete_inventory(graph, INVENTORY)


def test_the_path_block_is_one_definition(tmp_path: Path) -> None:
    blocks = check_shared_blocks(load_catalog())
    assert set(blocks["actor_techniques"]) == CARRIERS
    # the lookup of groups named by words, in the queries that answer for them
    assert set(blocks["groups_named"]) == {
        "group_lookup", "profile_group", "compare_groups", "gap_analysis", "telemetry_plan"
    }  # fmt: skip
    # a copy that drifts (here: the campaigns' software left out) is refused, naming the file
    for f in CYPHER_DIR.glob("*.cypher"):
        (tmp_path / f.name).write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
    target = tmp_path / "coverage_threat_model.cypher"
    text = target.read_text(encoding="utf-8")
    start = text.index("    UNION\n    MATCH (g)<-[a:ATTRIBUTED_TO]-(c)-[cs:USES]->(s)")
    end = text.index("    RETURN s\n  }", start)
    target.write_text(text[:start] + text[end + len("    RETURN s\n") :], encoding="utf-8")
    with pytest.raises(
        CatalogError, match="coverage_threat_model.cypher: block 'actor_techniques'"
    ):
        load_catalog(tmp_path)


def test_gaps_profile_and_compare_hold_the_same_set_for_every_group(
    graph: Graph, groups: list[str], inventory: str
) -> None:
    gaps_sw: dict[str, set[str]] = {g: set() for g in groups}
    gaps_base: dict[str, set[str]] = {g: set() for g in groups}
    for i in range(0, len(groups), C.MAX_ACTORS):  # an analysis takes at most 50 actors
        chunk = groups[i : i + C.MAX_ACTORS]
        for software, into in ((True, gaps_sw), (False, gaps_base)):
            ga = C.gap_analysis(
                graph, actors=chunk, inventory=inventory, domain=DOMAIN, include_software=software
            )
            for t in ga.techniques:
                for g in t.actors:
                    into[g].add(t.technique_id)
    compared = group_technique_sets(graph, groups, include_software=True, domain="enterprise")
    wrong = []
    for g in groups:
        base, every = oracle(g)
        techniques = profile_group(graph, group=g, domain="enterprise").techniques
        profile = {t.technique_id for t in techniques}
        direct_campaign = {
            t.technique_id
            for t in techniques
            if PathKind.direct in t.kinds or PathKind.campaign in t.kinds
        }
        if not (gaps_sw[g] == profile == set(compared[g][1]) == every):
            wrong.append((g, "software", sorted(gaps_sw[g] ^ every), sorted(profile ^ every)))
        if not (gaps_base[g] == direct_campaign == base):
            wrong.append((g, "direct+campaign", sorted(gaps_base[g] ^ base)))
    assert not wrong, wrong[:5]


def test_lazarus_software_of_a_campaign_reaches_gaps_and_its_layer(
    graph: Graph, inventory: str
) -> None:
    # T1480 reaches Lazarus Group only through Torisma, software of campaign C0022 (18.1)
    p = group_technique_paths([ENTERPRISE], "G0032")
    assert "T1480" in p["campaign_software"] and "T1480" not in p["software"]
    ga = C.gap_analysis(graph, actors=["Lazarus Group"], inventory=inventory, include_software=True)
    assert "T1480" in {t.technique_id for t in ga.techniques}
    layer = gaps_layer_for(graph, actors=["G0032"], inventory=inventory, include_software=True)
    assert "T1480" in {t["techniqueID"] for t in layer.layer["techniques"]}
    c = compare_groups(graph, groups=["G0032", "G0007"], include_software=True)
    assert "T1480" in c.unique["G0032"]


def test_prevalence_counts_the_same_paths(graph: Graph) -> None:
    """How many groups use each technique, as the load stores it (loader/technique_facts.py)
    and the gap analysis reads it, counts the same paths as the groups' technique sets."""
    for software in (False, True):
        sets = group_technique_sets(graph, [], include_software=software)
        users: dict[str, int] = {}
        for _, techniques in sets.values():
            for t in techniques:
                users[t] = users.get(t, 0) + 1
        stored = {
            r["id"]: r["n"]
            for r in graph.read(
                "MATCH (t:Technique) WHERE NOT t.revoked AND NOT t.deprecated "
                "RETURN t.attack_id AS id, "
                + ("t.rank_groups_using_software" if software else "t.rank_groups_using")
                + " AS n"
            )
        }
        assert {t: stored.get(t) for t in users} == users
        assert all(n == 0 for t, n in stored.items() if t not in users)
        row = graph.read(
            Q.gap_analysis, group_ids=["G0016"], words=NO_WORDS, kinds=path_kinds(software),
            domain=None, platforms=[], inventory="",
        )[0]  # fmt: skip
        assert row["techniques"]
        facts = [dict(zip(GAP_TECHNIQUE_FIELDS, t, strict=True)) for t in row["techniques"]]
        assert all(t["groups_using"] == users[t["technique_id"]] for t in facts)


def test_stored_group_technique_ids_are_the_paths(graph: Graph, groups: list[str]) -> None:
    """The technique ids each load stores on the groups (what similar over every group reads)
    are, for every group, its technique sets over the loaded bundles (computed here from the
    JSON) and what group_technique_sets answers; similar from them ranks as Jaccard over the
    bundle's sets does."""
    stored = {
        r["id"]: (set(r["base"]), set(r["every"]))
        for r in graph.read(
            "MATCH (g:Group) WHERE NOT g.revoked AND NOT g.deprecated RETURN g.attack_id AS id, "
            "g.rank_technique_ids AS base, g.rank_technique_ids_software AS every"
        )
    }
    wrong = []
    for g in stored:
        p = group_technique_paths(SESSION_BUNDLES, g)
        base = set(p["direct"]) | set(p["campaign"])
        if stored[g] != (base, base | set(p["software"]) | set(p["campaign_software"])):
            wrong.append(g)
    assert not wrong, wrong[:5]
    assert set(groups) <= set(stored)
    for software in (False, True):
        sets = group_technique_sets(graph, [], include_software=software)
        assert {g: set(t) for g, (_, t) in sets.items()} == {
            g: pair[software] for g, pair in stored.items() if pair[software]
        }
    # FIN7's neighbours by Jaccard over the bundle's sets, against the service's answer
    sets = {g: pair[0] for g, pair in stored.items() if pair[0]}
    mine = sets["G0046"]
    expected = sorted(
        ((round(len(mine & s) / len(mine | s), 4), len(mine & s), g) for g, s in sets.items()
         if g != "G0046" and mine & s),
        key=lambda x: (-x[0], -x[1], x[2]),
    )[:10]  # fmt: skip
    got = similar_groups(graph, group="FIN7", limit=10)
    assert [(s.jaccard, s.shared, s.group_id) for s in got.similar] == expected
    assert got.compared_with == len(sets) - 1


def test_release_snapshots_count_every_path_kind() -> None:
    """The diff's group sets (from the bundle) are the oracle's, kind by kind."""
    snap = snapshot_from_objects(
        list(objects(ENTERPRISE)), domain=DOMAIN, version="18.1", source="18.1"
    )
    for g in snap.groups:
        if g.revoked or g.deprecated or not g.attack_id:
            continue
        p = group_technique_paths([ENTERPRISE], g.attack_id)
        assert set(g.techniques) == set(p["direct"])
        assert set(g.campaign_techniques) == set(p["campaign"])
        assert set(g.software_techniques) == set(p["software"]) | set(p["campaign_software"])


def test_graph_snapshot_equals_the_bundle_snapshot(graph: Graph) -> None:
    from_graph = {g.stix_id: g for g in snapshot_from_graph(graph, domain=DOMAIN).groups}
    from_bundle = snapshot_from_objects(
        list(objects(ENTERPRISE)), domain=DOMAIN, version="18.1", source="18.1"
    ).groups
    assert {g.stix_id: g for g in from_bundle} == from_graph
