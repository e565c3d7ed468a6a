"""The organisation's own intelligence, answered from the graph.

- **Who fits this incident?** ATT&CK groups and the organisation's clusters ranked by how well
  their techniques match the observed ones: the cosine similarity of technique vectors weighted
  by rarity (IDF: a technique few actors use says more than one everybody uses), with the shared
  and missing techniques and the evidence for each shared one.
- **The recall check**: hide a group, give a random (seeded) part of its techniques, see where
  it ranks.
- **What does this IOC tell me?** From indicators and observables to the techniques, software,
  campaigns, clusters and groups they are linked to, as graph paths.
- **What should we expect next?** For a matched actor, its techniques not observed yet, in
  matrix (tactic) order, with whether the organisation's detection inventories cover them.

Imports live in :mod:`loader.intel`; this module reads only.
"""

from __future__ import annotations

import difflib
import math
import random
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, Field

from .actors import (
    PathKind,
    check_domain,
    group_technique_sets,
    path_kinds,
    technique_details,
)
from .cache import cached_answer
from .catalog import Q
from .errors import InvalidInput, NotFound
from .graph import Graph, neo4j_errors
from .resolve import TECHNIQUE_ID, Resolved, norm, resolve, resolve_group

ActorKind = Literal["attack-group", "org-cluster"]
CLUSTER_ID = re.compile(r"^(intrusion-set|threat-actor)--[0-9a-f-]{36}$", re.I)
MAX_OBSERVED = 500
# Well-known groups with many techniques: the default set of the recall check.
RECALL_GROUPS = (
    "G0016", "G0007", "G0032", "G0046", "G0096", "G0010", "G0034", "G0049", "G0094", "G0069",
    "G0102", "G0022", "G0050", "G0045", "G0059", "G0027", "G0006", "G0035", "G0064", "G0080",
)  # fmt: skip
METHOD = (
    "score = sqrt(similarity * coverage): similarity = cosine similarity of IDF-weighted "
    "technique sets, sum over shared techniques of w(t)^2 / (|observed|_w * |actor|_w), "
    "w(t) = ln((1 + N) / (1 + n(t))) + 1 where N is the number of actors compared and n(t) how "
    "many of them use t; coverage = the weighted share of the observed techniques the actor is "
    "known to use (sum of w(t) over shared / over observed). An actor that explains every "
    "observed technique outranks one that explains a third, all else equal"
)


# ---------------------------------------------------------------- models


class ImportResult(BaseModel):
    source: str = Field(description="the import's label; importing it again replaces it")
    flavour: str = Field(description="opencti, workbench, misp, stix, misp-json or incident")
    file: str | None = None
    sha256: str | None = None
    replaced: bool = Field(description="an earlier import of the same source was replaced")
    nodes: dict[str, int] = Field(description="nodes written per label")
    relationships: dict[str, int] = Field(description="relationships written per type")
    same_as: int = Field(0, description="SAME_AS links made to ATT&CK objects (on request)")
    skipped: dict[str, int] = Field(description="objects and references not imported, and why")
    warnings: list[str]
    seconds: float


class IntelSource(BaseModel):
    source: str
    flavour: str | None = None
    file: str | None = None
    sha256: str | None = None
    imported_at: str | None = None
    nodes: int | None = None
    relationships: int | None = None
    counts: dict[str, int] = {}
    warnings: list[str] = []


class IncidentSummary(BaseModel):
    stix_id: str
    name: str
    source: str
    kind: str = Field(description="incident or report")
    date: str | None = None
    techniques: int
    iocs: int
    imported_at: str | None = None


class ObservedTechnique(BaseModel):
    technique_id: str
    name: str
    tactics: list[str] = []
    weight: float = Field(description="rarity weight (IDF) over the actors compared")
    actors_using: int = Field(description="how many of the actors compared use it")


class TechniqueEvidence(BaseModel):
    kind: str = Field(description="direct, software or campaign")
    via_id: str | None = None
    via_name: str | None = None
    procedure: str | None = None
    technique_id: str | None = Field(None, description="the sub-technique, when rolled up")
    citations: list[str] = []
    citation_urls: list[str] = []
    source: str | None = Field(None, description="the organisation's import it came from")


class SharedTechnique(BaseModel):
    technique_id: str
    name: str
    weight: float
    kinds: list[str]
    evidence: list[TechniqueEvidence] = []


class ActorMatch(BaseModel):
    rank: int
    actor_id: str = Field(description="ATT&CK id (G0016) or the cluster's STIX id")
    name: str
    kind: ActorKind
    sources: list[str] = Field([], description="imports that hold the cluster")
    score: float = Field(description="sqrt(similarity * coverage), 0..1: what ranks")
    similarity: float = Field(description="IDF-weighted cosine similarity of the two sets, 0..1")
    coverage: float = Field(description="weighted share of the observed techniques it uses, 0..1")
    shared: int
    missing: int = Field(description="observed techniques it is not known to use")
    technique_count: int
    unobserved: int = Field(description="its techniques not observed (what may come next)")
    shared_techniques: list[SharedTechnique]
    missing_techniques: list[str]
    same_as: list[str] = Field([], description="SAME_AS links: ATT&CK groups or clusters")


class Attribution(BaseModel):
    observed: list[ObservedTechnique]
    incident: str | None = None
    notes: list[str] = []
    domain: str | None
    include_software: bool
    include_org: bool
    rollup: bool
    actors_compared: int
    unused: list[str] = Field(description="observed techniques no compared actor uses")
    method: str
    candidates: list[ActorMatch]


class RecallGroup(BaseModel):
    group_id: str
    name: str
    technique_count: int
    sample_size: int
    trials: int
    hits: int
    rate: float
    ranks: list[int]
    median_rank: float


class RecallReport(BaseModel):
    fraction: float
    noise: int
    top: int
    trials: int
    seed: int
    domain: str | None
    include_software: bool
    actors_compared: int
    hits: int
    total: int
    rate: float
    groups: list[RecallGroup]


class IocMatch(BaseModel):
    label: str
    stix_id: str
    stix_type: str | None = None
    name: str | None = None
    value: str | None = None
    pattern: str | None = None
    source: str
    score: float | None = None
    valid_from: str | None = None
    valid_until: str | None = None
    description: str | None = None
    revoked: bool = False


class PathNode(BaseModel):
    label: str | None
    id: str
    name: str | None = None
    source: str | None = None


class PathRelationship(BaseModel):
    type: str
    forward: bool = Field(description="points from the node before it to the node after it")


class IocPath(BaseModel):
    nodes: list[PathNode]
    relationships: list[PathRelationship]

    def text(self) -> str:
        out = _node_text(self.nodes[0])
        for rel, node in zip(self.relationships, self.nodes[1:], strict=False):
            arrow = f"-[{rel.type}]->" if rel.forward else f"<-[{rel.type}]-"
            out += f" {arrow} {_node_text(node)}"
        return out


class LinkedObject(BaseModel):
    label: str
    id: str
    name: str | None = None
    source: str | None = Field(None, description="the import, for the organisation's objects")
    hops: int = Field(description="length of the shortest path from the IOC")
    via: str = Field(description="that path, as text")
    tactics: list[str] = []


class IocAnswer(BaseModel):
    value: str
    matches: list[IocMatch]
    techniques: list[LinkedObject]
    software: list[LinkedObject]
    campaigns: list[LinkedObject]
    actors: list[LinkedObject] = Field(description="ATT&CK groups and the organisation's clusters")
    reports: list[LinkedObject] = Field(description="reports and incidents that mention it")
    sightings: list[LinkedObject]
    paths: list[IocPath]


class ExpectedTechnique(BaseModel):
    technique_id: str
    name: str
    tactics: list[str]
    tactic_names: list[str] = []
    tactic_order: int | None = Field(None, description="matrix column of its first tactic")
    kinds: list[str] = Field(description="how the actor is tied to it")
    detectable: bool | None = Field(
        None, description="a rule of the inventories covers it (None: no inventory imported)"
    )
    partial: bool = Field(False, description="covered only through a parent or sub-technique")
    rules: list[str] = Field([], description="inventory: rule name")


class TacticBucket(BaseModel):
    tactic: str
    name: str
    order: int | None
    techniques: list[str]
    detectable: int
    undetected: int


class Expectation(BaseModel):
    actor_id: str
    name: str
    kind: ActorKind
    resolved_note: str | None = None
    observed: list[str]
    observed_used: list[str] = Field(description="observed techniques the actor is known to use")
    include_software: bool
    domain: str | None
    inventories: list[str] = Field(description="detection inventories consulted")
    detection: str = Field(description="how the detection flag was computed, or why not")
    expected: list[ExpectedTechnique]
    by_tactic: list[TacticBucket]


# ---------------------------------------------------------------- reading


def read_quietly(graph: Graph, query: str, **params: Any) -> list[dict[str, Any]]:
    """``graph.read`` without Neo4j's "label / relationship type / property does not exist"
    notifications: the organisation's labels (OrgCluster, Indicator...) exist only once
    something was imported, and a question naming them before that simply finds nothing -
    not worth a warning on every call."""
    import neo4j

    def work(tx: neo4j.ManagedTransaction) -> list[dict[str, Any]]:
        return [r.data() for r in tx.run(query, params)]

    if graph.timeout:
        work = neo4j.unit_of_work(timeout=graph.timeout)(work)
    with (
        neo4j_errors(),
        graph.driver.session(
            database=graph.database,
            default_access_mode=neo4j.READ_ACCESS,
            notifications_disabled_classifications=["UNRECOGNIZED"],
        ) as session,
    ):
        return session.execute_read(work)


# ---------------------------------------------------------------- resolution


def split_ids(values: Iterable[str] | str | None) -> list[str]:
    """``T1059.001,T1566.001 T1105`` (commas, spaces, repeated options) -> a list."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    out: list[str] = []
    for v in values:
        out.extend(p for p in re.split(r"[,;\s]+", v or "") if p)
    return out


def resolve_techniques(graph: Graph, texts: list[str]) -> list[Resolved]:
    """Technique ids or names (one query); a revoked id resolves to its replacement, with a
    note. Unknown: NotFound naming it; deprecated without replacement: InvalidInput."""
    if len(texts) > MAX_OBSERVED:
        raise InvalidInput(f"at most {MAX_OBSERVED} techniques, got {len(texts)}")
    if texts and all(isinstance(t, str) and TECHNIQUE_ID.match(t.strip()) for t in texts):
        fast = _resolve_ids(graph, [t.strip().upper() for t in texts])
        if fast is not None:
            return fast
    rows = read_quietly(graph, Q.technique_candidates, include_retired=True)
    by_id = {r["attack_id"]: r for r in rows if r["attack_id"]}
    out: dict[str, Resolved] = {}
    for text in texts:
        r = resolve(rows, text, kind="technique", id_pattern=TECHNIQUE_ID)
        row = by_id.get(r.attack_id) or {}
        if row.get("deprecated") or (row.get("revoked") and r.matched != "replacement"):
            raise InvalidInput(f"technique {r.attack_id} is retired in ATT&CK (no replacement)")
        out.setdefault(r.attack_id, r)
    return list(out.values())


def _resolve_ids(graph: Graph, ids: list[str]) -> list[Resolved] | None:
    """ATT&CK technique ids looked up directly (one small query); None when one is unknown or
    retired, so the caller takes the full path (close matches, the error message)."""
    rows = read_quietly(graph, Q.intel_attack_lookup, stix_ids=[], attack_ids=ids)
    found = {r["attack_id"]: r for r in rows if r["kind"] == "Technique"}
    out: dict[str, Resolved] = {}
    for tid in ids:
        r = found.get(tid)
        if r is None or r["deprecated"] or (r["revoked"] and not r["replaced_by"]):
            return None
        if r["revoked"]:
            note = f"{tid} was revoked; replaced by {r['new_attack_id']}"
            out.setdefault(r["new_attack_id"], Resolved(r["new_attack_id"], r["new_name"],
                                                        "replacement", note))  # fmt: skip
        else:
            out.setdefault(tid, Resolved(tid, r["name"], "id"))
    return list(out.values())


def _cluster_rows(graph: Graph) -> list[dict[str, Any]]:
    return read_quietly(graph, Q.intel_cluster_candidates, include_retired=False)


def _match_clusters(rows: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    wanted = norm(text)
    by_id = [r for r in rows if r["stix_id"].lower() == wanted]
    if by_id:
        return by_id
    for field in ("name", "aliases", "external_id"):
        hits = [
            r
            for r in rows
            if (field == "aliases" and any(norm(a) == wanted for a in r["aliases"]))
            or (field != "aliases" and r[field] and norm(r[field]) == wanted)
        ]
        if hits:
            return hits
    return []


def resolve_cluster(graph: Graph, text: str) -> Resolved:
    """One of the organisation's clusters by STIX id, name, alias or its own external id.
    ``attack_id`` of the answer is the cluster's STIX id."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("empty cluster name")
    rows = _cluster_rows(graph)
    hits = _match_clusters(rows, text)
    ids = sorted({r["stix_id"] for r in hits})
    if len(ids) > 1:
        raise InvalidInput(
            f"ambiguous: cluster {text!r} matches {len(ids)} clusters; use a STIX id",
            suggestions=[f"{r['stix_id']} ({r['name']}, {r['source']})" for r in hits],
        )
    if not ids:
        names = {norm(n): r["name"] for r in rows for n in [r["name"], *r["aliases"]]}
        close = difflib.get_close_matches(norm(text), list(names), n=5, cutoff=0.6)
        raise NotFound(
            f"no cluster of the organisation named {text!r}",
            suggestions=list(dict.fromkeys(names[c] for c in close)),
        )
    sources = sorted({r["source"] for r in hits})
    return Resolved(
        ids[0], hits[0]["name"], "cluster", f"the organisation's cluster ({', '.join(sources)})"
    )


def resolve_cluster_keys(graph: Graph, text: str) -> tuple[list[str], str]:
    """Keys of every copy of a cluster (one per import holding it) and its name."""
    r = resolve_cluster(graph, text)
    keys = [row["key"] for row in _cluster_rows(graph) if row["stix_id"] == r.attack_id]
    return keys, r.name


def resolve_actor(graph: Graph, text: str) -> tuple[Resolved, ActorKind]:
    """An ATT&CK group (id, name, alias) or, failing that, one of the organisation's clusters."""
    if isinstance(text, str) and CLUSTER_ID.match(text.strip()):
        return resolve_cluster(graph, text.strip()), "org-cluster"
    try:
        r = resolve_group(graph, text)
    except NotFound as first:
        try:
            return resolve_cluster(graph, text), "org-cluster"
        except NotFound:
            raise first from None
    if CLUSTER_ID.match(r.attack_id):  # resolve_group that knows clusters
        return r, "org-cluster"
    return r, "attack-group"


# ---------------------------------------------------------------- technique sets


TechniqueSets = dict[str, tuple[str, dict[str, list[str]]]]


def cluster_technique_sets(
    graph: Graph,
    cluster_ids: list[str],
    *,
    include_software: bool = False,
    domain: str | None = None,
) -> dict[str, tuple[str, dict[str, list[str]], list[str]]]:
    """cluster STIX id -> (name, technique id -> path kinds, sources). Empty list: every one."""
    rows = read_quietly(
        graph,
        Q.intel_cluster_technique_sets,
        cluster_ids=cluster_ids,
        kinds=path_kinds(include_software),
        domain=domain,
    )
    return {
        r["cluster_id"]: (
            r["name"],
            {t["technique_id"]: t["kinds"] for t in r["techniques"]},
            r["sources"],
        )
        for r in rows
    }


def _parent(tid: str) -> str:
    return tid.split(".", 1)[0]


def _rolled(techs: dict[str, list[str]]) -> dict[str, list[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for t, kinds in techs.items():
        out[_parent(t)].update(kinds)
    return {t: sorted(k, key=_kind_order) for t, k in out.items()}


def _kind_order(kind: str) -> int:
    order = [k.value for k in PathKind]
    return order.index(kind) if kind in order else len(order)


class _Pool:
    """Technique sets of the actors compared, with IDF weights."""

    def __init__(
        self,
        actors: dict[str, tuple[str, ActorKind, dict[str, list[str]]]],
        originals: dict[str, set[str]] | None = None,
    ):
        self.actors = {a: v for a, v in actors.items() if v[2]}
        # before any roll-up to parents: the ids the evidence is recorded under
        self.originals = originals or {a: set(v[2]) for a, v in self.actors.items()}
        self.df: Counter[str] = Counter(t for _, _, techs in self.actors.values() for t in techs)
        self.n = len(self.actors)
        self._w = {t: math.log((1 + self.n) / (1 + df)) + 1 for t, df in self.df.items()}
        self._unused = math.log(1 + self.n) + 1
        self.norm = {
            a: math.sqrt(sum(self._w[t] ** 2 for t in techs))
            for a, (_, _, techs) in self.actors.items()
        }
        # technique -> actors using it, so a score only visits actors sharing something
        self.users: dict[str, list[str]] = defaultdict(list)
        for a, (_, _, techs) in self.actors.items():
            for t in techs:
                self.users[t].append(a)

    def weight(self, technique_id: str) -> float:
        """IDF: ln((1 + N) / (1 + n(t))) + 1."""
        return self._w.get(technique_id, self._unused)

    def score_parts(self, observed: set[str]) -> dict[str, tuple[float, float, float]]:
        """Actor -> (score, similarity, coverage) against the observed set (actors sharing
        nothing are left out): similarity is the IDF-weighted cosine, coverage the weighted
        share of the observed techniques the actor uses, score their geometric mean, so that
        explaining more of what was observed counts as much as resembling it."""
        o_norm = math.sqrt(sum(self.weight(t) ** 2 for t in observed))
        o_sum = sum(self.weight(t) for t in observed)
        if not o_norm:
            return {}
        dots: dict[str, float] = defaultdict(float)
        sums: dict[str, float] = defaultdict(float)
        for t in observed:
            w = self.weight(t)
            for a in self.users.get(t, ()):
                dots[a] += w * w
                sums[a] += w
        out = {}
        for a, dot in dots.items():
            similarity, coverage = dot / (o_norm * self.norm[a]), sums[a] / o_sum
            out[a] = (math.sqrt(similarity * coverage), similarity, coverage)
        return out

    def scores(self, observed: set[str]) -> dict[str, float]:
        """Actor -> score (see :meth:`score_parts`)."""
        return {a: parts[0] for a, parts in self.score_parts(observed).items()}


def _pool(
    graph: Graph,
    *,
    include_software: bool,
    domain: str | None,
    include_org: bool,
    rollup: bool,
) -> tuple[_Pool, dict[str, list[str]]]:
    """Every actor's technique set with IDF weights; computed once per graph version (the
    answer cache), since every attribution over the same options compares the same actors."""
    args = {"include_software": include_software, "domain": domain,
            "include_org": include_org, "rollup": rollup}  # fmt: skip
    return graph.cached(
        "intel._pool",
        args,
        lambda: _build_pool(
            graph,
            include_software=include_software,
            domain=domain,
            include_org=include_org,
            rollup=rollup,
        ),
    )


def _build_pool(
    graph: Graph,
    *,
    include_software: bool,
    domain: str | None,
    include_org: bool,
    rollup: bool,
) -> tuple[_Pool, dict[str, list[str]]]:
    actors: dict[str, tuple[str, ActorKind, dict[str, list[str]]]] = {}
    originals: dict[str, set[str]] = {}
    sources: dict[str, list[str]] = {}
    for gid, (name, techs) in group_technique_sets(
        graph, [], include_software=include_software, domain=domain
    ).items():
        if CLUSTER_ID.match(gid):  # a group_technique_sets that already includes clusters
            continue
        actors[gid] = (name, "attack-group", _rolled(techs) if rollup else techs)
        originals[gid] = set(techs)
    if include_org:
        for cid, (name, techs, srcs) in cluster_technique_sets(
            graph, [], include_software=include_software, domain=domain
        ).items():
            actors[cid] = (name, "org-cluster", _rolled(techs) if rollup else techs)
            originals[cid] = set(techs)
            sources[cid] = srcs
    return _Pool(actors, originals), sources


# ---------------------------------------------------------------- observed sets


def _observed(
    graph: Graph, techniques: list[str] | None, incident: str | None
) -> tuple[list[str], str | None, list[str]]:
    """(technique ids, incident name, notes) from a list or an incident/report name."""
    if techniques and incident:
        raise InvalidInput("give observed techniques or an incident, not both")
    if incident:
        rows = read_quietly(graph, Q.intel_incident_techniques, name=incident.strip())
        if not rows:
            known = [r["name"] for r in read_quietly(graph, Q.intel_incidents, limit=1000)]
            close = difflib.get_close_matches(incident, known, n=5, cutoff=0.5)
            raise NotFound(f"no incident or report named {incident!r}", suggestions=close)
        if len({r["stix_id"] for r in rows}) > 1:
            raise InvalidInput(
                f"ambiguous: {incident!r} names {len(rows)} incidents or reports; use a STIX id",
                suggestions=[f"{r['stix_id']} ({r['source']})" for r in rows],
            )
        ids = sorted({t for r in rows for t in r["techniques"]})
        if not ids:
            raise InvalidInput(f"{rows[0]['kind']} {rows[0]['name']!r} names no ATT&CK technique")
        return ids, rows[0]["name"], []
    texts = split_ids(techniques)
    if not texts:
        raise InvalidInput("give at least one observed technique (or an incident)")
    resolved = resolve_techniques(graph, texts)
    return [r.attack_id for r in resolved], None, [r.note for r in resolved if r.note]


def _auto_domain(details: dict[str, dict[str, Any]]) -> str | None:
    common: set[str] | None = None
    for d in details.values():
        doms = set(d.get("domains") or [])
        common = doms if common is None else common & doms
    return next(iter(common)) if common and len(common) == 1 else None


# ---------------------------------------------------------------- who fits


@cached_answer
def attribute(
    graph: Graph,
    *,
    techniques: list[str] | None = None,
    incident: str | None = None,
    include_software: bool = False,
    include_org: bool = True,
    domain: str | None = None,
    rollup: bool = False,
    limit: int = 10,
) -> Attribution:
    """Who fits the observed techniques: ATT&CK groups and the organisation's clusters ranked
    by the geometric mean of IDF-weighted cosine similarity and weighted coverage of the
    observation (both shown), with shared/missing techniques and evidence.

    ``domain``: enterprise, mobile or ics; default: the one domain every observed technique
    belongs to (all loaded domains when they differ)."""
    if not 1 <= limit <= 200:
        raise InvalidInput("limit must be between 1 and 200")
    ids, inc_name, notes = _observed(graph, techniques, incident)
    details = technique_details(graph, ids)
    dom = check_domain(domain) if domain else _auto_domain(details)
    pool, sources = _pool(
        graph, include_software=include_software, domain=dom, include_org=include_org,
        rollup=rollup,
    )  # fmt: skip
    observed = {(_parent(t) if rollup else t) for t in ids}
    if rollup:
        missing_parents = [t for t in observed if t not in details]
        if missing_parents:
            details.update(technique_details(graph, missing_parents))
    parts = pool.score_parts(observed)
    ranked = sorted(parts, key=lambda a: (-parts[a][0], a))[:limit]
    same_as = _same_as(graph, include_org)
    candidates = []
    shared_by = {a: sorted(observed & set(pool.actors[a][2])) for a in ranked}
    evidence_by = _evidence(graph, pool, shared_by, dom, rollup)
    for rank, a in enumerate(ranked, 1):
        name, kind, techs = pool.actors[a]
        shared = shared_by[a]
        evidence = evidence_by.get(a, {})
        candidates.append(
            ActorMatch(
                rank=rank,
                actor_id=a,
                name=name,
                kind=kind,
                sources=sources.get(a, []),
                score=round(parts[a][0], 4),
                similarity=round(parts[a][1], 4),
                coverage=round(parts[a][2], 4),
                shared=len(shared),
                missing=len(observed) - len(shared),
                technique_count=len(techs),
                unobserved=len(set(techs) - observed),
                shared_techniques=[
                    SharedTechnique(
                        technique_id=t,
                        name=_tname(details, t),
                        weight=round(pool.weight(t), 4),
                        kinds=techs[t],
                        evidence=evidence.get(t, []),
                    )
                    for t in sorted(shared, key=lambda t: (-pool.weight(t), t))
                ],
                missing_techniques=sorted(observed - set(techs)),
                same_as=same_as.get(a, []),
            )
        )
    return Attribution(
        observed=[
            ObservedTechnique(
                technique_id=t,
                name=_tname(details, t),
                tactics=(details.get(t) or {}).get("tactics") or [],
                weight=round(pool.weight(t), 4),
                actors_using=pool.df.get(t, 0),
            )
            for t in sorted(observed, key=lambda t: (-pool.weight(t), t))
        ],
        incident=inc_name,
        notes=notes,
        domain=dom,
        include_software=include_software,
        include_org=include_org,
        rollup=rollup,
        actors_compared=pool.n,
        unused=sorted(t for t in observed if not pool.df.get(t)),
        method=METHOD,
        candidates=candidates,
    )


def _tname(details: dict[str, dict[str, Any]], tid: str) -> str:
    d = details.get(tid) or {}
    if d.get("parent_name"):
        return f"{d['parent_name']}: {d['name']}"
    return d.get("name") or tid


def _same_as(graph: Graph, include_org: bool) -> dict[str, list[str]]:
    if not include_org:
        return {}
    out: dict[str, list[str]] = defaultdict(list)
    for r in _cluster_rows(graph):
        for g in r["same_as"]:
            if g not in out[r["stix_id"]]:
                out[r["stix_id"]].append(g)
            if r["stix_id"] not in out[g]:
                out[g].append(r["stix_id"])
    return out


def _evidence(
    graph: Graph,
    pool: _Pool,
    shared: dict[str, list[str]],
    domain: str | None,
    rollup: bool,
) -> dict[str, dict[str, list[TechniqueEvidence]]]:
    """actor -> shared technique -> how the actor is tied to it (one query for all)."""
    wanted = {a: set(ts) for a, ts in shared.items() if ts}
    if not wanted:
        return {}
    tids = sorted(
        {t for a, ts in wanted.items() for t in pool.originals.get(a, ts)
         if (_parent(t) if rollup else t) in ts}
    )  # fmt: skip
    rows = read_quietly(
        graph,
        Q.intel_actor_evidence,
        group_ids=[a for a in wanted if pool.actors[a][1] == "attack-group"],
        cluster_ids=[a for a in wanted if pool.actors[a][1] == "org-cluster"],
        technique_ids=tids,
        domain=domain,
    )
    out: dict[str, dict[str, list[TechniqueEvidence]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        key = _parent(r["technique_id"]) if rollup else r["technique_id"]
        if key not in wanted.get(r["actor"], ()):
            continue
        ev = TechniqueEvidence(
            kind=r["kind"],
            via_id=r.get("via_id"),
            via_name=r.get("via_name"),
            procedure=r.get("procedure"),
            technique_id=r["technique_id"] if r["technique_id"] != key else None,
            citations=r.get("citations") or [],
            citation_urls=r.get("citation_urls") or [],
            source=r.get("source"),
        )
        if ev not in out[r["actor"]][key]:
            out[r["actor"]][key].append(ev)
    return out


# ---------------------------------------------------------------- the recall check


def attribution_recall(
    graph: Graph,
    *,
    groups: list[str] | None = None,
    trials: int = 20,
    fraction: float = 0.5,
    seed: int = 0,
    top: int = 5,
    min_techniques: int = 10,
    noise: int = 0,
    include_software: bool = False,
    include_org: bool = False,
    domain: str | None = "enterprise",
) -> RecallReport:
    """For each group: hide its name, give a random ``fraction`` of its techniques (seeded per
    group), rank every actor as :func:`attribute` does, and count how often the group lands in
    the top ``top``. Ties count against it (rank = 1 + actors scoring at least as high).
    ``noise`` adds that many techniques the group is not known to use (drawn from the other
    actors' techniques), as an observation polluted by unrelated activity would.

    ``groups``: ids, names or aliases; default :data:`RECALL_GROUPS`; ``["all"]``: every group
    with at least ``min_techniques`` techniques."""
    if not 0 < fraction <= 1:
        raise InvalidInput("fraction must be in (0, 1]")
    if not 1 <= trials <= 1000:
        raise InvalidInput("trials must be between 1 and 1000")
    if not 0 <= noise <= 100:
        raise InvalidInput("noise must be between 0 and 100")
    dom = check_domain(domain) if domain else None
    pool, _ = _pool(
        graph, include_software=include_software, domain=dom, include_org=include_org, rollup=False
    )
    if groups == ["all"]:
        chosen = sorted(
            a for a, (_, kind, techs) in pool.actors.items()
            if kind == "attack-group" and len(techs) >= min_techniques
        )  # fmt: skip
    else:
        chosen = [r.attack_id for r in _resolve_many(graph, list(groups or RECALL_GROUPS))]
    results = []
    for gid in dict.fromkeys(chosen):
        if gid not in pool.actors:
            raise InvalidInput(f"{gid} uses no technique in {dom or 'the loaded domains'}")
        name, _, techs = pool.actors[gid]
        everything = sorted(techs)
        others = sorted(set(pool.df) - set(techs))
        k = max(1, round(len(everything) * fraction))
        rng = random.Random(f"{seed}:{gid}")
        ranks = []
        for _ in range(trials):
            sample = set(rng.sample(everything, k)) | set(rng.sample(others, noise))
            scores = pool.scores(sample)
            mine = scores.get(gid, 0.0)
            ranks.append(sum(1 for a, s in scores.items() if a != gid and s >= mine) + 1)
        hits = sum(1 for r in ranks if r <= top)
        results.append(
            RecallGroup(
                group_id=gid,
                name=name,
                technique_count=len(everything),
                sample_size=k,
                trials=trials,
                hits=hits,
                rate=round(hits / trials, 4),
                ranks=ranks,
                median_rank=statistics.median(ranks),
            )
        )
    hits = sum(r.hits for r in results)
    total = sum(r.trials for r in results)
    return RecallReport(
        fraction=fraction,
        noise=noise,
        top=top,
        trials=trials,
        seed=seed,
        domain=dom,
        include_software=include_software,
        actors_compared=pool.n,
        hits=hits,
        total=total,
        rate=round(hits / total, 4) if total else 0.0,
        groups=results,
    )


def _resolve_many(graph: Graph, texts: list[str]) -> list[Resolved]:
    from .resolve import resolve_groups

    return resolve_groups(graph, texts)


# ---------------------------------------------------------------- IOCs


_BUCKETS = {
    "Technique": "techniques",
    "Software": "software",
    "OrgSoftware": "software",
    "Campaign": "campaigns",
    "OrgCampaign": "campaigns",
    "Group": "actors",
    "OrgCluster": "actors",
    "Report": "reports",
    "Incident": "reports",
    "Sighting": "sightings",
}


def _node_text(n: PathNode) -> str:
    return f"({n.label} {n.id}{' ' + repr(n.name) if n.name and n.name != n.id else ''})"


@cached_answer
def ioc_lookup(graph: Graph, *, value: str, limit: int = 500) -> IocAnswer:
    """What an IOC tells: the indicators/observables holding it and, as graph paths, the
    techniques, software, campaigns, groups/clusters, reports and sightings linked to them."""
    value = (value or "").strip()
    if not value:
        raise InvalidInput("IOC value is empty")
    if len(value) > 2048:
        raise InvalidInput("IOC value longer than 2048 characters")
    row = read_quietly(graph, Q.intel_ioc_lookup, value=value, limit=limit)[0]
    matches = [IocMatch(**m) for m in row["matches"]]
    if not matches:
        raise NotFound(f"no indicator or observable of the organisation holds {value!r}")
    tactics: dict[str, list[str]] = {}
    paths = []
    for r in row["paths"]:
        for n in r["nodes"]:
            if n.get("tactics") is not None:
                tactics[n["id"]] = n["tactics"]
        paths.append(
            IocPath(
                nodes=[PathNode(**n) for n in r["nodes"]],
                relationships=[PathRelationship(**x) for x in r["relationships"]],
            )
        )
    linked: dict[str, dict[tuple[str, str], LinkedObject]] = defaultdict(dict)
    for p in paths:
        for i, node in enumerate(p.nodes[1:], 1):
            bucket = _BUCKETS.get(node.label or "")
            if bucket is None:
                continue
            key = (node.label or "", node.id)
            prev = linked[bucket].get(key)
            if prev is None or i < prev.hops:
                sub = IocPath(nodes=p.nodes[: i + 1], relationships=p.relationships[:i])
                linked[bucket][key] = LinkedObject(
                    label=node.label or "",
                    id=node.id,
                    name=node.name,
                    source=node.source,
                    hops=i,
                    via=sub.text(),
                )
    techniques = sorted(linked["techniques"].values(), key=lambda x: (x.hops, x.id))
    for t in techniques:
        t.tactics = tactics.get(t.id) or []

    def listed(bucket: str) -> list[LinkedObject]:
        return sorted(linked[bucket].values(), key=lambda x: (x.hops, x.label, x.id))

    return IocAnswer(
        value=value,
        matches=matches,
        techniques=techniques,
        software=listed("software"),
        campaigns=listed("campaigns"),
        actors=listed("actors"),
        reports=listed("reports"),
        sightings=listed("sightings"),
        paths=paths,
    )


# ---------------------------------------------------------------- what comes next


def _inventories(graph: Graph, wanted: list[str] | None) -> list[str]:
    known = [r["name"] for r in read_quietly(graph, Q.inventory_list, limit=10_000)]
    if not wanted:
        return known
    missing = [w for w in wanted if w not in known]
    if missing:
        raise NotFound(f"no detection inventory named {missing[0]!r}", suggestions=known[:10])
    return list(dict.fromkeys(wanted))


@cached_answer
def expect_next(
    graph: Graph,
    *,
    actor: str,
    techniques: list[str] | None = None,
    incident: str | None = None,
    include_software: bool = False,
    domain: str | None = None,
    inventories: list[str] | None = None,
    limit: int = 1000,
) -> Expectation:
    """For an actor (ATT&CK group or the organisation's cluster), its techniques not observed
    yet, in matrix order (tactics read from the graph), each flagged with whether the imported
    detection inventories cover it."""
    resolved, kind = resolve_actor(graph, actor)
    observed: list[str] = []
    notes: list[str] = []
    if techniques or incident:
        observed, _, notes = _observed(graph, techniques, incident)
    dom = check_domain(domain) if domain else None
    if kind == "attack-group":
        sets = group_technique_sets(
            graph, [resolved.attack_id], include_software=include_software, domain=dom
        )
        techs = sets.get(resolved.attack_id, (resolved.name, {}))[1]
    else:
        csets = cluster_technique_sets(
            graph, [resolved.attack_id], include_software=include_software, domain=dom
        )
        techs = csets.get(resolved.attack_id, (resolved.name, {}, []))[1]
    seen = set(observed)
    remaining = [t for t in techs if t not in seen]
    details = technique_details(graph, remaining)
    invs = _inventories(graph, inventories)
    cover: dict[str, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    for inv in invs:
        for r in read_quietly(
            graph, Q.coverage_rules_for_techniques, inventory=inv, technique_ids=remaining
        ):
            cover[r["technique_id"]][0].extend(f"{inv}: {n}" for n in r["rules"])
            cover[r["technique_id"]][1].extend(f"{inv}: {n}" for n in r["partial_rules"])
    expected = []
    for t in remaining:
        d = details.get(t)
        if d is None:  # retired since (the sets exclude them; belt and braces)
            continue
        orders = [o for o in d.get("tactic_orders") or [] if o is not None]
        full, part = cover.get(t, ([], []))
        expected.append(
            ExpectedTechnique(
                technique_id=t,
                name=_tname(details, t),
                tactics=d.get("tactics") or [],
                tactic_names=d.get("tactic_names") or [],
                tactic_order=min(orders) if orders else None,
                kinds=techs[t],
                detectable=(bool(full) or bool(part)) if invs else None,
                partial=bool(part) and not full,
                rules=full + part,
            )
        )
    expected.sort(key=lambda e: (e.tactic_order if e.tactic_order is not None else 999,
                                 e.technique_id))  # fmt: skip
    expected = expected[:limit]
    buckets: dict[str, TacticBucket] = {}
    for e in expected:
        d = details[e.technique_id]
        for short, name, order in zip(
            d.get("tactics") or [],
            d.get("tactic_names") or [],
            d.get("tactic_orders") or [],
            strict=False,
        ):
            b = buckets.setdefault(
                short,
                TacticBucket(tactic=short, name=name, order=order, techniques=[], detectable=0,
                             undetected=0),
            )  # fmt: skip
            b.techniques.append(e.technique_id)
            if e.detectable:
                b.detectable += 1
            elif e.detectable is False:
                b.undetected += 1
    if invs:
        detection = (
            f"covered by a rule of {', '.join(invs)} (partial: only through a parent or "
            "sub-technique rule)"
        )
    else:
        detection = "no detection inventory imported: detectable is unknown (null)"
    return Expectation(
        actor_id=resolved.attack_id,
        name=resolved.name,
        kind=kind,
        resolved_note="; ".join([n for n in [resolved.note, *notes] if n]) or None,
        observed=sorted(seen),
        observed_used=sorted(seen & set(techs)),
        include_software=include_software,
        domain=dom,
        inventories=invs,
        detection=detection,
        expected=expected,
        by_tactic=sorted(
            buckets.values(), key=lambda b: (b.order if b.order is not None else 999, b.tactic)
        ),  # fmt: skip
    )


# ---------------------------------------------------------------- listings


def list_sources(graph: Graph, *, limit: int = 1000) -> list[IntelSource]:
    """The imported sources (exports, MISP events, incidents), newest first."""
    import json

    out = []
    for r in read_quietly(graph, Q.intel_sources, limit=limit):
        r["counts"] = json.loads(r["counts"]) if isinstance(r["counts"], str) else {}
        out.append(IntelSource(**r))
    return out


def list_incidents(graph: Graph, *, limit: int = 1000) -> list[IncidentSummary]:
    """Incidents and reports (MISP events, STIX reports), newest first."""
    return [IncidentSummary(**r) for r in read_quietly(graph, Q.intel_incidents, limit=limit)]
