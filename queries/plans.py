"""Plans and the report, built on the coverage services: the remediation plan (30/60/90 days,
YAML), the emulation plan (Atomic Red Team tests for the gaps) and the threat model assessment
(text, Markdown, JSON). Every number comes from :func:`queries.coverage.gap_analysis` and
:func:`queries.coverage.prioritize_telemetry`, so they agree with ``ttpgraph gaps``.

Effort of closing a gap (``effort``, ``effort_basis``), estimated from ATT&CK itself:

- ``low``: ATT&CK offers an analytic for it that reads a single log source;
- ``medium``: the simplest analytic reads 2-3 log sources, or only ATT&CK v17 data components
  (no analytic) are known;
- ``high``: the simplest analytic reads more, or ATT&CK offers no analytic or data component
  (the detection needs research).

A gap already partially covered (rules on its parent or sub-techniques) is one step easier.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import yaml
from pydantic import BaseModel, Field

from .cache import cached_answer
from .catalog import Q
from .coverage import (
    ActorRef,
    GapAnalysis,
    GapTechnique,
    TacticCoverage,
    TelemetryLevel,
    TelemetryPlan,
    check_platforms,
    gap_analysis,
    gap_scopes,
    inventory_info,
    now_iso,
    pct,
    prioritize_telemetry,
    real_channel,
    tactic_bar_lines,
    telemetry_rows,
)
from .errors import InvalidInput
from .graph import Graph

TIERS = (("priority_1", "30 days"), ("priority_2", "60 days"), ("priority_3", "90 days"))
EFFORT_LEVELS = ("low", "medium", "high")
EFFORT_METHOD = (
    "from ATT&CK: low = an ATT&CK analytic reads one log source; medium = the simplest "
    "analytic reads 2-3 log sources, or only v17 data components are known; high = more, or "
    "no ATT&CK analytic (research needed); one step easier when rules on the parent or "
    "sub-techniques exist"
)
MAX_DESCRIPTION = 400

# ---------------------------------------------------------------- models


class PlanAnalytic(BaseModel):
    analytic_id: str
    platforms: list[str]
    log_sources: list[str]
    description: str


class PlanStrategy(BaseModel):
    strategy_id: str
    name: str
    url: str | None = None
    analytics: list[PlanAnalytic]


class PlanGap(BaseModel):
    technique: str
    name: str
    tactics: list[str]
    priority: float
    reasons: list[str]
    actors: list[str]
    current: str = Field(description="gap, or partial (rules on parent or sub-techniques)")
    target: str = "covered"
    data_sources: list[str] = Field(description="ATT&CK data components that can show it")
    log_sources: list[str] = Field(description="ATT&CK log sources (name and channel)")
    detection_approach: list[PlanStrategy]
    effort: str
    effort_basis: str


class PlanTier(BaseModel):
    timeframe: str
    coverage_before_pct: float
    coverage_after_pct: float
    gaps: list[PlanGap]


class RemediationPlan(BaseModel):
    generated: str
    releases: dict[str, Any]
    inventory: str
    actors: list[ActorRef]
    filters: dict[str, Any]
    techniques: int
    covered: int
    current_coverage_pct: float
    target_coverage_pct: float
    effort_method: str = EFFORT_METHOD
    priority_1: PlanTier
    priority_2: PlanTier
    priority_3: PlanTier
    beyond_90_days: list[str] = Field(description="gaps left for later, by priority")


class AtomicTestLike(Protocol):
    technique_id: str
    test_number: int
    name: str
    guid: str
    executor: str
    platforms: list[str]


class AtomicSource(Protocol):
    """What an emulation plan needs from an Atomic Red Team index (``loader.atomic``)."""

    root: str

    def tests_for(self, technique_ids: list[str]) -> Mapping[str, Sequence[AtomicTestLike]]: ...


class EmulationTest(BaseModel):
    atomic_technique: str = Field(description="the id Atomic Red Team files it under")
    test_number: int
    name: str
    guid: str
    platforms: list[str]
    executor: str
    invoke: str


class EmulationTechnique(BaseModel):
    technique_id: str
    name: str
    priority: float
    partial: bool
    atomic_ids: list[str] = Field(description="Atomic Red Team ids searched (crosswalk)")
    tests: list[EmulationTest]
    invoke: list[str] = Field(description="Invoke-AtomicTest lines by test number")


class EmulationPlan(BaseModel):
    inventory: str
    actors: list[ActorRef]
    filters: dict[str, Any]
    atomics: str
    gaps: int
    with_tests: int
    tests: int
    techniques: list[EmulationTechnique]
    without_tests: list[str]
    script: list[str] = Field(description="every Invoke-AtomicTest line, by priority")


class ReportGap(BaseModel):
    rank: int
    technique_id: str
    name: str
    tactics: list[str]
    priority: float
    partial: bool
    reasons: list[str]


class ReportTelemetry(BaseModel):
    rank: int
    source: str
    gain: int
    coverage_before: float
    coverage_after: float


class AssessmentReport(BaseModel):
    title: str = "THREAT MODEL ASSESSMENT"
    date: str
    releases: dict[str, Any]
    inventory: str
    inventory_format: str
    inventory_rules: int
    actors: list[ActorRef]
    filters: dict[str, Any]
    total: int
    covered: int
    partial: int
    gaps: int
    coverage_pct: float
    tactics: list[TacticCoverage]
    top_gaps: list[ReportGap]
    telemetry: list[ReportTelemetry]
    plan: dict[str, Any]
    recommendation: list[str]


# ---------------------------------------------------------------- remediation plan


def _detection(
    graph: Graph, ids: list[str], platforms: list[str]
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[dict[str, Any]]]]:
    rows = graph.read(Q.plan_detection_approach, technique_ids=ids, platforms=platforms)
    strategies: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        strategies[r["technique_id"]].append(r)
    _, v17 = telemetry_rows(graph, ids, platforms)
    dcs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in v17:
        dcs[r["technique_id"]].append(r)
    return strategies, dcs


def _short(text: str | None) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= MAX_DESCRIPTION else flat[: MAX_DESCRIPTION - 1] + "…"


def _effort(
    strategies: list[dict[str, Any]], v17: list[dict[str, Any]], partial: bool
) -> tuple[str, str]:
    analytics = [a for s in strategies for a in s["analytics"]]
    if analytics:
        best = min(
            analytics,
            key=lambda a: (len({ls["name"] for ls in a["log_sources"]}), a["analytic_id"]),
        )
        names = sorted({ls["name"] for ls in best["log_sources"]})
        n = len(names)
        level = 0 if n <= 1 else 1 if n <= 3 else 2
        basis = (
            f"simplest ATT&CK analytic {best['analytic_id']} reads {n} log source"
            f"{'s' if n != 1 else ''}" + (f" ({', '.join(names)})" if names else "")
        )
    elif v17:
        level = 1
        basis = f"ATT&CK v17 names {len(v17)} data component(s) but no analytic"
    else:
        level = 2
        basis = "ATT&CK offers no analytic or data component: the detection needs research"
    if partial and level > 0:
        level -= 1
        basis += "; rules on its parent or sub-techniques exist to extend"
    return EFFORT_LEVELS[level], basis


def _plan_gap(
    t: GapTechnique, strategies: list[dict[str, Any]], v17: list[dict[str, Any]]
) -> PlanGap:
    data_sources: list[str] = []
    log_sources: list[str] = []
    approach = []
    for s in strategies:
        analytics = []
        for a in s["analytics"]:
            srcs: list[str] = []
            for ls in a["log_sources"]:
                channel = real_channel(ls.get("channel"))
                label = ls["name"] + (f" ({channel})" if channel else "")
                if label not in srcs:
                    srcs.append(label)
                if label not in log_sources:
                    log_sources.append(label)
                if ls.get("data_component") and ls["data_component"] not in data_sources:
                    data_sources.append(ls["data_component"])
            analytics.append(
                PlanAnalytic(
                    analytic_id=a["analytic_id"],
                    platforms=a["platforms"],
                    log_sources=srcs,
                    description=_short(a["description"]),
                )
            )
        approach.append(
            PlanStrategy(
                strategy_id=s["strategy_id"],
                name=s["strategy"],
                url=s.get("strategy_url"),
                analytics=analytics,
            )
        )
    for r in v17:
        label = r["data_component"] + (f" ({r['data_source']})" if r.get("data_source") else "")
        if label not in data_sources:
            data_sources.append(label)
    effort, basis = _effort(strategies, v17, t.partial)
    return PlanGap(
        technique=t.technique_id,
        name=t.name if not t.parent_name else f"{t.parent_name}: {t.name}",
        tactics=t.tactics,
        priority=t.priority,
        reasons=t.reasons,
        actors=t.actors,
        current=f"partial ({len(t.partial_rules)} rules on parent or sub-techniques)"
        if t.partial
        else "gap",
        data_sources=sorted(data_sources),
        log_sources=sorted(log_sources),
        detection_approach=approach,
        effort=effort,
        effort_basis=basis,
    )


@cached_answer(scopes=gap_scopes)
def remediation_plan(
    graph: Graph,
    *,
    actors: list[str] | dict[str, float],
    inventory: str,
    platforms: list[str] | None = None,
    domain: str | None = None,
    include_software: bool = False,
    partial_counts_as_covered: bool = False,
    per_tier: int = 10,
) -> RemediationPlan:
    """The gaps by priority in three tiers (30, 60, 90 days; ``per_tier`` each), each gap with
    the data and log sources that show it, ATT&CK's detection approach and an effort estimate;
    coverage now and after each tier."""
    if not 1 <= per_tier <= 500:
        raise InvalidInput("per_tier must be between 1 and 500")
    ga = gap_analysis(
        graph,
        actors=actors,
        inventory=inventory,
        platforms=platforms,
        domain=domain,
        include_software=include_software,
        partial_counts_as_covered=partial_counts_as_covered,
    )
    gaps = ga.gap_techniques()
    planned = gaps[: 3 * per_tier]
    strategies, v17 = _detection(
        graph, [t.technique_id for t in planned], check_platforms(platforms)
    )
    tiers: dict[str, PlanTier] = {}
    covered = ga.covered
    for i, (key, timeframe) in enumerate(TIERS):
        chunk = planned[i * per_tier : (i + 1) * per_tier]
        before = covered
        covered += len(chunk)
        tiers[key] = PlanTier(
            timeframe=timeframe,
            coverage_before_pct=pct(before, ga.total),
            coverage_after_pct=pct(covered, ga.total),
            gaps=[
                _plan_gap(t, strategies.get(t.technique_id, []), v17.get(t.technique_id, []))
                for t in chunk
            ],
        )
    return RemediationPlan(
        generated=now_iso(),
        releases=ga.releases,
        inventory=ga.inventory,
        actors=ga.actors,
        filters=ga.filters,
        techniques=ga.total,
        covered=ga.covered,
        current_coverage_pct=ga.coverage_pct,
        target_coverage_pct=pct(covered, ga.total),
        priority_1=tiers["priority_1"],
        priority_2=tiers["priority_2"],
        priority_3=tiers["priority_3"],
        beyond_90_days=[t.technique_id for t in gaps[3 * per_tier :]],
    )


def plan_yaml(plan: RemediationPlan) -> str:
    """The plan as YAML, in the seed's shape (``remediation_plan: ... priority_1: ...``)."""

    def gap(g: PlanGap) -> dict[str, Any]:
        return {
            "technique": g.technique,
            "name": g.name,
            "tactics": g.tactics,
            "priority": g.priority,
            "why": g.reasons,
            "actors": g.actors,
            "current": g.current,
            "target": g.target,
            "data_sources": g.data_sources,
            "log_sources": g.log_sources,
            "detection_approach": [
                {
                    "strategy": f"{s.strategy_id} {s.name}",
                    **({"url": s.url} if s.url else {}),
                    "analytics": [
                        {
                            "id": a.analytic_id,
                            "platforms": a.platforms,
                            "log_sources": a.log_sources,
                            "description": a.description,
                        }
                        for a in s.analytics
                    ],
                }
                for s in g.detection_approach
            ],
            "effort": g.effort,
            "effort_basis": g.effort_basis,
        }

    def tier(t: PlanTier) -> dict[str, Any]:
        return {
            "timeframe": t.timeframe,
            "coverage_before_pct": t.coverage_before_pct,
            "coverage_after_pct": t.coverage_after_pct,
            "gaps": [gap(g) for g in t.gaps],
        }

    doc = {
        "remediation_plan": {
            "generated": plan.generated,
            "attack_releases": plan.releases,
            "inventory": plan.inventory,
            "threat_model": {
                "actors": [
                    {"id": a.group_id, "name": a.name, "weight": a.weight} for a in plan.actors
                ],
                "filters": plan.filters,
            },
            "coverage": {
                "techniques": plan.techniques,
                "covered": plan.covered,
                "current_pct": plan.current_coverage_pct,
                "target_pct": plan.target_coverage_pct,
            },
            "effort_method": plan.effort_method,
            "priority_1": tier(plan.priority_1),
            "priority_2": tier(plan.priority_2),
            "priority_3": tier(plan.priority_3),
            "beyond_90_days": plan.beyond_90_days,
        }
    }
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)


# ---------------------------------------------------------------- emulation plan


def emulation_plan(
    graph: Graph,
    *,
    actors: list[str] | dict[str, float],
    inventory: str,
    atomics: AtomicSource,
    platforms: list[str] | None = None,
    domain: str | None = None,
    include_software: bool = False,
    partial_counts_as_covered: bool = False,
    crosswalk: Sequence[tuple[str, str]] | None = None,
    limit: int | None = None,
) -> EmulationPlan:
    """For the gaps (by priority), the Atomic Red Team tests that exercise them, filtered by
    platform, as ``Invoke-AtomicTest`` lines by test number and by GUID.

    Atomic Red Team follows the newest ATT&CK numbering: ``crosswalk`` pairs (old id, new id)
    let a gap's id find tests filed under its new id; by default the crosswalk the inventory was
    imported with.
    """
    ga = gap_analysis(
        graph,
        actors=actors,
        inventory=inventory,
        platforms=platforms,
        domain=domain,
        include_software=include_software,
        partial_counts_as_covered=partial_counts_as_covered,
    )
    if crosswalk is None:
        crosswalk = [(a, b) for a, b, _ in inventory_info(graph, inventory=inventory).crosswalk]
    forward: dict[str, list[str]] = defaultdict(list)
    for a, b in crosswalk:
        if b not in forward[a]:
            forward[a].append(b)
    plats = check_platforms(platforms)
    gaps = ga.gap_techniques()[:limit] if limit else ga.gap_techniques()
    wanted = {t.technique_id: [t.technique_id, *forward.get(t.technique_id, [])] for t in gaps}
    found = atomics.tests_for(sorted({i for ids in wanted.values() for i in ids}))
    techniques = []
    without = []
    for t in gaps:
        tests: list[EmulationTest] = []
        invoke: list[str] = []
        for aid in wanted[t.technique_id]:
            chosen = [x for x in found.get(aid, []) if _platform_ok(x.platforms, plats)]
            if not chosen:
                continue
            numbers = ",".join(str(x.test_number) for x in chosen)
            invoke.append(f"Invoke-AtomicTest {aid} -TestNumbers {numbers}")
            tests += [
                EmulationTest(
                    atomic_technique=aid,
                    test_number=x.test_number,
                    name=x.name,
                    guid=x.guid,
                    platforms=list(x.platforms),
                    executor=x.executor,
                    invoke=f"Invoke-AtomicTest {aid} -TestGuids {x.guid}",
                )
                for x in chosen
            ]
        if not tests:
            without.append(t.technique_id)
            continue
        techniques.append(
            EmulationTechnique(
                technique_id=t.technique_id,
                name=t.name if not t.parent_name else f"{t.parent_name}: {t.name}",
                priority=t.priority,
                partial=t.partial,
                atomic_ids=wanted[t.technique_id],
                tests=tests,
                invoke=invoke,
            )
        )
    return EmulationPlan(
        inventory=ga.inventory,
        actors=ga.actors,
        filters={**ga.filters, "crosswalk_pairs": len(crosswalk)},
        atomics=atomics.root,
        gaps=len(gaps),
        with_tests=len(techniques),
        tests=sum(len(t.tests) for t in techniques),
        techniques=techniques,
        without_tests=without,
        script=[line for t in techniques for line in t.invoke],
    )


_ART_PLATFORMS = {
    "windows": "windows",
    "linux": "linux",
    "macos": "macos",
    "office-365": "office suite",
    "azure-ad": "identity provider",
    "google-workspace": "saas",
    "saas": "saas",
    "iaas": "iaas",
    "iaas:aws": "iaas",
    "iaas:azure": "iaas",
    "iaas:gcp": "iaas",
    "containers": "containers",
    "esxi": "esxi",
}


def _platform_ok(test_platforms: Sequence[str], wanted: list[str]) -> bool:
    """Atomic platform names (``iaas:aws``) against ATT&CK's or Atomic's (lower-case)."""
    if not wanted:
        return True
    have = {p.lower() for p in test_platforms} | {
        _ART_PLATFORMS.get(p.lower(), p.lower()) for p in test_platforms
    }
    return any(w in have or _ART_PLATFORMS.get(w, w) in have for w in wanted)


# ---------------------------------------------------------------- assessment report


def assessment_report(
    graph: Graph,
    *,
    actors: list[str] | dict[str, float],
    inventory: str,
    platforms: list[str] | None = None,
    domain: str | None = None,
    include_software: bool = False,
    partial_counts_as_covered: bool = False,
    top: int = 10,
    level: TelemetryLevel | str = TelemetryLevel.log_source,
    per_tier: int = 10,
) -> AssessmentReport:
    """The threat model assessment: date, actors, totals, tactic breakdown, top gaps with
    reasons, the first telemetry to collect and a recommendation, from the same services."""
    if not 1 <= top <= 500:
        raise InvalidInput("top must be between 1 and 500")
    common: dict[str, Any] = {
        "actors": actors,
        "inventory": inventory,
        "platforms": platforms,
        "domain": domain,
        "include_software": include_software,
        "partial_counts_as_covered": partial_counts_as_covered,
    }
    ga = gap_analysis(graph, **common)
    info = inventory_info(graph, inventory=inventory)
    tel = prioritize_telemetry(graph, **common, level=level, limit=5)
    plan = remediation_plan(graph, **common, per_tier=per_tier)
    gaps = ga.gap_techniques()
    top_gaps = [
        ReportGap(
            rank=i + 1,
            technique_id=t.technique_id,
            name=t.name if not t.parent_name else f"{t.parent_name}: {t.name}",
            tactics=t.tactics,
            priority=t.priority,
            partial=t.partial,
            reasons=t.reasons,
        )
        for i, t in enumerate(gaps[:top])
    ]
    telemetry = [
        ReportTelemetry(
            rank=s.rank,
            source=s.source,
            gain=s.gain,
            coverage_before=s.coverage_before,
            coverage_after=s.coverage_after,
        )
        for s in tel.steps
    ]
    plan_summary = {
        key: {
            "timeframe": tier.timeframe,
            "gaps": len(tier.gaps),
            "coverage_after_pct": tier.coverage_after_pct,
        }
        for key, tier in (
            ("priority_1", plan.priority_1),
            ("priority_2", plan.priority_2),
            ("priority_3", plan.priority_3),
        )
    }
    return AssessmentReport(
        date=now_iso()[:10],
        releases=ga.releases,
        inventory=ga.inventory,
        inventory_format=info.format,
        inventory_rules=info.rules,
        actors=ga.actors,
        filters=ga.filters,
        total=ga.total,
        covered=ga.covered,
        partial=ga.partial,
        gaps=ga.gaps,
        coverage_pct=ga.coverage_pct,
        tactics=ga.tactics,
        top_gaps=top_gaps,
        telemetry=telemetry,
        plan=plan_summary,
        recommendation=_recommendation(ga, tel, plan, info.summary, info.stale),
    )


def _recommendation(
    ga: GapAnalysis,
    tel: TelemetryPlan,
    plan: RemediationPlan,
    summary: dict[str, Any],
    stale: bool,
) -> list[str]:
    lines = []
    if not ga.total:
        return ["The selected actors use no technique in scope: widen the filters."]
    if not ga.gaps:
        lines.append(
            f"Every one of the {ga.total} techniques in scope is covered: validate the rules "
            "by emulation (ttpgraph emulation) and keep the inventory current."
        )
    else:
        p1 = plan.priority_1
        if p1.gaps:
            names = ", ".join(f"{g.technique} {g.name}" for g in p1.gaps[:3])
            lines.append(
                f"Close the {len(p1.gaps)} priority-1 gaps within 30 days (coverage "
                f"{p1.coverage_before_pct:g}% -> {p1.coverage_after_pct:g}%), starting with "
                f"{names}."
            )
        if tel.steps:
            first = tel.steps[0]
            then = ", then ".join(
                f"{s.source} (+{s.gain}, {s.coverage_after:g}%)" for s in tel.steps[1:3]
            )
            lines.append(
                f"Collect {first.source} first (+{first.gain} techniques, coverage "
                f"{first.coverage_before:g}% -> {first.coverage_after:g}%)"
                + (f", then {then}" if then else "")
                + "; build the ATT&CK analytics listed for each (ttpgraph telemetry)."
            )
        if tel.unreachable:
            shown = ", ".join(tel.unreachable[:5]) + (", ..." if len(tel.unreachable) > 5 else "")
            lines.append(
                f"{len(tel.unreachable)} gaps have no ATT&CK telemetry or analytic ({shown}): "
                "research them or accept the risk with compensating mitigations."
            )
        if ga.partial:
            lines.append(
                f"{ga.partial} techniques are covered only by rules on their parent or "
                "sub-techniques: check those rules really catch them."
            )
    unknown = summary.get("ids_unknown") or []
    if unknown:
        ids = ", ".join(u["id"] for u in unknown[:5]) + (", ..." if len(unknown) > 5 else "")
        lines.append(
            f"The inventory names {len(unknown)} technique ids this ATT&CK release does not know "
            f"({ids}): re-import it with a crosswalk (--crosswalk) so they count."
        )
    if stale:
        lines.append("ATT&CK was reloaded after this inventory was imported: re-import it.")
    return lines


def _label_width(tactics: list[TacticCoverage]) -> bool:
    return len({t.domain for t in tactics}) > 1


def render_text(report: AssessmentReport) -> str:
    """The seed's plain-text report."""
    lines = [report.title, "=" * len(report.title), f"Date:        {report.date}"]
    lines.append(
        "ATT&CK:      "
        + ", ".join(f"{d} {v}" for d, v in sorted(report.releases.items()) if v is not None)
    )
    lines.append(
        f"Inventory:   {report.inventory} ({report.inventory_format}, "
        f"{report.inventory_rules} rules)"
    )
    lines.append("Actors:      " + ", ".join(actor_label(a) for a in report.actors))
    filt = _filters_text(report.filters)
    if filt:
        lines.append(f"Filters:     {filt}")
    lines += [
        "",
        f"Techniques in scope:  {report.total}",
        f"Covered:              {report.covered} ({report.coverage_pct:g}%)",
        f"Gaps:                 {report.gaps}",
        f"Partially covered:    {report.partial} ({_partial_note(report)})",
        "",
        "COVERAGE BY TACTIC",
        "------------------",
        *tactic_bar_lines(_shown_tactics(report.tactics), with_domain=_label_width(report.tactics)),
        "",
        f"TOP {len(report.top_gaps)} PRIORITY GAPS",
        "-" * len(f"TOP {len(report.top_gaps)} PRIORITY GAPS"),
    ]
    for g in report.top_gaps:
        lines.append(
            f"{g.rank:>2}. {g.technique_id} {g.name}  [{', '.join(g.tactics)}]  "
            f"priority {g.priority:g}"
        )
        lines += [f"      - {r}" for r in g.reasons]
    if report.telemetry:
        lines += ["", "TELEMETRY TO COLLECT FIRST", "--------------------------"]
        lines += [
            f"{s.rank:>2}. {s.source}: +{s.gain} techniques "
            f"({s.coverage_before:g}% -> {s.coverage_after:g}%)"
            for s in report.telemetry
        ]
    lines += ["", "RECOMMENDATION", "--------------"]
    lines += [f"- {r}" for r in report.recommendation]
    return "\n".join(lines) + "\n"


def _partial_note(report: AssessmentReport) -> str:
    counted = "covered" if report.filters.get("partial_counts_as_covered") else "gaps"
    return f"rules on their parent or sub-techniques only; counted as {counted}"


def _shown_tactics(tactics: list[TacticCoverage]) -> list[TacticCoverage]:
    """Every tactic of a single matrix; with several matrices, the tactics with techniques."""
    if len({t.domain for t in tactics}) <= 1:
        return tactics
    return [t for t in tactics if t.total]


def actor_label(a: ActorRef) -> str:
    weight = f", weight {a.weight:g}" if a.weight != 1 else ""
    return f"{a.name} ({a.group_id}{weight})"


def _filters_text(filters: dict[str, Any]) -> str:
    parts = []
    if filters.get("domain"):
        parts.append(f"domain {filters['domain']}")
    if filters.get("platforms"):
        parts.append("platforms " + ", ".join(filters["platforms"]))
    if filters.get("include_software"):
        parts.append("with the actors' software")
    if filters.get("partial_counts_as_covered"):
        parts.append("partial coverage counts as covered")
    return "; ".join(parts)


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(report: AssessmentReport) -> str:
    """The report as Markdown (tables for the tactics and the gaps)."""
    out = [f"# {report.title.title()}", ""]
    out += [
        f"- **Date:** {report.date}",
        "- **ATT&CK:** "
        + ", ".join(f"{d} {v}" for d, v in sorted(report.releases.items()) if v is not None),
        f"- **Inventory:** {_md(report.inventory)} ({report.inventory_format}, "
        f"{report.inventory_rules} rules)",
        "- **Actors:** " + ", ".join(_md(actor_label(a)) for a in report.actors),
    ]
    filt = _filters_text(report.filters)
    if filt:
        out.append(f"- **Filters:** {filt}")
    out += [
        "",
        "| Techniques in scope | Covered | Gaps | Partially covered | Coverage |",
        "|---:|---:|---:|---:|---:|",
        f"| {report.total} | {report.covered} | {report.gaps} | {report.partial} "
        f"| {report.coverage_pct:g}% |",
        "",
        f"Partially covered: {_partial_note(report)}.",
        "",
        "## Coverage by tactic",
        "",
        "| Tactic | Coverage | % | Covered / total |",
        "|---|---|---:|---:|",
    ]
    multi = _label_width(report.tactics)
    for t in _shown_tactics(report.tactics):
        label = (f"{t.domain.split('-')[0]}: " if multi else "") + t.tactic
        p = "-" if t.coverage_pct is None else f"{t.coverage_pct:.0f}%"
        out.append(f"| {label} | `{t.bar}` | {p} | {t.covered}/{t.total} |")
    out += ["", f"## Top {len(report.top_gaps)} priority gaps", ""]
    for g in report.top_gaps:
        out.append(
            f"{g.rank}. **{g.technique_id} {_md(g.name)}** ({', '.join(g.tactics)}), "
            f"priority {g.priority:g}"
        )
        out += [f"   - {_md(r)}" for r in g.reasons]
    if report.telemetry:
        out += [
            "",
            "## Telemetry to collect first",
            "",
            "| # | Source | Techniques gained | Coverage |",
            "|---:|---|---:|---|",
        ]
        out += [
            f"| {s.rank} | {_md(s.source)} | +{s.gain} | "
            f"{s.coverage_before:g}% -> {s.coverage_after:g}% |"
            for s in report.telemetry
        ]
    out += ["", "## Recommendation", ""]
    out += [f"- {_md(r)}" for r in report.recommendation]
    return "\n".join(out) + "\n"
