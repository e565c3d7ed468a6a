"""Who fits the observed techniques: every actor's technique set weighted by rarity (IDF),
ranked by similarity and coverage, with the evidence; and the recall check."""

from __future__ import annotations

import math
import random
import statistics
from collections import Counter, defaultdict
from typing import Any

from ..actors import PathKind, check_domain, group_technique_sets, technique_details
from ..cache import cached_answer
from ..catalog import Q
from ..errors import InvalidInput
from ..graph import Graph
from ..resolve import Resolved
from .common import CLUSTER_ID, cluster_technique_sets, read_quietly, technique_name
from .models import (
    ActorKind,
    ActorMatch,
    Attribution,
    ObservedTechnique,
    RecallGroup,
    RecallReport,
    SharedTechnique,
    TechniqueEvidence,
)
from .resolution import cluster_rows, observed_techniques

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


class ActorPool:
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


def actor_pool(
    graph: Graph,
    *,
    include_software: bool,
    domain: str | None,
    include_org: bool,
    rollup: bool,
) -> tuple[ActorPool, dict[str, list[str]]]:
    """Every actor's technique set with IDF weights; computed once per graph version (the
    answer cache), since every attribution over the same options compares the same actors."""
    args = {"include_software": include_software, "domain": domain,
            "include_org": include_org, "rollup": rollup}  # fmt: skip
    return graph.cached(
        "intel.actor_pool",
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
) -> tuple[ActorPool, dict[str, list[str]]]:
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
    return ActorPool(actors, originals), sources


def _auto_domain(details: dict[str, dict[str, Any]]) -> str | None:
    common: set[str] | None = None
    for d in details.values():
        doms = set(d.get("domains") or [])
        common = doms if common is None else common & doms
    return next(iter(common)) if common and len(common) == 1 else None


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
    ids, inc_name, notes = observed_techniques(graph, techniques, incident)
    details = technique_details(graph, ids)
    dom = check_domain(domain) if domain else _auto_domain(details)
    pool, sources = actor_pool(
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
                        name=technique_name(details, t),
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
                name=technique_name(details, t),
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


def _same_as(graph: Graph, include_org: bool) -> dict[str, list[str]]:
    if not include_org:
        return {}
    out: dict[str, list[str]] = defaultdict(list)
    for r in cluster_rows(graph):
        for g in r["same_as"]:
            if g not in out[r["stix_id"]]:
                out[r["stix_id"]].append(g)
            if r["stix_id"] not in out[g]:
                out[g].append(r["stix_id"])
    return out


def _evidence(
    graph: Graph,
    pool: ActorPool,
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
    pool, _ = actor_pool(
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
    from ..resolve import resolve_groups

    return resolve_groups(graph, texts)
