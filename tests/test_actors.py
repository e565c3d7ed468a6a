"""Actor intelligence — profiles, comparisons, similarity, resolution and search — against the
real graph, checked against mitreattack-python (a dev-only oracle, Enterprise 18.1) and against
facts computed straight from the bundle JSON.

Definitions the expectations use (path kinds of ``profile_group``):

- direct: the group USES the technique;
- campaign: a campaign attributed to the group USES it (ATT&CK's own inheritance rule, and what
  ``MitreAttackData.get_techniques_used_by_group`` adds to the direct ones);
- software: software that is the group's — used by the group, or used in a campaign attributed
  to it, as the profile's own software list and ``MitreAttackData.get_software_used_by_group``
  say — USES it. ``MitreAttackData.get_techniques_used_by_group_software`` predates campaigns
  and only follows the group's own software; it is checked against exactly that part.

Everything revoked or deprecated (objects and relationships) is left out.
"""

from __future__ import annotations

import re
from collections import Counter
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest

from loader.technique_facts import store_group_technique_ids
from queries.actors import (
    MAX_ACTORS,
    GroupProfile,
    PathKind,
    compare_groups,
    jaccard,
    profile_group,
    search_groups,
    similar_groups,
)
from queries.cache import bump_graph_version
from queries.catalog import Q
from queries.errors import InvalidInput, NotFound
from queries.graph import Graph
from queries.resolve import read_for_groups, resolve_group, resolve_software, resolve_technique

from .bundle_facts import (
    by_stix_id,
    current_relationships,
    ext_id,
    group_technique_paths,
    is_current,
    mitigations_by_technique,
    objects,
    stix_id_for,
    technique_facts,
)
from .conftest import ENTERPRISE, SESSION_BUNDLES

GROUPS = ["G0016", "G0007", "G0032", "G0046", "G0082"]  # APT29, APT28, Lazarus, FIN7, TA505
COMPARED = ["G0016", "G0007", "G0032"]
ENT = [ENTERPRISE]


# ---------------------------------------------------------------- oracle and bundle helpers


def _aid(obj: Any) -> str:
    return obj.external_references[0].external_id


def _current(obj: Any) -> bool:
    return not obj.get("revoked", False) and not obj.get("x_mitre_deprecated", False)


def _gstix(attack_id: str) -> str:
    sid = stix_id_for(ENTERPRISE, "intrusion-set", attack_id)
    assert sid is not None, attack_id
    return sid


@pytest.fixture(scope="module")
def oracle_used_by_group(mitre_data) -> dict[str, set[str]]:
    """Every current enterprise group -> its direct ∪ campaign-inherited techniques, per
    mitreattack-python (revoked and deprecated techniques left out)."""
    every = mitre_data.get_all_techniques_used_by_all_groups()
    return {
        _aid(g): {_aid(e["object"]) for e in every.get(g.id, []) if _current(e["object"])}
        for g in mitre_data.get_groups(remove_revoked_deprecated=True)
    }


@pytest.fixture(scope="module")
def oracle_direct(mitre_data) -> dict[str, set[str]]:
    """Group STIX id -> the techniques it uses directly, per mitreattack-python."""
    related = mitre_data.get_related("intrusion-set", "uses", "attack-pattern")
    return {
        g: {_aid(e["object"]) for e in entries if _current(e["object"])}
        for g, entries in related.items()
    }


def oracle_software(mitre_data, group: str) -> set[str]:
    techniques = mitre_data.get_techniques_used_by_group_software(_gstix(group))
    return {_aid(t) for t in techniques if _current(t)}


def software_set(paths: dict[str, dict[str, set[str]]]) -> set[str]:
    """Software-derived techniques by the definition above (group's and campaigns' software)."""
    return set(paths["software"]) | set(paths["campaign_software"])


def ids(profile: GroupProfile) -> set[str]:
    return {t.technique_id for t in profile.techniques}


def evidence_by_kind(profile: GroupProfile, kind: PathKind) -> dict[str, set[str | None]]:
    """technique id -> the via ids of its evidence of that kind."""
    out: dict[str, set[str | None]] = {}
    for t in profile.techniques:
        for e in t.evidence:
            if e.kind == kind:
                out.setdefault(t.technique_id, set()).add(e.via_id)
    return out


def _enterprise(techniques: set[str]) -> set[str]:
    facts = technique_facts(ENT)
    return {t for t in techniques if t in facts}


# ---------------------------------------------------------------- 1. direct techniques


@pytest.mark.parametrize("group", GROUPS)
def test_direct_techniques_equal_mitreattack_python(
    graph: Graph, oracle_direct: dict[str, set[str]], group: str
) -> None:
    p = profile_group(graph, group=group, kinds=[PathKind.direct], domain="enterprise")
    expected = oracle_direct[_gstix(group)]
    assert len(expected) > 10
    assert ids(p) == expected
    assert ids(p) == set(group_technique_paths(ENT, group)["direct"])
    assert p.technique_count == len(expected)
    for t in p.techniques:
        assert t.kinds == [PathKind.direct]
        assert all(e.kind == PathKind.direct and e.via_id is None for e in t.evidence)


def test_direct_evidence_is_the_bundles_procedure_text_and_citations(graph: Graph) -> None:
    """Each direct technique of APT29 carries exactly the procedure text and citations of its
    bundle relationship(s)."""
    gid = _gstix("G0016")
    objs = by_stix_id(ENTERPRISE)
    expected: dict[str, Counter[tuple[str, tuple[str, ...], tuple[str, ...]]]] = {}
    for r in current_relationships(ENTERPRISE):
        if (
            r["relationship_type"] == "uses"
            and r["source_ref"] == gid
            and r["target_ref"].startswith("attack-pattern--")
        ):
            refs = r.get("external_references", [])
            expected.setdefault(ext_id(objs[r["target_ref"]]) or "", Counter())[
                (
                    r["description"],
                    tuple(x["source_name"] for x in refs),
                    tuple(x.get("url", "") for x in refs),
                )
            ] += 1
    p = profile_group(graph, group="G0016", kinds=[PathKind.direct], domain="enterprise")
    got = {
        t.technique_id: Counter(
            (e.procedure, tuple(e.citations), tuple(e.citation_urls)) for e in t.evidence
        )
        for t in p.techniques
    }
    assert got == expected
    # the sample the comparison hinges on: a procedure with several citations, verbatim
    tid, sample = next(
        (t, next(iter(c)))
        for t, c in sorted(expected.items())
        if c.total() == 1 and len(next(iter(c))[1]) >= 2
    )
    ev = next(t for t in p.techniques if t.technique_id == tid).evidence[0]
    assert ev.procedure == sample[0] and "(Citation: " in ev.procedure
    assert ev.citations == list(sample[1])
    assert ev.citation_urls == list(sample[2])


# ---------------------------------------------------------------- 2. software-derived


@pytest.mark.parametrize("group", GROUPS)
def test_software_techniques_of_the_groups_own_software_equal_mitreattack_python(
    graph: Graph, mitre_data, group: str
) -> None:
    """``get_techniques_used_by_group_software`` follows only the software the group itself
    uses: the evidence through exactly that software gives the same set, software by software."""
    paths = group_technique_paths(ENT, group)
    own_software = {v for vias in paths["software"].values() for v in vias}
    p = profile_group(graph, group=group, kinds=[PathKind.software], domain="enterprise")
    via_own = {
        t: {v for v in vias if v in own_software}
        for t, vias in evidence_by_kind(p, PathKind.software).items()
    }
    via_own = {t: v for t, v in via_own.items() if v}
    expected = oracle_software(mitre_data, group)
    assert len(expected) > 10
    assert set(via_own) == expected
    assert via_own == paths["software"]


@pytest.mark.parametrize("group", GROUPS)
def test_software_techniques_include_software_used_in_the_groups_campaigns(
    graph: Graph, group: str
) -> None:
    """The profile lists software used in the group's campaigns as the group's software; the
    techniques it derives from software must come from that same list."""
    paths = group_technique_paths(ENT, group)
    p = profile_group(graph, group=group, kinds=[PathKind.software], domain="enterprise")
    listed = {s.software_id for s in p.software}
    bundle_software = {
        v for k in ("software", "campaign_software") for vs in paths[k].values() for v in vs
    }
    assert bundle_software <= listed
    expected: dict[str, set[str]] = {}
    for k in ("software", "campaign_software"):
        for t, vias in paths[k].items():
            expected.setdefault(t, set()).update(vias)
    got = evidence_by_kind(p, PathKind.software)
    missing = sorted(set(expected) - set(got))
    assert not missing, f"techniques of {group}'s campaign software missing: {missing}"
    assert got == expected
    assert ids(p) == software_set(paths)


# ---------------------------------------------------------------- 3. via campaign


@pytest.mark.parametrize("group", GROUPS)
def test_direct_and_campaign_equal_get_techniques_used_by_group(
    graph: Graph, oracle_used_by_group: dict[str, set[str]], group: str
) -> None:
    p = profile_group(
        graph, group=group, kinds=[PathKind.direct, PathKind.campaign], domain="enterprise"
    )
    assert ids(p) == oracle_used_by_group[group]
    paths = group_technique_paths(ENT, group)
    assert evidence_by_kind(p, PathKind.campaign) == paths["campaign"]
    assert {c.campaign_id for c in p.campaigns} == {
        c for vias in paths["campaign"].values() for c in vias
    }


def test_campaigns_add_techniques_for_apt29(graph: Graph) -> None:
    """The campaign path is not vacuous: APT29's campaigns add techniques it has no direct
    relationship to, and the profile marks them campaign-only."""
    paths = group_technique_paths(ENT, "G0016")
    only_campaign = set(paths["campaign"]) - set(paths["direct"])
    assert len(only_campaign) > 10
    p = profile_group(
        graph, group="G0016", kinds=[PathKind.direct, PathKind.campaign], domain="enterprise"
    )
    kinds = {t.technique_id: t.kinds for t in p.techniques}
    assert all(kinds[t] == [PathKind.campaign] for t in only_campaign)
    both = set(paths["campaign"]) & set(paths["direct"])
    assert all(kinds[t] == [PathKind.direct, PathKind.campaign] for t in both)


# ---------------------------------------------------------------- 4. compare_groups


def _check_comparison(c, sets: dict[str, set[str]]) -> None:
    order = [a.group_id for a in c.actors]
    assert order == list(sets)
    assert c.technique_counts == {g: len(s) for g, s in sets.items()}
    assert set(c.common) == set.intersection(*sets.values())
    for g, s in sets.items():
        others = set().union(*(sets[o] for o in sets if o != g))
        assert set(c.unique[g]) == s - others, g
    union = set().union(*sets.values())
    assert {t.technique_id for t in c.techniques} == union
    for t in c.techniques:
        users = {g for g, s in sets.items() if t.technique_id in s}
        assert (t.count, t.of) == (len(users), len(sets)), t.technique_id
        assert set(t.actors) == users, t.technique_id
    k_of_n = Counter(sum(t in s for s in sets.values()) for t in union)
    assert Counter(t.count for t in c.techniques) == k_of_n
    assert [t.count for t in c.techniques] == sorted((t.count for t in c.techniques), reverse=True)
    pairs = {(p.a, p.b): p for p in c.pairs}
    assert set(pairs) == set(combinations(order, 2))
    for (a, b), p in pairs.items():
        shared = sets[a] & sets[b]
        assert p.shared == len(shared)
        assert p.jaccard == pytest.approx(len(shared) / len(sets[a] | sets[b]), abs=1e-4)
    for i, a in enumerate(order):
        for j, b in enumerate(order):
            assert c.shared_matrix[i][j] == len(sets[a] & sets[b])
            assert c.jaccard_matrix[i][j] == pytest.approx(jaccard(sets[a], sets[b]), abs=1e-4)
            assert c.jaccard_matrix[i][j] == c.jaccard_matrix[j][i]
        assert c.jaccard_matrix[i][i] == 1.0


def test_compare_groups_is_set_arithmetic_on_mitreattack_python_sets(
    graph: Graph, oracle_used_by_group: dict[str, set[str]]
) -> None:
    sets = {g: oracle_used_by_group[g] for g in COMPARED}
    c = compare_groups(graph, groups=["APT29", "G0007", "Lazarus Group"], domain="enterprise")
    assert not c.include_software
    assert c.common and all(c.unique.values())
    _check_comparison(c, sets)
    # how each actor uses each technique, per the bundle
    paths = {g: group_technique_paths(ENT, g) for g in COMPARED}
    for t in c.techniques:
        for g, kinds in t.actors.items():
            expected = {k for k in ("direct", "campaign") if t.technique_id in paths[g][k]}
            assert {PathKind(k).value for k in kinds} == expected, (g, t.technique_id)


def test_compare_groups_with_software(
    graph: Graph, oracle_used_by_group: dict[str, set[str]]
) -> None:
    sets = {
        g: oracle_used_by_group[g] | software_set(group_technique_paths(ENT, g)) for g in COMPARED
    }
    c = compare_groups(graph, groups=COMPARED, include_software=True, domain="enterprise")
    assert c.include_software
    _check_comparison(c, sets)


def test_compare_groups_default_domain_spans_every_loaded_bundle(graph: Graph) -> None:
    """Without a domain, Lazarus Group's ICS technique counts too (direct ∪ campaign over the
    three bundles)."""
    sets = {}
    for g in COMPARED:
        paths = group_technique_paths(SESSION_BUNDLES, g)
        sets[g] = set(paths["direct"]) | set(paths["campaign"])
    assert any(s - _enterprise(s) for s in sets.values())
    _check_comparison(compare_groups(graph, groups=COMPARED), sets)


def test_compare_groups_rejects_bad_actor_lists(graph: Graph) -> None:
    current = sorted(
        ext_id(o) or ""
        for o in objects(ENTERPRISE)
        if o["type"] == "intrusion-set" and is_current(o)
    )
    assert len(current) > MAX_ACTORS
    with pytest.raises(InvalidInput):
        compare_groups(graph, groups=["G0016"])
    with pytest.raises(InvalidInput):
        compare_groups(graph, groups=[])
    with pytest.raises(InvalidInput, match=str(MAX_ACTORS)):
        compare_groups(graph, groups=current[: MAX_ACTORS + 1])
    alias = next(a for a in by_stix_id(ENTERPRISE)[_gstix("G0016")]["aliases"] if a != "APT29")
    with pytest.raises(InvalidInput):
        compare_groups(graph, groups=["G0016", alias])
    # the limit itself is allowed
    c = compare_groups(graph, groups=current[:MAX_ACTORS], domain="enterprise")
    assert len(c.actors) == MAX_ACTORS
    assert len(c.jaccard_matrix) == MAX_ACTORS


# ---------------------------------------------------------------- 5. similar_groups


def test_similar_groups_fin7_ranks_by_jaccard(
    graph: Graph, oracle_used_by_group: dict[str, set[str]]
) -> None:
    sets = {g: _enterprise(s) for g, s in oracle_used_by_group.items()}
    mine = sets["G0046"]
    ranked = sorted(
        (
            (round(jaccard(mine, s), 4), len(mine & s), g)
            for g, s in sets.items()
            if g != "G0046" and mine & s
        ),
        key=lambda x: (-x[0], -x[1], x[2]),
    )
    sim = similar_groups(graph, group="FIN7", domain="enterprise", limit=10)
    assert sim.group_id == "G0046" and sim.technique_count == len(mine)
    assert sim.compared_with == sum(1 for g, s in sets.items() if g != "G0046" and s)
    assert [(s.jaccard, s.shared, s.group_id) for s in sim.similar] == ranked[:10]
    for s in sim.similar:
        assert s.technique_count == len(sets[s.group_id])
        assert set(s.shared_techniques) == mine & sets[s.group_id]
    # the whole ranking, not just the top ten
    everyone = similar_groups(graph, group="G0046", domain="enterprise", limit=1000)
    assert [(s.group_id, s.jaccard) for s in everyone.similar] == [(g, j) for j, _, g in ranked]


# ---------------------------------------------------------------- 6. resolution


def _current_groups(paths: list[Path]) -> dict[str, dict[str, Any]]:
    return {
        ext_id(o) or "": o
        for p in paths
        for o in objects(p)
        if o["type"] == "intrusion-set" and is_current(o)
    }


def _names_and_aliases() -> dict[str, set[str]]:
    """lower-cased name or alias -> the current groups that carry it (all loaded bundles)."""
    out: dict[str, set[str]] = {}
    for gid, o in _current_groups(SESSION_BUNDLES).items():
        for a in [o["name"], *o.get("aliases", [])]:
            out.setdefault(a.strip().lower(), set()).add(gid)
    return out


def test_resolve_group_by_id_name_and_every_alias_in_the_bundle(graph: Graph) -> None:
    apt29 = by_stix_id(ENTERPRISE)[_gstix("G0016")]
    owners = _names_and_aliases()
    aliases = [a for a in apt29["aliases"] if owners[a.lower()] == {"G0016"}]
    assert {"Cozy Bear", "NOBELIUM", "Midnight Blizzard"} <= set(aliases)
    for text in ["G0016", "g0016", "apt29", " APT29 ", *aliases, *(a.upper() for a in aliases)]:
        r = resolve_group(graph, text)
        assert (r.attack_id, r.name) == ("G0016", "APT29"), text
        assert r.note is None


def test_resolve_software_and_technique(graph: Graph) -> None:
    cobalt = next(
        o for o in objects(ENTERPRISE) if o["type"] in ("tool", "malware") and ext_id(o) == "S0154"
    )
    for text in ["S0154", "s0154", "cobalt strike", *cobalt.get("x_mitre_aliases", [])]:
        assert resolve_software(graph, text).attack_id == "S0154", text
    for text in [
        "T1059.001",
        "t1059.001",
        "PowerShell",
        "Command and Scripting Interpreter: PowerShell",
    ]:
        assert resolve_technique(graph, text).attack_id == "T1059.001", text
    assert resolve_technique(graph, "T1059").attack_id == "T1059"


def test_unknown_group_is_not_found_with_suggestions(graph: Graph) -> None:
    with pytest.raises(NotFound) as info:
        resolve_group(graph, "APT 29")
    assert any("G0016" in s for s in info.value.suggestions), info.value.suggestions
    with pytest.raises(NotFound):
        resolve_group(graph, "G9999")
    with pytest.raises(InvalidInput):
        resolve_group(graph, "   ")


def test_alias_shared_by_two_current_groups_is_ambiguous(graph: Graph) -> None:
    groups = _current_groups(SESSION_BUNDLES)
    names = {o["name"].strip().lower() for o in groups.values()}
    shared = sorted(
        (a, gs) for a, gs in _names_and_aliases().items() if len(gs) > 1 and a not in names
    )
    assert shared, "the bundle has no alias shared by two current groups"
    for alias, owners in shared:
        with pytest.raises(InvalidInput) as info:
            resolve_group(graph, alias)
        assert info.value.detail.startswith("ambiguous"), info.value.detail
        assert set(info.value.suggestions) == owners


def test_a_name_wins_over_another_groups_alias(graph: Graph) -> None:
    """A string that is one group's name and another's alias means the named group."""
    groups = _current_groups(SESSION_BUNDLES)
    by_name = {o["name"].strip().lower(): g for g, o in groups.items()}
    clashes = [
        (n, g)
        for n, gs in _names_and_aliases().items()
        if len(gs) > 1
        for g in [by_name.get(n)]
        if g
    ]
    assert clashes
    for name, gid in clashes:
        assert resolve_group(graph, name).attack_id == gid


def test_revoked_group_resolves_to_its_replacement_with_a_note(graph: Graph) -> None:
    objs = by_stix_id(ENTERPRISE)
    revoked = [
        (ext_id(objs[r["source_ref"]]), ext_id(objs[r["target_ref"]]))
        for r in objects(ENTERPRISE)
        if r["type"] == "relationship"
        and r["relationship_type"] == "revoked-by"
        and r["source_ref"].startswith("intrusion-set--")
    ]
    assert revoked
    for old, new in revoked:
        r = resolve_group(graph, old or "")
        assert r.attack_id == new and r.matched == "replacement"
        assert r.note and old in r.note and new in r.note
    old, new = revoked[0]
    p = profile_group(graph, group=old or "", kinds=[PathKind.direct], domain="enterprise")
    assert p.group_id == new and p.resolved_note and old in p.resolved_note


def _reads(graph: Graph, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The queries ``graph`` runs from now on (the answer cache off: only the question's)."""
    seen: list[str] = []
    read = graph.read

    def counted(query: str, **params: Any) -> list[dict[str, Any]]:
        seen.append(query)
        return read(query, **params)

    monkeypatch.setattr(graph, "read", counted)
    monkeypatch.setattr(graph.cache, "enabled", False)
    return seen


def test_questions_resolve_their_words_in_the_query_that_answers(
    graph: Graph, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A question about groups named by words (compare, profile, gaps, telemetry) resolves them
    exactly as ``resolve_group`` does, in its own query when the words are what they look like
    (an id, a current group's name - even one that is another group's alias too - or its own
    alias: one round trip); it asks again with the ids when they are not (a cluster of the
    organisation: tests/test_intel.py)."""
    groups = _current_groups(SESSION_BUNDLES)
    owners = _names_and_aliases()
    plain = [g for g in groups]  # ids, as given and lower-case
    plain += [g.lower() for g in groups]
    plain += [o["name"] for g, o in groups.items() if owners[o["name"].strip().lower()] == {g}]
    plain += [a for g, o in groups.items() for a in o.get("aliases", [])
              if owners[a.strip().lower()] == {g} and " ".join(a.split()) == a]  # fmt: skip
    revoked = [ext_id(o) or "" for o in objects(ENTERPRISE)
               if o["type"] == "intrusion-set" and o.get("revoked")]  # fmt: skip
    expected = {t: resolve_group(graph, t) for t in [*plain, *revoked]}
    seen = _reads(graph, monkeypatch)
    params = {"kinds": ["direct"], "domain": None}
    for i in range(0, len(plain), MAX_ACTORS):
        chunk = plain[i : i + MAX_ACTORS]
        seen.clear()
        resolved, _ = read_for_groups(graph, Q.compare_groups, chunk, **params)
        assert resolved == [expected[t] for t in chunk]
        assert len(seen) == 1, chunk  # the answer's own query, nothing else
    seen.clear()
    resolved, _ = read_for_groups(graph, Q.compare_groups, revoked, **params)
    assert resolved == [expected[t] for t in revoked] and all(r.note for r in resolved)
    assert len(seen) == 1
    # A name that is one group's and another's alias means the named group, which its name_key
    # finds alone: the query's guess is that group, so one round trip (before name_key the
    # full-text lookup found both, and the question was asked again with the id).
    by_name = {o["name"].strip().lower(): g for g, o in groups.items()}
    clash = next(n for n, gs in owners.items() if len(gs) > 1 and n in by_name)
    seen.clear()
    p = profile_group(graph, group=clash, kinds=[PathKind.direct])
    assert p.group_id == by_name[clash] == resolve_group(graph, clash).attack_id
    assert len([q for q in seen if q == Q.profile_group]) == 1
    # words no group answers to fail as resolve_group fails
    for text in ["APT 29", "G9999"]:
        with pytest.raises(NotFound) as info:
            profile_group(graph, group=text)
        with pytest.raises(NotFound) as direct:
            resolve_group(graph, text)
        assert info.value.detail == direct.value.detail


# ---------------------------------------------------------------- 7. revoked and deprecated


def test_no_output_holds_a_retired_technique_or_group(graph: Graph) -> None:
    facts = technique_facts(SESSION_BUNDLES)
    current_groups = set(_current_groups(SESSION_BUNDLES))
    seen: set[str] = set()
    for g in GROUPS:
        seen |= ids(profile_group(graph, group=g))
    c = compare_groups(graph, groups=COMPARED, include_software=True)
    seen |= {t.technique_id for t in c.techniques}
    for g in ["FIN7", "G0016"]:
        sim = similar_groups(graph, group=g, include_software=True, limit=1000)
        assert {s.group_id for s in sim.similar} <= current_groups
        seen |= {t for s in sim.similar for t in s.shared_techniques}
    assert len(seen) > 300
    retired = sorted(t for t in seen if facts[t]["revoked"] or facts[t]["deprecated"])
    assert not retired


@pytest.fixture
def retire(graph: Graph):
    """Flag graph objects or relationships revoked/deprecated for one test, then restore them.
    Each change is a write transaction that bumps the graph version, as every ttpgraph write
    does, so cached answers are not reused across it; and, as the release load that would
    retire them does, it stores the groups' technique ids again (what similar reads)."""
    done: list[tuple[str, str, str, bool]] = []

    def write(query: str, **params: Any) -> list[dict[str, Any]]:
        def work(tx: Any) -> list[dict[str, Any]]:
            rows = [r.data() for r in tx.run(query, **params)]
            store_group_technique_ids(tx)
            bump_graph_version(tx)
            return rows

        with graph.driver.session(database=graph.database) as session:
            return session.execute_write(work)

    def flag(kind: str, stix_id: str, prop: str) -> None:
        match = "MATCH (x {stix_id: $id})" if kind == "node" else "MATCH ()-[x {stix_id: $id}]->()"
        rows = write(f"{match} WITH x, x.{prop} AS old SET x.{prop} = true RETURN old", id=stix_id)
        assert len(rows) == 1, stix_id
        done.append((match, stix_id, prop, rows[0]["old"]))

    yield flag
    for match, stix_id, prop, old in reversed(done):
        write(f"{match} SET x.{prop} = $old", id=stix_id, old=old)


def test_objects_flagged_retired_drop_out_of_every_output(graph: Graph, retire) -> None:
    """The real bundles never tie a group to a retired technique, so flag some in the graph:
    a technique, a software, a campaign, a uses relationship and a group."""
    paths = group_technique_paths(ENT, "G0016")
    everywhere = sorted(set(paths["direct"]) & set(paths["campaign"]) & set(paths["software"]))
    direct_only = sorted(set(paths["direct"]) - set(paths["campaign"]) - software_set(paths))
    software = sorted({v for vs in paths["software"].values() for v in vs})[0]
    campaign = sorted({v for vs in paths["campaign"].values() for v in vs})[0]
    tech, lone = everywhere[0], direct_only[0]
    objs = objects(ENTERPRISE)
    stix = {
        ext_id(o): o["id"]
        for o in objs
        if o["type"] in ("attack-pattern", "malware", "tool", "campaign")
    }
    gid = _gstix("G0016")
    lone_rel = next(
        r["id"]
        for r in current_relationships(ENTERPRISE)
        if r["source_ref"] == gid and r["target_ref"] == stix[lone]
    )
    fin7_top = similar_groups(graph, group="FIN7", domain="enterprise", limit=1)

    def outputs():
        p = profile_group(graph, group="G0016", domain="enterprise")
        c = compare_groups(graph, groups=["G0016", "G0007"], include_software=True)
        s = similar_groups(graph, group="G0016", include_software=True, limit=1000)
        f = similar_groups(graph, group="FIN7", domain="enterprise", limit=1000)
        return p, c, s, f

    p, c, s, f = outputs()
    assert {tech, lone} <= ids(p)
    assert tech in {t.technique_id for t in c.techniques}
    assert any(tech in x.shared_techniques for x in s.similar)
    assert software in {e.via_id for t in p.techniques for e in t.evidence}
    assert campaign in {e.via_id for t in p.techniques for e in t.evidence}
    top = fin7_top.similar[0].group_id
    assert top in {x.group_id for x in f.similar}

    retire("node", stix[tech], "revoked")
    retire("node", stix[software], "deprecated")
    retire("node", stix[campaign], "revoked")
    retire("rel", lone_rel, "deprecated")
    retire("node", _gstix(top), "deprecated")

    p, c, s, f = outputs()
    assert tech not in ids(p) and lone not in ids(p)
    assert tech not in {t.technique_id for t in c.techniques}
    assert not any(tech in x.shared_techniques for x in s.similar)
    vias = {e.via_id for t in p.techniques for e in t.evidence}
    assert software not in vias and campaign not in vias
    assert software not in {x.software_id for x in p.software}
    assert campaign not in {x.campaign_id for x in p.campaigns}
    assert top not in {x.group_id for x in f.similar}
    assert f.compared_with == fin7_top.compared_with - 1


# ---------------------------------------------------------------- 8. filters


@pytest.mark.parametrize("tactic", ["defense-evasion", "Defense Evasion", "DEFENSE EVASION"])
def test_tactic_filter(graph: Graph, tactic: str) -> None:
    facts = technique_facts(ENT)
    base = ids(profile_group(graph, group="G0016", domain="enterprise"))
    p = profile_group(graph, group="G0016", domain="enterprise", tactic=tactic)
    expected = {t for t in base if "defense-evasion" in facts[t]["tactics"]}
    assert 0 < len(expected) < len(base)
    assert ids(p) == expected
    assert all(
        "defense-evasion" in t.tactics and "Defense Evasion" in t.tactic_names for t in p.techniques
    )


@pytest.mark.parametrize("group", ["G0016", "G0032"])
def test_platform_filter(graph: Graph, group: str) -> None:
    facts = technique_facts(ENT)
    base = ids(profile_group(graph, group=group, domain="enterprise"))
    p = profile_group(graph, group=group, domain="enterprise", platforms=["Linux"])
    expected = {t for t in base if "Linux" in facts[t]["platforms"]}
    assert 0 < len(expected) < len(base)
    assert ids(p) == expected
    assert all("Linux" in t.platforms for t in p.techniques)


@pytest.mark.parametrize("group", ["G0016", "G0007"])
def test_rollup_merges_sub_techniques_into_their_parents(graph: Graph, group: str) -> None:
    facts = technique_facts(ENT)
    flat = profile_group(graph, group=group, domain="enterprise")
    rolled = profile_group(graph, group=group, domain="enterprise", rollup=True)
    subs: dict[str, set[str]] = {}
    for t in ids(flat):
        parent = facts[t]["parent"] or t
        subs.setdefault(parent, set())
        if parent != t:
            subs[parent].add(t)
    assert any(subs.values())
    assert ids(rolled) == set(subs)
    assert rolled.technique_count == len(subs)
    flat_kinds = {t.technique_id: set(t.kinds) for t in flat.techniques}
    for t in rolled.techniques:
        assert not t.is_subtechnique and facts[t.technique_id]["parent"] is None
        assert t.rolled_up_from == sorted(subs[t.technique_id])
        merged = set().union(
            *(flat_kinds[s] for s in subs[t.technique_id] | {t.technique_id} if s in flat_kinds)
        )
        assert set(t.kinds) == merged


@pytest.mark.parametrize("group", ["G0016", "G0007"])
def test_mitigations_ranked_by_how_many_of_the_groups_techniques_they_address(
    graph: Graph, group: str
) -> None:
    mitigates = mitigations_by_technique(SESSION_BUNDLES)
    p = profile_group(graph, group=group, domain="enterprise")
    expected: dict[str, set[str]] = {}
    for t in ids(p):
        for m in mitigates.get(t, ()):
            expected.setdefault(m, set()).add(t)
    assert len(expected) > 10
    assert {m.mitigation_id: set(m.techniques) for m in p.mitigations} == expected
    assert all(m.count == len(expected[m.mitigation_id]) for m in p.mitigations)
    counts = [m.count for m in p.mitigations]
    assert counts == sorted(counts, reverse=True) and counts[0] > counts[-1]


# ---------------------------------------------------------------- 9. groups_search


def _tokens(text: str) -> set[str]:
    """Roughly Lucene's standard tokenizer, lower-cased (apostrophes stay inside words)."""
    return set(re.findall(r"\w+(?:'\w+)*", text.lower()))


def _group_texts() -> dict[str, str]:
    out: dict[str, str] = {}
    for gid, o in _current_groups(SESSION_BUNDLES).items():
        out[gid] = " ".join([o["name"], *o.get("aliases", []), o.get("description", "")])
    return out


def test_groups_search_financial(graph: Graph) -> None:
    texts = _group_texts()
    hits = search_groups(graph, text="financial", limit=200)
    assert len(hits) > 5
    for h in hits:
        assert re.search(r"\bfinanc", texts[h.group_id].lower()), h.group_id
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    # the standard analyzer does not stem: exactly the groups with the word "financial"
    assert {h.group_id for h in hits} == {g for g, t in texts.items() if "financial" in _tokens(t)}


@pytest.mark.parametrize("text", ["", "   ", "\t\n"])
def test_groups_search_empty_text_is_invalid(graph: Graph, text: str) -> None:
    with pytest.raises(InvalidInput):
        search_groups(graph, text=text)


@pytest.mark.parametrize(
    "text",
    ['AND OR "(', "AND", "NOT", "financial AND", "financial OR", "NOT financial", "a && b || !c"],
)
def test_groups_search_treats_lucene_operators_as_words(graph: Graph, text: str) -> None:
    """Operators an analyst types are words, never Lucene syntax: no error, and the words
    other than the operators still match what they match alone."""
    hits = search_groups(graph, text=text, limit=200)
    assert all(isinstance(h.score, float) for h in hits)
    if "financial" in text:
        alone = {h.group_id for h in search_groups(graph, text="financial", limit=200)}
        assert alone <= {h.group_id for h in hits}


def test_groups_search_punctuation_only_is_invalid(graph: Graph) -> None:
    with pytest.raises(InvalidInput):
        search_groups(graph, text='"(*)~')
