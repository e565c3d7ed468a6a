"""Actor intelligence: profiles, comparisons and similarity, answered from the graph."""

from __future__ import annotations

from collections import defaultdict
from itertools import combinations
from typing import Any

from pydantic import BaseModel, Field

from .cache import ACTOR_SCOPES, ATTACK, cached_answer
from .catalog import Q
from .errors import Conflict, InvalidInput, NotFound
from .graph import Graph
from .kinds import PathKind, path_kinds
from .resolve import Resolved, read_for_groups, resolve_group

MAX_ACTORS = 50
DOMAINS = ("enterprise-attack", "mobile-attack", "ics-attack")


# ---------------------------------------------------------------- models

_KIND_ORDER = {k: i for i, k in enumerate(PathKind)}


class Evidence(BaseModel):
    kind: PathKind = Field(description="direct, software (via software) or campaign")
    via_id: str | None = Field(None, description="the software or campaign it comes through")
    via_name: str | None = None
    procedure: str | None = Field(None, description="ATT&CK's procedure text")
    citations: list[str] = []
    citation_urls: list[str] = []


class TechniqueRef(BaseModel):
    technique_id: str
    name: str
    is_subtechnique: bool
    parent_id: str | None = None
    parent_name: str | None = None
    tactics: list[str] = Field(description="tactic shortnames, in matrix order")
    tactic_names: list[str] = []
    platforms: list[str] = []
    url: str | None = None


class ProfileTechnique(TechniqueRef):
    kinds: list[PathKind]
    evidence: list[Evidence]
    rolled_up_from: list[str] = Field([], description="sub-techniques merged into this parent")


class SoftwareUse(BaseModel):
    software_id: str
    name: str
    type: str
    kinds: list[str]
    campaigns: list[str]
    procedure: str | None = None


class CampaignInfo(BaseModel):
    campaign_id: str
    name: str
    first_seen: str | None = None
    last_seen: str | None = None
    attribution: str | None = None


class MitigationRank(BaseModel):
    mitigation_id: str
    name: str
    count: int = Field(description="how many of the techniques it addresses")
    techniques: list[str]
    url: str | None = None


class GroupRef(BaseModel):
    group_id: str
    name: str


class GroupProfile(BaseModel):
    group_id: str
    name: str
    aliases: list[str]
    description: str
    url: str | None
    resolved_note: str | None = None
    filters: dict[str, Any]
    technique_count: int
    techniques: list[ProfileTechnique]
    software: list[SoftwareUse]
    campaigns: list[CampaignInfo]
    mitigations: list[MitigationRank]


class GroupHit(BaseModel):
    group_id: str
    name: str
    aliases: list[str]
    score: float | None = Field(None, description="full-text score (searches only)")
    domains: list[str]
    description: str


class ComparedTechnique(TechniqueRef):
    count: int = Field(description="k: how many of the selected actors use it")
    of: int = Field(description="N: number of selected actors")
    actors: dict[str, list[PathKind]] = Field(description="group id -> how each uses it")


class PairOverlap(BaseModel):
    a: str
    b: str
    shared: int
    jaccard: float


class Comparison(BaseModel):
    actors: list[GroupRef]
    include_software: bool
    technique_counts: dict[str, int]
    common: list[str] = Field(description="techniques every selected actor uses")
    unique: dict[str, list[str]] = Field(description="techniques only that actor uses")
    techniques: list[ComparedTechnique]
    pairs: list[PairOverlap]
    jaccard_matrix: list[list[float]]
    shared_matrix: list[list[int]]


class SimilarGroup(BaseModel):
    group_id: str
    name: str
    jaccard: float
    shared: int
    technique_count: int
    shared_techniques: list[str]


class Similarity(BaseModel):
    group_id: str
    name: str
    include_software: bool
    technique_count: int
    compared_with: int
    similar: list[SimilarGroup]


# ---------------------------------------------------------------- helpers


def check_domain(domain: str | None) -> str | None:
    """``enterprise`` / ``enterprise-attack``... as the domain's full name; InvalidInput else."""
    if domain is None:
        return None
    d = domain if domain.endswith("-attack") else f"{domain}-attack"
    if d not in DOMAINS:
        raise InvalidInput(f"domain {domain!r}: use enterprise, mobile or ics")
    return d


def technique_details(graph: Graph, ids: list[str]) -> dict[str, dict[str, Any]]:
    rows = graph.read(Q.technique_details, technique_ids=sorted(set(ids)))
    return {r["technique_id"]: r for r in rows}


def _ref(details: dict[str, Any]) -> dict[str, Any]:
    return {
        "technique_id": details["technique_id"],
        "name": details["name"],
        "is_subtechnique": bool(details["is_subtechnique"]),
        "parent_id": details.get("parent_id"),
        "parent_name": details.get("parent_name"),
        "tactics": details.get("tactics") or [],
        "tactic_names": details.get("tactic_names") or [],
        "platforms": details.get("platforms") or [],
        "url": details.get("url"),
    }


def _tactic_matches(details: dict[str, Any], tactic: str) -> bool:
    t = tactic.strip().lower()
    names = [n.lower() for n in details.get("tactic_names") or []]
    shorts = [s.lower() for s in details.get("tactics") or []]
    return t in names or t in shorts or t.replace(" ", "-") in shorts


# ---------------------------------------------------------------- services


@cached_answer(scopes=[ATTACK])
def search_groups(graph: Graph, *, text: str, limit: int = 20) -> list[GroupHit]:
    """Groups ranked by a full-text match on name, aliases and description."""
    text = (text or "").strip()
    if not text:
        raise InvalidInput("search text is empty")
    if len(text) > 200:
        raise InvalidInput("search text longer than 200 characters")
    # Lucene syntax is not for analysts: search words, not operators.
    words = [w for w in "".join(c if c.isalnum() else " " for c in text).split() if w]
    if not words:
        raise InvalidInput(f"search text {text!r} has no words")
    # Lower case: AND / OR / NOT are Lucene operators only in upper case.
    lucene = " ".join(w.lower() for w in words)
    rows = graph.read(Q.groups_search, text=lucene, limit=limit)
    return [GroupHit(**r) for r in rows]


def list_groups(graph: Graph, *, limit: int = 1000) -> list[GroupHit]:
    """Every current group, by ATT&CK id."""
    return [GroupHit(**r) for r in graph.read(Q.groups_list, limit=limit)]


def profile_group(
    graph: Graph,
    *,
    group: str,
    kinds: list[PathKind] | None = None,
    platforms: list[str] | None = None,
    domain: str | None = None,
    tactic: str | None = None,
    rollup: bool = False,
    limit: int = 1000,
) -> GroupProfile:
    """Every technique a group is tied to and how we know, plus software, campaigns and the
    mitigations that address its techniques: :func:`profile_answer` as a model."""
    return GroupProfile.model_validate(
        profile_answer(
            graph,
            group=group,
            kinds=kinds,
            platforms=platforms,
            domain=domain,
            tactic=tactic,
            rollup=rollup,
            limit=limit,
        )
    )


@cached_answer(scopes=ACTOR_SCOPES)
def profile_answer(
    graph: Graph,
    *,
    group: str,
    kinds: list[PathKind] | None = None,
    platforms: list[str] | None = None,
    domain: str | None = None,
    tactic: str | None = None,
    rollup: bool = False,
    limit: int = 1000,
) -> dict[str, Any]:
    """A group's profile as JSON-ready data in the shape of :class:`GroupProfile` (fields in
    its order): what the API sends, serialised as it is (validating APT29's profile into
    models and dumping them took 2.3 ms, orjson on this data 0.2). One catalog query and
    :func:`shape_profile`."""
    kinds = kinds or list(PathKind)
    dom = check_domain(domain)
    (resolved,), rows = read_for_groups(
        graph,
        Q.profile_group,
        [group],
        kinds=[k.value for k in kinds],
        domain=dom,
        platforms=platforms or [],
        limit=limit,
    )
    row = next((r for r in rows if r["group_id"] == resolved.attack_id), None)
    if row is None:  # gone between the two reads (a cluster's source deleted meanwhile)
        raise NotFound(f"no group {resolved.attack_id!r}")
    return shape_profile(
        row, graph=graph, resolved=resolved, kinds=kinds, platforms=platforms, domain=dom,
        tactic=tactic, rollup=rollup, limit=limit,
    )  # fmt: skip


# The fields of profile_group's techniques and evidence rows, which it returns as lists.
TECHNIQUE_FIELDS = (
    "technique_id", "name", "is_subtechnique", "parent_id", "parent_name", "tactics",
    "tactic_names", "tactic_orders", "platforms", "url", "evidence", "mitigation_ids",
)  # fmt: skip
EVIDENCE_FIELDS = ("kind", "via_id", "via_name", "procedure", "citations", "citation_urls")


def shape_profile(
    row: dict[str, Any],
    *,
    graph: Graph,
    resolved: Resolved,
    kinds: list[PathKind],
    platforms: list[str] | None,
    domain: str | None,
    tactic: str | None,
    rollup: bool,
    limit: int,
) -> dict[str, Any]:
    """``profile_group``'s row as a profile's data: the tactic filter, the roll-up into parents
    (which reads the parents' details when the group does not use them itself) and the
    mitigations ranked by how many of the group's techniques they address."""
    details: dict[str, dict[str, Any]] = {}
    for fields in row["techniques"]:
        t = dict(zip(TECHNIQUE_FIELDS, fields, strict=True))
        t["evidence"] = [dict(zip(EVIDENCE_FIELDS, e, strict=True)) for e in t["evidence"]]
        details[t["technique_id"]] = t
    mitigation = {m["stix_id"]: m for m in row["mitigations"]}
    for t in details.values():
        if t["mitigation_ids"] is None:
            raise Conflict(
                "the graph's ATT&CK was loaded by an earlier ttpgraph (its techniques lack the "
                "mitigations a profile reads): load it again (ttpgraph load, as it was loaded)"
            )
        t["mitigations"] = [mitigation[m] for m in t["mitigation_ids"] if m in mitigation]
    evidence: dict[str, list[dict[str, Any]]] = {
        tid: t["evidence"] for tid, t in sorted(details.items())
    }
    if tactic:
        check_tactic(graph, tactic, domain=domain)
        evidence = {t: ev for t, ev in evidence.items() if _tactic_matches(details[t], tactic)}
    own_ids = list(evidence)  # the group's own techniques, before any roll-up
    rolled: dict[str, list[str]] = defaultdict(list)
    if rollup:
        merged: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for tid, ev in evidence.items():
            parent = details[tid].get("parent_id") or tid
            merged[parent].extend(ev)
            if parent != tid:
                rolled[parent].append(tid)
        missing = [p for p in merged if p not in details]
        if missing:
            details.update(technique_details(graph, missing))
        evidence = merged
    techniques = [
        {
            **_ref(details[tid]),
            "kinds": sorted({e["kind"] for e in evidence[tid]}, key=_KIND_ORDER.__getitem__),
            "evidence": evidence[tid],
            "rolled_up_from": sorted(rolled.get(tid, [])),
        }
        for tid in sorted(evidence, key=lambda t: _sort_key(details[t]))[:limit]
    ]
    return {
        "group_id": row["group_id"],
        "name": row["name"],
        "aliases": row["aliases"] or [],
        "description": row["description"] or "",
        "url": row["url"],
        "resolved_note": resolved.note,
        "filters": {
            "kinds": [k.value for k in kinds],
            "platforms": platforms or [],
            "domain": domain,
            "tactic": tactic,
            "rollup": rollup,
        },
        "technique_count": len(techniques),
        "techniques": techniques,
        "software": [fields_of(SoftwareUse, r) for r in row["software"]],
        "campaigns": [fields_of(CampaignInfo, r) for r in row["campaigns"]],
        "mitigations": rank_mitigations(details, own_ids, limit=limit),
    }


def fields_of(model: type[BaseModel], row: dict[str, Any]) -> dict[str, Any]:
    """A query's map as ``model``'s data, its fields in the model's order (a map from Neo4j
    comes in no set order)."""
    return {name: row[name] for name in model.model_fields}


def check_tactic(graph: Graph, tactic: str, *, domain: str | None = None) -> None:
    """InvalidInput unless ``tactic`` (shortname or name) is a tactic of the loaded releases
    (of ``domain`` when given); a tactic a later release renamed, split or merged is said so,
    with where it went (from the history the loads recorded on the tactics)."""
    wanted = tactic.strip().lower()
    known = [r for r in graph.read(Q.tactic_names) if domain is None or r["domain"] == domain]
    if any(wanted in (r["shortname"].lower(), r["name"].lower()) for r in known):
        return
    renamed = [r for r in known if wanted in (x.lower() for x in r["former"])]
    took = [r for r in known if wanted in (x.lower() for x in r["took_from"])]
    heirs = {r["tactic_id"]: r for r in renamed + took}
    where = " and ".join(f"{r['shortname']} ({r['tactic_id']})" for r in heirs.values())
    domains = {r["domain"] for r in heirs.values()}
    versions = sorted(
        f"{r['domain']} {r['version']}"
        for r in (graph.read(Q.releases, limit=10) if heirs else [])
        if r["domain"] in domains and r["version"]
    )
    what = "the loaded releases" if not versions else ", ".join(versions)
    if len(heirs) > 1:
        how = f"; it was split into {where}"
    elif renamed:
        how = f"; it was renamed {where}"
    elif took:
        how = f"; it was merged into {where}"
    else:
        how = ""
    raise InvalidInput(
        f"{tactic.strip()} is not a tactic of {what}{how}",
        suggestions=[r["shortname"] for r in heirs.values()]
        or sorted({r["shortname"] for r in known}),
    )


def rank_mitigations(
    details: dict[str, dict[str, Any]], technique_ids: list[str], *, limit: int
) -> list[dict[str, Any]]:
    """Mitigations addressing any of ``technique_ids``, ranked by how many they address (as
    :class:`MitigationRank` data)."""
    found: dict[str, tuple[dict[str, Any], set[str]]] = {}
    for tid in technique_ids:
        for m in details[tid]["mitigations"]:
            found.setdefault(m["mitigation_id"], (m, set()))[1].add(tid)
    ranked = sorted(found.items(), key=lambda kv: (-len(kv[1][1]), kv[0] or ""))
    return [
        {
            "mitigation_id": mid,
            "name": m["name"],
            "count": len(ts),
            "techniques": sorted(ts),
            "url": m["url"],
        }
        for mid, (m, ts) in ranked[:limit]
    ]


def _sort_key(details: dict[str, Any]) -> tuple[int, str]:
    orders = [o for o in details.get("tactic_orders") or [] if o is not None]
    return (min(orders) if orders else 99, details["technique_id"])


def group_technique_sets(
    graph: Graph,
    group_ids: list[str],
    *,
    include_software: bool = False,
    domain: str | None = None,
) -> dict[str, tuple[str, dict[str, list[str]]]]:
    """group id -> (name, technique id -> path kinds). Empty ``group_ids``: every group."""
    rows = graph.read(
        Q.group_technique_sets,
        group_ids=group_ids,
        kinds=path_kinds(include_software),
        domain=check_domain(domain),
    )
    return {
        r["group_id"]: (r["name"], {t["technique_id"]: t["kinds"] for t in r["techniques"]})
        for r in rows
    }


def jaccard(a: set[str], b: set[str]) -> float:
    union = len(a | b)
    return len(a & b) / union if union else 0.0


@cached_answer(scopes=ACTOR_SCOPES)
def compare_groups(
    graph: Graph,
    *,
    groups: list[str],
    include_software: bool = False,
    domain: str | None = None,
) -> Comparison:
    """Common to all, unique to each, k-of-N per technique, pairwise overlap and Jaccard."""
    if len(groups) < 2:
        raise InvalidInput("compare needs at least 2 actors")
    if len(groups) > MAX_ACTORS:
        raise InvalidInput(f"compare takes at most {MAX_ACTORS} actors, got {len(groups)}")
    dom = check_domain(domain)
    resolved, rows = read_for_groups(
        graph, Q.compare_groups, groups, kinds=path_kinds(include_software), domain=dom
    )
    ids = list(dict.fromkeys(r.attack_id for r in resolved))
    if len(ids) < 2:
        raise InvalidInput(f"the actors given are all the same group ({ids[0]})")
    names = {r.attack_id: r.name for r in resolved}
    row = rows[0]
    found = {
        r["group_id"]: {t["technique_id"]: t["kinds"] for t in r["techniques"]}
        for r in row["groups"]
    }
    kinds = {g: found.get(g, {}) for g in ids}
    sets = {g: set(k) for g, k in kinds.items()}
    all_t = set().union(*sets.values())
    details = {d["technique_id"]: d for d in row["details"]}
    common = set.intersection(*sets.values())
    unique = {
        g: sorted(s - set().union(*(sets[o] for o in ids if o != g))) for g, s in sets.items()
    }
    techniques = [
        ComparedTechnique.model_construct(
            **_ref(details[t]),
            count=sum(1 for g in ids if t in sets[g]),
            of=len(ids),
            actors={g: [PathKind(k) for k in sorted(kinds[g][t])] for g in ids if t in sets[g]},
        )
        for t in all_t
        if t in details
    ]
    techniques.sort(key=lambda c: (-c.count, _sort_key(details[c.technique_id])))
    pairs = [
        PairOverlap(
            a=a, b=b, shared=len(sets[a] & sets[b]), jaccard=round(jaccard(sets[a], sets[b]), 4)
        )
        for a, b in combinations(ids, 2)
    ]
    return Comparison(
        actors=[GroupRef(group_id=g, name=names[g]) for g in ids],
        include_software=include_software,
        technique_counts={g: len(sets[g]) for g in ids},
        common=sorted(common),
        unique=unique,
        techniques=techniques,
        pairs=pairs,
        jaccard_matrix=[[round(jaccard(sets[a], sets[b]), 4) for b in ids] for a in ids],
        shared_matrix=[[len(sets[a] & sets[b]) for b in ids] for a in ids],
    )


@cached_answer(scopes=ACTOR_SCOPES)
def similar_groups(
    graph: Graph,
    *,
    group: str,
    include_software: bool = False,
    domain: str | None = None,
    limit: int = 10,
) -> Similarity:
    """Groups most similar to one group (Jaccard over technique sets), over every group."""
    resolved = resolve_group(graph, group)
    gid = resolved.attack_id
    dom = check_domain(domain)
    # Over every domain, the ids each load stores on the groups (the same query's answer);
    # for one domain, or on a graph loaded before they were stored, the paths themselves.
    stored = Q.group_technique_ids_stored
    rows = [] if dom else graph.read(stored, include_software=include_software)
    if not rows or any(r["techniques"] is None for r in rows):
        rows = graph.read(
            Q.group_technique_ids, group_ids=[], kinds=path_kinds(include_software), domain=dom
        )
    sets_by_group = {r["group_id"]: (r["name"], r["techniques"]) for r in rows if r["techniques"]}
    mine = set(sets_by_group.get(gid, (resolved.name, []))[1])
    scored = []  # (jaccard, shared, other, name, its set): models for the first `limit` only
    for other, (name, techs) in sets_by_group.items():
        theirs = set(techs)
        shared = len(mine & theirs)
        if other != gid and shared:
            scored.append((round(jaccard(mine, theirs), 4), shared, other, name, theirs))
    scored.sort(key=lambda x: (-x[0], -x[1], x[2]))
    ranked = [
        SimilarGroup(
            group_id=other,
            name=name,
            jaccard=score,
            shared=shared,
            technique_count=len(theirs),
            shared_techniques=sorted(mine & theirs),
        )
        for score, shared, other, name, theirs in scored[:limit]
    ]
    return Similarity(
        group_id=gid,
        name=resolved.name,
        include_software=include_software,
        technique_count=len(mine),
        compared_with=len(sets_by_group) - (1 if gid in sets_by_group else 0),
        similar=ranked,
    )
