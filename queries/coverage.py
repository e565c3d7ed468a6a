"""Detection coverage: what an inventory covers, the gaps of a threat model ranked by priority,
and which telemetry to collect first. Answered from the graph (see ``docs/coverage.md``).

Priority of a technique (0-100, higher first), a weighted sum of five factors, each in [0, 1]
and each shown as a reason:

- ``actor_usage``: the summed weight of the selected actors that use it / the total weight;
- ``prevalence``: how many current ATT&CK groups use it, relative to the most used technique
  of the threat model;
- ``detectability``: 1 when ATT&CK offers a detection strategy with analytics (v18) or a data
  component that detects it (v17): a gap that can be closed now ranks higher;
- ``tactic_position``: 1 for the first column of its matrix, 0 for the last (earliest of its
  tactics; the order is the matrix's ``HAS_TACTIC {order}``): catching an intrusion early;
- ``mitigations``: 1 / (1 + number of mitigations): where nothing prevents it, detection is
  the control left.

Default weights 0.45, 0.25, 0.15, 0.10, 0.05 (:class:`PriorityWeights`). A technique only
partially covered (rules on its parent or sub-techniques) keeps half its priority.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, Field

from .cache import ACTOR_SCOPES, ATTACK, cached_answer, inventory_scope
from .catalog import Q
from .errors import Conflict, InvalidInput, NotFound, TtpgraphError
from .graph import Graph
from .kinds import TelemetryLevel, path_kinds
from .resolve import resolve_groups

T = TypeVar("T")

MAX_ACTORS = 50
DOMAINS = ("enterprise-attack", "mobile-attack", "ics-attack")
BAR_WIDTH = 10
PARTIAL_FACTOR = 0.5

# ---------------------------------------------------------------- models


class PriorityWeights(BaseModel):
    """How much each factor weighs in a gap's priority (normalised to sum to 1)."""

    actor_usage: float = Field(default=0.45, ge=0)
    prevalence: float = Field(default=0.25, ge=0)
    detectability: float = Field(default=0.15, ge=0)
    tactic_position: float = Field(default=0.10, ge=0)
    mitigations: float = Field(default=0.05, ge=0)

    def normalised(self) -> dict[str, float]:
        raw = self.model_dump()
        total = sum(raw.values())
        if total <= 0 or not math.isfinite(total):
            raise InvalidInput("priority weights: at least one must be positive")
        return {k: v / total for k, v in raw.items()}


class ActorRef(BaseModel):
    group_id: str
    name: str
    weight: float
    matched: str = Field(description="what matched: id, name, alias or replacement")
    note: str | None = None


class InventoryRecord(BaseModel):
    name: str
    format: str
    source: str
    imported_at: str
    rules: int
    mapped: int
    techniques_covered: int
    releases: dict[str, Any] = {}
    stale: bool = Field(default=False, description="the ATT&CK releases changed since the import")


class InventoryInfo(InventoryRecord):
    options: dict[str, Any] = {}
    summary: dict[str, Any] = {}
    crosswalk: list[tuple[str, str, str | None]] = Field(
        default=[], description="technique id pairs (from, to, name) the import used"
    )


class RuleCovers(BaseModel):
    technique_id: str = Field(description="the technique the rule covers directly")
    via: str = Field(description="tag (the id as written), revoked (its replacement) or crosswalk")
    tag: str = Field(description="the id as the rule wrote it")


class InventoryRule(BaseModel):
    name: str
    rule_id: str
    file: str
    status: str
    techniques: list[str]
    unknown_ids: list[str] = []
    covers: list[RuleCovers]


class CoveredTechnique(BaseModel):
    technique_id: str
    name: str
    tactics: list[str] = Field(description="tactic shortnames, in matrix order")
    platforms: list[str] = []
    domains: list[str] = []
    rules: list[str] = Field(
        description="rules that cover it (directly, or by their parent): the first "
        "100 names by name (rule_count says how many)"
    )
    rule_count: int = Field(default=0, description="how many rules cover it")
    partial_rules: list[str] = Field(
        default=[], description="rules on its parent or sub-techniques (the first 100 names)"
    )
    partial_rule_count: int = Field(default=0, description="how many rules cover it partially")
    partial: bool = Field(description="only partially covered")
    via: list[str] = []


class InventoryCoverage(BaseModel):
    inventory: str
    domain: str | None
    covered: int = Field(description="techniques fully covered")
    partial: int = Field(description="techniques only partially covered")
    techniques: list[CoveredTechnique]
    inventory_releases: dict[str, Any] = Field(
        default_factory=dict, description="the ATT&CK releases the inventory was mapped against"
    )
    warnings: list[str] = Field(default_factory=list)


class GapTechnique(BaseModel):
    technique_id: str
    name: str
    is_subtechnique: bool = False
    parent_id: str | None = None
    parent_name: str | None = None
    tactics: list[str] = Field(description="tactic shortnames, in matrix order")
    tactic_names: list[str] = []
    platforms: list[str] = []
    domains: list[str] = []
    url: str | None = None
    covered: bool
    partial: bool = Field(description="only partially covered (parent or sub-technique rules)")
    rules: list[str] = Field(description="rules that cover it (the first 100 names by name)")
    rule_count: int = Field(default=0, description="how many rules cover it")
    partial_rules: list[str] = Field(
        default=[], description="rules on its parent or sub-techniques (the first 100 names)"
    )
    partial_rule_count: int = 0
    actors: list[str] = Field(description="selected actors (group ids) that use it")
    kinds: dict[str, list[str]] = Field(
        default={}, description="group id -> direct/campaign/software"
    )
    actor_weight: float = Field(description="summed weight of the selected actors using it")
    groups_using: int = Field(description="current ATT&CK groups using it")
    total_groups: int
    detection_strategies: int
    analytics: int
    data_components: int = Field(description="ATT&CK v17 data components that detect it")
    mitigations: int
    factors: dict[str, float]
    priority: float
    reasons: list[str]


class TacticCoverage(BaseModel):
    domain: str
    tactic_id: str
    tactic: str
    shortname: str
    order: int
    total: int
    covered: int
    partial: int
    gaps: int
    coverage_pct: float | None
    bar: str


class GapAnalysis(BaseModel):
    inventory: str
    actors: list[ActorRef]
    filters: dict[str, Any]
    weights: dict[str, float]
    releases: dict[str, Any]
    inventory_releases: dict[str, Any] = Field(
        default_factory=dict, description="the ATT&CK releases the inventory was mapped against"
    )
    warnings: list[str] = Field(
        default_factory=list,
        description="the inventory was mapped against another release than the loaded one",
    )
    total: int
    covered: int
    partial: int
    gaps: int
    coverage_pct: float
    tactics: list[TacticCoverage]
    techniques: list[GapTechnique] = Field(
        description="gaps first by priority, then covered techniques by priority"
    )

    def gap_techniques(self) -> list[GapTechnique]:
        return [t for t in self.techniques if not t.covered]


class TelemetryAnalytic(BaseModel):
    analytic_id: str
    strategy_id: str
    strategy: str
    technique_id: str
    platforms: list[str]
    channels: list[str]


class TelemetryStep(BaseModel):
    rank: int
    source: str
    kind: str = Field(description="log_source, or data_component")
    data_components: list[str] = []
    techniques_gained: list[str]
    gain: int
    weight_gained: float
    covered_before: int
    covered_after: int
    coverage_before: float
    coverage_after: float
    analytics: list[TelemetryAnalytic]
    v17: bool = Field(default=False, description="reached through ATT&CK v17 data components")


class TelemetryPlan(BaseModel):
    inventory: str
    actors: list[ActorRef]
    level: TelemetryLevel
    filters: dict[str, Any]
    total: int
    covered: int
    gaps: int
    coverage_pct: float
    steps: list[TelemetryStep]
    reachable: int = Field(description="gaps some known telemetry can show")
    unreachable: list[str] = Field(description="gaps no ATT&CK telemetry is known for")
    warnings: list[str] = Field(
        default_factory=list,
        description="the inventory was mapped against another release than the loaded one",
    )
    final_coverage_pct: float


# ---------------------------------------------------------------- helpers


def check_domain(domain: str | None) -> str | None:
    if domain is None or not str(domain).strip():
        return None
    d = str(domain).strip().lower()
    d = d if d.endswith("-attack") else f"{d}-attack"
    if d not in DOMAINS:
        raise InvalidInput(f"domain {domain!r}: use enterprise, mobile or ics")
    return d


def _platforms(platforms: Sequence[str] | None) -> list[str]:
    out = []
    for p in platforms or []:
        if not isinstance(p, str) or not p.strip():
            raise InvalidInput("platform: empty name")
        if len(p) > 60:
            raise InvalidInput("platform: longer than 60 characters")
        out.append(p.strip().lower())
    return sorted(set(out))


def real_channel(channel: Any) -> str | None:
    """A log source channel, or None where ATT&CK wrote none (some analytics say 'None')."""
    if not isinstance(channel, str) or channel.strip() in ("", "None"):
        return None
    return channel.strip()


def pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


def bar(percent: float | None, width: int = BAR_WIDTH) -> str:
    """``████████░░`` for 80%."""
    if percent is None:
        return "·" * width
    filled = max(0, min(width, round(percent / 100 * width)))
    return "█" * filled + "░" * (width - filled)


def parse_actor_args(values: Sequence[str]) -> list[str] | dict[str, float]:
    """``["APT29=2", "FIN7"]`` -> ``{"APT29": 2.0, "FIN7": 1.0}``; no weights -> the list."""
    weighted: dict[str, float] = {}
    any_weight = False
    for v in values:
        name, sep, w = v.rpartition("=")
        if sep and name.strip():
            try:
                weight = float(w)
            except ValueError:
                weighted[v] = weighted.get(v, 1.0)
                continue
            any_weight = True
            weighted[name.strip()] = weight
        else:
            weighted[v] = 1.0
    return weighted if any_weight else list(values)


def split_values(values: Sequence[str] | None) -> list[str]:
    """Repeated and comma-separated values (``-a APT29,FIN7 -a APT28``, ``?actors=APT29,FIN7``)."""
    return [p.strip() for v in values or [] for p in v.split(",") if p.strip()]


def parse_weights(
    values: Sequence[str] | None, *, label: str = "weight"
) -> dict[str, float] | None:
    """``["APT29=2"]`` -> ``{"APT29": 2.0}``; ``label`` names the option in the error."""
    weights: dict[str, float] = {}
    for v in values or []:
        name, sep, number = v.rpartition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            weights[name.strip()] = float(number)
        except ValueError:
            raise InvalidInput(f"{label} {v!r}: expected ACTOR=NUMBER, like APT29=2") from None
    return weights or None


def actors_with_weights(
    actors: Sequence[str] | None, weights: Sequence[str] | None, *, label: str = "weight"
) -> list[str] | dict[str, float]:
    """Actors for the coverage services: weights inline (``APT29=2``) or given apart."""
    parsed = parse_actor_args(split_values(actors))
    extra = parse_weights(weights, label=label) or {}
    if not extra:
        return parsed
    out = dict(parsed) if isinstance(parsed, dict) else dict.fromkeys(parsed, 1.0)
    for name, w in extra.items():
        if name not in out:
            raise InvalidInput(f"{label} {name!r}: not one of the actors")
        out[name] = w
    return out


def resolve_actors(graph: Graph, actors: Sequence[str] | Mapping[str, float]) -> list[ActorRef]:
    """Actors (ids, names, aliases; optional weights) -> groups, each once (highest weight)."""
    if isinstance(actors, str):
        actors = [actors]
    if isinstance(actors, Mapping):
        items = [(str(k), v) for k, v in actors.items()]
    else:
        items = [(a, 1.0) for a in actors]
    if not items:
        raise InvalidInput("actors: give at least one actor (id, name or alias)")
    if len(items) > MAX_ACTORS:
        raise InvalidInput(f"actors: at most {MAX_ACTORS}, got {len(items)}")
    for name, w in items:
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            raise InvalidInput(f"actors: weight of {name!r} must be a number >= 0")
    resolved = resolve_groups(graph, [n for n, _ in items])
    out: dict[str, ActorRef] = {}
    for (_, w), r in zip(items, resolved, strict=True):
        prev = out.get(r.attack_id)
        if prev is None or w > prev.weight:
            out[r.attack_id] = ActorRef(
                group_id=r.attack_id, name=r.name, weight=float(w), matched=r.matched, note=r.note
            )
    if sum(a.weight for a in out.values()) <= 0:
        raise InvalidInput("actors: at least one weight must be positive")
    return list(out.values())


def _releases(graph: Graph) -> dict[str, Any]:
    return {r["domain"]: r["version"] for r in graph.read(Q.releases, limit=100)}


def gap_scopes(kwargs: dict[str, Any]) -> tuple[str, ...]:
    """What a gap analysis (and what builds on it) reads: ATT&CK, the organisation's clusters,
    and its inventory — another inventory's import leaves its answer cached."""
    inventory = kwargs.get("inventory")
    name = inventory.strip() if isinstance(inventory, str) else ""
    return (*ACTOR_SCOPES, inventory_scope(name))


def _inventory_rules(graph: Graph, inventory: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    """technique id -> {rules, partial_rules, via}: the inventory's rules covering ``ids``."""
    if not ids:
        return {}
    rows = graph.read(Q.coverage_rules_for_techniques, inventory=inventory, technique_ids=ids)
    return {r["technique_id"]: r for r in rows}


def _parse_json(text: Any) -> dict[str, Any]:
    import json

    if isinstance(text, dict):
        return text
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _check_inventory(graph: Graph, inventory: str) -> dict[str, Any]:
    if not isinstance(inventory, str) or not inventory.strip():
        raise InvalidInput("inventory: give the name of an imported inventory")
    rows = graph.read(Q.inventory_info, inventory=inventory.strip())
    if not rows:
        names = [r["name"] for r in graph.read(Q.inventory_list, limit=1000)]
        import difflib

        raise NotFound(
            f"no inventory named {inventory!r}",
            suggestions=difflib.get_close_matches(inventory, names, n=5, cutoff=0.5) or names[:5],
        )
    return rows[0]


def mapping_warnings(
    info: dict[str, Any], releases: dict[str, Any], domain: str | None = None
) -> tuple[dict[str, Any], list[str]]:
    """(the releases an inventory was mapped against, a warning when that is not the loaded
    release of ``domain`` or, without a domain, of a domain it was mapped against)."""
    mapped = _parse_json(info.get("releases"))
    doms = [domain] if domain else sorted(mapped)
    off = [d for d in doms if d in releases and d in mapped and mapped[d] != releases[d]]
    if not off:
        return mapped, []
    what = ", ".join(f"{d} {mapped[d]}" for d in off)
    now = ", ".join(f"{d} {releases[d]}" for d in off)
    return mapped, [
        f"inventory {info['name']!r} was mapped against {what}; the graph holds {now}: its "
        f"rules' tags may name techniques this release revoked or moved. Re-resolve it: "
        f"ttpgraph inventory remap {info['name']}"
    ]


# ---------------------------------------------------------------- inventories


def _record(row: dict[str, Any], releases: dict[str, Any]) -> dict[str, Any]:
    rel = _parse_json(row.get("releases"))
    return {
        **{k: row[k] for k in ("name", "format", "source", "imported_at")},
        "rules": row["rules"] or 0,
        "mapped": row["mapped"] or 0,
        "techniques_covered": row["techniques_covered"] or 0,
        "releases": rel,
        "stale": bool(rel) and rel != releases,
    }


def list_inventories(graph: Graph, *, limit: int = 1000) -> list[InventoryRecord]:
    """The inventories imported, with counts; ``stale`` when ATT&CK was reloaded since."""
    releases = _releases(graph)
    return [
        InventoryRecord(**_record(r, releases)) for r in graph.read(Q.inventory_list, limit=limit)
    ]


def inventory_info(graph: Graph, *, inventory: str) -> InventoryInfo:
    """One inventory's record and its import summary."""
    row = _check_inventory(graph, inventory)
    return InventoryInfo(
        **_record(row, _releases(graph)),
        options=_parse_json(row.get("options")),
        summary=_parse_json(row.get("summary")),
        crosswalk=_crosswalk_pairs(row.get("crosswalk")),
    )


def _crosswalk_pairs(text: Any) -> list[tuple[str, str, str | None]]:
    import json

    try:
        data = json.loads(text) if text else []
    except ValueError:
        return []
    return [
        (str(x[0]), str(x[1]), x[2] if len(x) > 2 else None)
        for x in data
        if isinstance(x, list) and len(x) >= 2
    ]


def inventory_rules(
    graph: Graph,
    *,
    inventory: str,
    status: str | None = None,
    technique: str | None = None,
    skip: int = 0,
    limit: int = 100,
) -> list[InventoryRule]:
    """An inventory's rules with what each covers (optionally one status or technique)."""
    _check_inventory(graph, inventory)
    tid = technique.strip().upper() if technique else None
    rows = graph.read(
        Q.inventory_rules,
        inventory=inventory.strip(),
        status=status,
        technique_id=tid,
        skip=max(0, skip),
        limit=limit,
    )
    return [
        InventoryRule(
            **{k: r[k] for k in ("name", "rule_id", "file", "status")},
            techniques=r["techniques"] or [],
            unknown_ids=r["unknown_ids"] or [],
            covers=[RuleCovers(**c) for c in r["covers"]],
        )
        for r in rows
    ]


@cached_answer(scopes=lambda kw: (ATTACK, gap_scopes(kw)[-1]))
def inventory_coverage(
    graph: Graph,
    *,
    inventory: str,
    domain: str | None = None,
    limit: int = 100_000,
) -> InventoryCoverage:
    """Every current technique the inventory covers: its rules, tactics, and whether only
    partially (rules on its parent or sub-techniques only)."""
    info = _check_inventory(graph, inventory)
    dom = check_domain(domain)
    mapped, warnings = mapping_warnings(info, _releases(graph), dom)
    rows = graph.read(Q.inventory_coverage, inventory=inventory.strip(), domain=dom, limit=limit)
    techniques = [
        CoveredTechnique(
            technique_id=r["technique_id"],
            name=r["name"],
            tactics=r["tactics"] or [],
            platforms=r["platforms"] or [],
            domains=r["domains"] or [],
            rules=r["rules"] if r["rules"] else [],
            rule_count=r["rule_count"] or 0,
            partial_rules=r["partial_rules"] or [],
            partial_rule_count=r["partial_rule_count"] or 0,
            partial=bool(r["partial"]),
            via=sorted(r["via"] or []),
        )
        for r in rows
    ]
    return InventoryCoverage(
        inventory=inventory.strip(),
        domain=dom,
        covered=sum(1 for t in techniques if not t.partial),
        partial=sum(1 for t in techniques if t.partial),
        techniques=techniques,
        inventory_releases=mapped,
        warnings=warnings,
    )


# ---------------------------------------------------------------- gap analysis


def _reasons(
    f: dict[str, Any],
    *,
    n_actors: int,
    actor_names: dict[str, str],
    total_weight: float,
    weighted: bool,
    partial_note: str | None,
) -> list[str]:
    users = [f"{actor_names[g]} ({g})" for g in f["actors"]]
    share = f"{len(users)} of {n_actors} selected actors"
    if weighted:
        share += f" (weight {f['actor_weight']:g} of {total_weight:g})"
    reasons = [f"used by {share}: {', '.join(users)}"]
    reasons.append(
        f"used by {f['groups_using']} of {f['total_groups']} ATT&CK groups "
        f"({pct(f['groups_using'], f['total_groups']):g}%)"
    )
    if f["tactic_names"] and f["tactic_orders"]:
        i = f["tactic_orders"].index(min(f["tactic_orders"]))
        width = (f["matrix_widths"] or [0])[i] or 0
        reasons.append(
            f"tactic: {f['tactic_names'][i]}, column {f['tactic_orders'][i] + 1} of {width}"
            + (" (earlier tactics rank higher)" if width else "")
        )
    if f["detection_strategies"]:
        reasons.append(
            f"ATT&CK offers {f['detection_strategies']} detection strateg"
            f"{'y' if f['detection_strategies'] == 1 else 'ies'} with {f['analytics']} "
            f"analytic{'s' if f['analytics'] != 1 else ''}"
        )
    elif f["data_components"]:
        reasons.append(
            f"ATT&CK (v17) names {f['data_components']} data component"
            f"{'s' if f['data_components'] != 1 else ''} that detect it"
        )
    else:
        reasons.append("ATT&CK offers no detection strategy or analytic for it")
    m = f["mitigations"]
    reasons.append(
        f"{m} mitigation{'s address' if m != 1 else ' addresses'} it"
        if m
        else "no mitigation addresses it: detection is the control left"
    )
    if partial_note:
        reasons.append(partial_note)
    return reasons


@cached_answer(scopes=gap_scopes)
def gap_analysis(
    graph: Graph,
    *,
    actors: list[str] | dict[str, float],
    inventory: str,
    platforms: list[str] | None = None,
    domain: str | None = None,
    include_software: bool = False,
    partial_counts_as_covered: bool = False,
    weights: PriorityWeights | None = None,
) -> GapAnalysis:
    """The techniques of a threat model (the actors' techniques) held against an inventory:
    totals, per-tactic coverage and every technique with its priority and reasons.

    ``actors``: ids, names or aliases (a dict gives weights). ``platforms``/``domain`` filter the
    techniques; ``include_software`` adds the techniques of the actors' software;
    ``partial_counts_as_covered`` counts techniques covered only through their parent or
    sub-techniques as covered.
    """
    ga, _ = _gaps(
        graph,
        actors=actors,
        inventory=inventory,
        platforms=platforms,
        domain=domain,
        include_software=include_software,
        partial_counts_as_covered=partial_counts_as_covered,
        weights=weights,
        telemetry=False,
    )
    return ga


def _gaps(
    graph: Graph,
    *,
    actors: list[str] | dict[str, float],
    inventory: str,
    platforms: list[str] | None,
    domain: str | None,
    include_software: bool,
    partial_counts_as_covered: bool,
    weights: PriorityWeights | None,
    telemetry: bool,
) -> tuple[GapAnalysis, dict[str, Any]]:
    """The gap analysis, and the ``gap_analysis`` query's row (with ``telemetry``, its v18 and
    v17 telemetry rows for every technique of the threat model)."""
    if not isinstance(inventory, str) or not inventory.strip():
        raise InvalidInput("inventory: give the name of an imported inventory")
    dom = check_domain(domain)
    plats = _platforms(platforms)
    w = (weights or PriorityWeights()).normalised()
    try:
        refs = resolve_actors(graph, actors)
    except TtpgraphError:
        _check_inventory(graph, inventory)  # a missing inventory is named first
        raise
    row = graph.read(
        Q.gap_analysis,
        group_ids=[a.group_id for a in refs],
        kinds=path_kinds(include_software),
        domain=dom,
        platforms=plats,
        inventory=inventory.strip(),
        telemetry=telemetry,
    )[0]
    if row["inventory"] is None:
        _check_inventory(graph, inventory)
    if row["coverage_stored"]:
        rules = {r["technique_id"]: r for r in row["coverage"]}
    else:  # a release was loaded since the import: the rules' COVERS edges say
        rules = _inventory_rules(
            graph, row["inventory"], [t["technique_id"] for t in row["techniques"]]
        )
    ga = shape_gaps(
        row,
        rules,
        refs=refs,
        weights=w,
        filters={
            "platforms": plats,
            "domain": dom,
            "include_software": include_software,
            "partial_counts_as_covered": partial_counts_as_covered,
        },
    )
    return ga, row


def shape_gaps(
    row: dict[str, Any],
    rules: dict[str, dict[str, Any]],
    *,
    refs: list[ActorRef],
    weights: dict[str, float],
    filters: dict[str, Any],
) -> GapAnalysis:
    """``gap_analysis``'s row and the inventory's rules per technique as the ranked answer."""
    partial_counts_as_covered = filters["partial_counts_as_covered"]
    dom = filters["domain"]
    w = weights
    weight_of = {a.group_id: a.weight for a in refs}
    names = {a.group_id: a.name for a in refs}
    total_weight = sum(weight_of.values())
    weighted = len({a.weight for a in refs}) > 1
    total_groups = row["total_groups"]
    facts = {t["technique_id"]: t for t in row["techniques"]}
    if any(f["groups_using"] is None for f in facts.values()):
        raise Conflict(
            "the graph's ATT&CK was loaded by an earlier ttpgraph (its techniques lack the "
            "facts a gap analysis ranks by): load it again (ttpgraph load, as it was loaded)"
        )
    max_groups = max((f["groups_using"] for f in facts.values()), default=0) or 1
    techniques: list[GapTechnique] = []
    for tid, f in facts.items():
        groups_using = f["groups_using"]
        users = sorted({a["group_id"] for a in f["actors"]})
        kinds = {a["group_id"]: sorted(a["kinds"]) for a in f["actors"]}
        actor_weight = sum(weight_of.get(g, 0.0) for g in users)
        cov = rules.get(tid, {})
        full = cov.get("rules") or []
        part = cov.get("partial_rules") or []
        partial = not full and bool(part)
        covered = bool(full) or (partial and partial_counts_as_covered)
        orders = f["tactic_orders"] or []
        widths = f["matrix_widths"] or []
        if orders:
            i = orders.index(min(orders))
            position = 1 - orders[i] / (widths[i] - 1) if widths[i] > 1 else 1.0
        else:
            position = 0.0
        factors = {
            "actor_usage": actor_weight / total_weight if total_weight else 0.0,
            "prevalence": groups_using / max_groups,
            "detectability": 1.0 if (f["analytics"] or f["data_components"]) else 0.0,
            "tactic_position": position,
            "mitigations": 1.0 / (1 + f["mitigations"]),
        }
        score = 100 * sum(w[k] * v for k, v in factors.items())
        partial_note = None
        if partial:
            vias = cov.get("via") or []
            where = "its sub-techniques" if "subtechnique" in vias else "its parent"
            n_part = cov.get("partial_rule_count") or len(part)
            partial_note = f"partially covered: {n_part} rule(s) on {where}" + (
                "" if partial_counts_as_covered else " (priority halved)"
            )
            if not partial_counts_as_covered:
                score *= PARTIAL_FACTOR
        fx = {
            **f,
            "groups_using": groups_using,
            "total_groups": total_groups,
            "actors": users,
            "actor_weight": actor_weight,
        }
        techniques.append(
            GapTechnique.model_construct(
                technique_id=tid,
                name=f["name"],
                is_subtechnique=bool(f["is_subtechnique"]),
                parent_id=f["parent_id"],
                parent_name=f["parent_name"],
                tactics=f["tactics"] or [],
                tactic_names=f["tactic_names"] or [],
                platforms=f["platforms"] or [],
                domains=f["domains"] or [],
                url=f["url"],
                covered=covered,
                partial=partial,
                rules=full,
                rule_count=cov.get("rule_count") or len(full),
                partial_rules=part,
                partial_rule_count=cov.get("partial_rule_count") or len(part),
                actors=users,
                kinds=kinds,
                actor_weight=round(actor_weight, 4),
                groups_using=groups_using,
                total_groups=total_groups,
                detection_strategies=f["detection_strategies"],
                analytics=f["analytics"],
                data_components=f["data_components"],
                mitigations=f["mitigations"],
                factors={k: round(v, 4) for k, v in factors.items()},
                priority=round(score, 1),
                reasons=_reasons(
                    fx,
                    n_actors=len(refs),
                    actor_names=names,
                    total_weight=total_weight,
                    weighted=weighted,
                    partial_note=partial_note,
                ),
            )
        )
    techniques.sort(key=lambda t: (t.covered, -t.priority, t.technique_id))
    domains = sorted(
        {d for t in techniques for d in (facts[t.technique_id]["tactic_domains"] or t.domains)}
        | ({dom} if dom else set())
    )
    tactics = _tactic_rows(techniques, facts, [r for r in row["tactics"] if r["domain"] in domains])
    covered_n = sum(1 for t in techniques if t.covered)
    releases = {r["domain"]: r["version"] for r in row["releases"]}
    mapped, warnings = mapping_warnings(
        {"name": row["inventory"], "releases": row["inventory_releases"]}, releases, dom
    )
    return GapAnalysis(
        inventory=row["inventory"],
        actors=refs,
        filters=filters,
        weights={k: round(v, 4) for k, v in w.items()},
        releases=releases,
        inventory_releases=mapped,
        warnings=warnings,
        total=len(techniques),
        covered=covered_n,
        partial=sum(1 for t in techniques if t.partial),
        gaps=len(techniques) - covered_n,
        coverage_pct=pct(covered_n, len(techniques)),
        tactics=tactics,
        techniques=techniques,
    )


def _tactic_rows(
    techniques: list[GapTechnique],
    facts: dict[str, dict[str, Any]],
    matrix: list[dict[str, Any]],
) -> list[TacticCoverage]:
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for t in techniques:
        tactic_domains = facts[t.technique_id]["tactic_domains"] or []
        for d, s in zip(tactic_domains, t.tactics, strict=False):
            c = counts[(d, s)]
            c[0] += 1
            c[1] += int(t.covered)
            c[2] += int(t.partial)
    rows = []
    for r in matrix:
        total, covered, partial = counts.get((r["domain"], r["shortname"]), [0, 0, 0])
        p = pct(covered, total) if total else None
        rows.append(
            TacticCoverage(
                domain=r["domain"],
                tactic_id=r["tactic_id"],
                tactic=r["name"],
                shortname=r["shortname"],
                order=r["order"],
                total=total,
                covered=covered,
                partial=partial,
                gaps=total - covered,
                coverage_pct=p,
                bar=bar(p),
            )
        )
    return rows


def tactic_bar_lines(tactics: list[TacticCoverage], *, with_domain: bool = False) -> list[str]:
    """``Execution        ████████░░  80% (8/10)`` per tactic, in matrix order."""
    label = [(f"{t.domain.split('-')[0]}: " if with_domain else "") + t.tactic for t in tactics]
    width = max([16, *(len(x) for x in label)])
    lines = []
    for name, t in zip(label, tactics, strict=True):
        p = "  -" if t.coverage_pct is None else f"{t.coverage_pct:>3.0f}"
        lines.append(f"{name:<{width}} {t.bar} {p}% ({t.covered}/{t.total})")
    return lines


# ---------------------------------------------------------------- telemetry


def telemetry_rows(
    graph: Graph, technique_ids: list[str], platforms: list[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(v18 rows: technique, strategy, analytic, log source, data component; v17 rows)."""
    if not technique_ids:
        return [], []
    row = graph.read(Q.telemetry_sources, technique_ids=technique_ids, platforms=platforms)[0]
    return row["v18"], row["v17"]


@cached_answer(scopes=gap_scopes)
def prioritize_telemetry(
    graph: Graph,
    *,
    actors: list[str] | dict[str, float],
    inventory: str,
    platforms: list[str] | None = None,
    domain: str | None = None,
    include_software: bool = False,
    partial_counts_as_covered: bool = False,
    level: TelemetryLevel | str = TelemetryLevel.log_source,
    collected: list[str] | None = None,
    limit: int = 20,
) -> TelemetryPlan:
    """Which telemetry to collect first to close the threat model's gaps: greedy marginal gain
    (each step the source that lets you detect the most actor-weighted gap techniques not yet
    reachable), with coverage before and after and the ATT&CK analytics to build.

    ``collected``: sources already collected (names): not proposed, and the gaps they reach are
    counted as reachable before the first step.
    """
    try:
        lvl = TelemetryLevel(str(level))
    except ValueError:
        raise InvalidInput(f"level {level!r}: use log_source or data_component") from None
    if limit < 1:
        raise InvalidInput("limit must be at least 1")
    # one round trip: the gap analysis with the telemetry of every technique of the threat
    # model, kept for the gaps (what telemetry_sources gives for them)
    ga, row = _gaps(
        graph,
        actors=actors,
        inventory=inventory,
        platforms=platforms,
        domain=domain,
        include_software=include_software,
        partial_counts_as_covered=partial_counts_as_covered,
        weights=None,
        telemetry=True,
    )
    gaps = ga.gap_techniques()
    weight = {t.technique_id: t.actor_weight for t in gaps}
    v18 = [r for r in row["v18"] if r["technique_id"] in weight]
    v17 = [r for r in row["v17"] if r["technique_id"] in weight]
    reach: dict[str, set[str]] = defaultdict(set)
    kind: dict[str, str] = {}
    dcs: dict[str, set[str]] = defaultdict(set)
    from_v17: set[str] = set()
    rows_of: dict[str, list[dict[str, Any]]] = defaultdict(list)  # each step reads its own
    for r in v18:
        key = r["log_source"] if lvl == TelemetryLevel.log_source else r["data_component"]
        rows_of[key].append(r)
        reach[key].add(r["technique_id"])
        kind[key] = lvl.value
        dcs[key].add(r["data_component"])
    for r in v17:
        key = r["data_component"]
        reach[key].add(r["technique_id"])
        kind.setdefault(key, TelemetryLevel.data_component.value)
        dcs[key].add(r["data_component"])
        from_v17.add(key)
    have = {c.strip().lower() for c in collected or [] if c.strip()}
    reachable = set().union(*reach.values()) if reach else set()
    remaining = set(reachable)
    covered_now = ga.covered
    for src in list(reach):
        if src.lower() in have:
            remaining -= reach[src]
            del reach[src]
    covered_base = covered_now
    steps: list[TelemetryStep] = []
    covered = covered_base
    while remaining and len(steps) < limit and reach:
        best = min(
            reach,
            key=lambda s: (
                -sum(weight[t] for t in reach[s] & remaining),
                -len(reach[s] & remaining),
                s,
            ),
        )
        gained = sorted(reach[best] & remaining)
        if not gained:
            break
        remaining -= set(gained)
        before = covered
        covered += len(gained)
        steps.append(
            TelemetryStep(
                rank=len(steps) + 1,
                source=best,
                kind=kind[best],
                data_components=sorted(dcs[best]),
                techniques_gained=gained,
                gain=len(gained),
                weight_gained=round(sum(weight[t] for t in gained), 4),
                covered_before=before,
                covered_after=covered,
                coverage_before=pct(before, ga.total),
                coverage_after=pct(covered, ga.total),
                analytics=_step_analytics(rows_of.get(best, []), best, set(gained), lvl),
                v17=best in from_v17,
            )
        )
        del reach[best]
    return TelemetryPlan(
        warnings=ga.warnings,
        inventory=ga.inventory,
        actors=ga.actors,
        level=lvl,
        filters={**ga.filters, "collected": sorted(have)},
        total=ga.total,
        covered=ga.covered,
        gaps=ga.gaps,
        coverage_pct=ga.coverage_pct,
        steps=steps,
        reachable=len(reachable),
        unreachable=sorted(set(weight) - reachable),
        final_coverage_pct=pct(covered, ga.total),
    )


def _step_analytics(
    rows: list[dict[str, Any]], source: str, gained: set[str], lvl: TelemetryLevel
) -> list[TelemetryAnalytic]:
    out: dict[tuple[str, str], TelemetryAnalytic] = {}
    for r in rows:
        key = r["log_source"] if lvl == TelemetryLevel.log_source else r["data_component"]
        if key != source or r["technique_id"] not in gained:
            continue
        a = out.get((r["analytic_id"], r["technique_id"]))
        if a is None:
            a = out[(r["analytic_id"], r["technique_id"])] = TelemetryAnalytic(
                analytic_id=r["analytic_id"],
                strategy_id=r["strategy_id"],
                strategy=r["strategy"],
                technique_id=r["technique_id"],
                platforms=r["platforms"] or [],
                channels=[],
            )
        channel = real_channel(r["channel"])
        if lvl == TelemetryLevel.data_component:
            ch = f"{r['log_source']} ({channel})" if channel else r["log_source"]
        else:
            ch = channel or ""
        if ch and ch not in a.channels:
            a.channels.append(ch)
    return sorted(out.values(), key=lambda a: (a.technique_id, a.analytic_id))


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
