"""Detection as layers: what an inventory covers (:func:`coverage_layer_for`), the actors'
techniques it does not (:func:`gaps_layer_for`), what chosen telemetry can see
(:func:`telemetry_layer_for`) and the coverage service's collection plan
(:func:`telemetry_plan_layer_for`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

from .. import coverage as C
from ..actors import group_technique_sets
from ..cache import cached_answer
from ..catalog import Q
from ..errors import InvalidInput, NotFound
from ..graph import Graph
from ..resolve import resolve_groups
from .answers import HEAT_GRADIENT, coverage_layer, gaps_layer, telemetry_layer
from .build import build_layer
from .check import validate_layer
from .export import (
    LayerExport,
    LayerKind,
    Tech,
    choose_domain,
    common_options,
    export_filename,
    layer_domain_release,
    make_export,
    meta_release,
    norm_domain,
    partition,
    platform_filter,
    slug,
    technique_index,
)
from .format import Gradient, LayerTechnique, technique_url

__all__ = [
    "PARTIAL_COLOR",
    "PARTIAL_LABEL",
    "TelemetryLevel",
    "coverage_layer_for",
    "gaps_layer_for",
    "telemetry_layer_for",
    "telemetry_plan_layer_for",
]


PARTIAL_COLOR = "#9ecae1"
PARTIAL_LABEL = "partial: rules on its parent or sub-techniques only"


class TelemetryLevel(StrEnum):
    data_component = "data_component"
    log_source = "log_source"


# ---------------------------------------------------------------- telemetry (what sources see)


def _telemetry_index(graph: Graph, domain: str) -> dict[str, list[dict[str, Any]]]:
    """Technique -> the data components and log sources that can show it (read-only: shared
    by every caller until the graph changes)."""

    def read() -> dict[str, list[dict[str, Any]]]:
        rows = graph.read(Q.layer_telemetry_sources, domain=domain, limit=100_000)
        return {r["technique_id"]: r["sources"] for r in rows}

    return graph.cached("layer_telemetry_sources", {"domain": domain}, read)


def _source_names(
    sources_by_technique: Mapping[str, list[dict[str, Any]]], level: TelemetryLevel
) -> dict[str, str]:
    """Every source of ``level`` known in the domain: lower-cased key -> display name.

    Data components are known by name and by ATT&CK id ("Process Creation", "DC0032"); log
    sources by name ("WinEventLog:Security").
    """
    names: dict[str, str] = {}
    for sources in sources_by_technique.values():
        for s in sources:
            if level == TelemetryLevel.data_component:
                display = f"{s['data_component']} ({s['data_component_id']})"
                names[s["data_component"].lower()] = display
                names[str(s["data_component_id"]).lower()] = display
                names[display.lower()] = display
            else:
                for ls in s["log_sources"] or []:
                    names[ls.lower()] = ls
    return names


def _sources_of(sources: list[dict[str, Any]], level: TelemetryLevel) -> list[str]:
    if level == TelemetryLevel.data_component:
        return sorted({f"{s['data_component']} ({s['data_component_id']})" for s in sources})
    return sorted({ls for s in sources for ls in (s["log_sources"] or [])})


def _resolve_sources(
    wanted: Sequence[str], names: Mapping[str, str], level: TelemetryLevel, domain: str
) -> list[str]:
    import difflib

    out: list[str] = []
    for w in wanted:
        key = w.strip().lower()
        if not key:
            continue
        if key not in names:
            close = difflib.get_close_matches(key, list(names), n=5, cutoff=0.6)
            raise NotFound(
                f"no {level.value.replace('_', ' ')} named {w!r} shows any {domain} technique",
                suggestions=list(dict.fromkeys(names[c] for c in close)),
            )
        if names[key] not in out:
            out.append(names[key])
    if not out:
        raise InvalidInput("telemetry: name at least one data component or log source")
    return out


def _actor_techniques(
    graph: Graph, actors: Sequence[str], include_software: bool, domain: str | None
) -> tuple[set[str], list[str]]:
    resolved = resolve_groups(graph, list(actors))
    ids = list(dict.fromkeys(r.attack_id for r in resolved))
    sets = group_technique_sets(graph, ids, include_software=include_software, domain=domain)
    techniques = {t for gid in ids for t in sets.get(gid, ("", {}))[1]}
    names = [f"{r.name} ({r.attack_id})" for r in {r.attack_id: r for r in resolved}.values()]
    return techniques, names


@cached_answer
def telemetry_layer_for(
    graph: Graph,
    *,
    sources: Sequence[str] | None = None,
    level: TelemetryLevel | str = TelemetryLevel.data_component,
    actors: Sequence[str] | Mapping[str, float] | None = None,
    include_software: bool = False,
    inventory: str | None = None,
    domain: str | None = None,
    platforms: Sequence[str] | None = None,
) -> LayerExport:
    """Techniques a chosen set of telemetry sources would let you detect.

    ``sources`` are data components (name or id, ``level="data_component"``) or log sources
    (``level="log_source"``, e.g. ``WinEventLog:Security``). A technique's sources come from
    ATT&CK v18 detection strategies -> analytics -> log sources -> data components, and from v17
    data components that DETECT it. Score = how many of the chosen sources can show it; the
    comment names those and the sources that could show it but are not chosen. Without
    ``actors`` only the techniques the sources see are written; with ``actors`` every technique
    of those actors is written (score 0 where nothing chosen sees it).

    Without ``sources``, ``actors`` and ``inventory`` ask the coverage service's telemetry plan
    (:func:`queries.coverage.prioritize_telemetry`) which sources to collect first: see
    :func:`telemetry_plan_layer_for`.
    """
    lvl = TelemetryLevel(level)
    if sources and inventory:
        raise InvalidInput(
            "telemetry: name the sources collected, or give actors and an inventory for a "
            "collection plan, not both"
        )
    if not sources:
        if actors and inventory:
            return telemetry_plan_layer_for(
                graph,
                actors=actors,
                inventory=inventory,
                level=lvl,
                include_software=include_software,
                domain=domain,
                platforms=platforms,
            )
        raise InvalidInput(
            "telemetry: name the sources collected, or give actors and an inventory for a plan"
        )
    actor_ids: set[str] | None = None
    actor_names: list[str] = []
    dom = norm_domain(domain)
    if actors:
        actor_ids, actor_names = _actor_techniques(graph, list(actors), include_software, dom)
        if dom is None:
            index = technique_index(graph, actor_ids)
            dom = choose_domain(graph, index, actor_ids, None)
    dom = dom or "enterprise-attack"
    release = layer_domain_release(graph, dom)
    by_technique = _telemetry_index(graph, dom)
    chosen = _resolve_sources(sources, _source_names(by_technique, lvl), lvl, dom)
    chosen_set = set(chosen)
    seen_by: dict[str, tuple[list[str], list[str]]] = {}
    for tid, srcs in by_technique.items():
        all_here = _sources_of(srcs, lvl)
        collected = [s for s in all_here if s in chosen_set]
        if collected or (actor_ids is not None and tid in actor_ids):
            seen_by[tid] = (collected, [s for s in all_here if s not in chosen_set])
    wanted = sorted(actor_ids) if actor_ids is not None else sorted(seen_by)
    index = technique_index(graph, wanted)
    kept, left_out = partition(wanted, index, dom)
    kept = _on_platforms(kept, platforms)
    entries = [
        {
            "technique_id": t.technique_id,
            "tactics": list(t.tactics),
            "collected": seen_by.get(t.technique_id, ([], []))[0],
            "missing": seen_by.get(t.technique_id, ([], []))[1],
        }
        for t in kept
    ]
    seen = sum(1 for e in entries if e["collected"])
    notes = []
    if actor_ids is not None:
        notes.append(f"{seen} of {len(entries)} techniques of the actors can be seen")
    metadata: list[Any] = [("collected", ", ".join(chosen)), ("level", lvl.value)]
    if actor_names:
        metadata.append(("actors", ", ".join(actor_names)))
    metadata += [meta_release(release.get("version"), dom), ("generated by", "ttpgraph")]
    layer = telemetry_layer(
        entries,
        name="Telemetry: " + ", ".join(chosen)[:100],
        attack_version=release.get("version"),
        domain=dom,
        platforms=platform_filter(kept, platforms),
        metadata=metadata,
    )
    parts = [slug(s.split(" (")[0], 24) for s in chosen]
    return make_export(
        LayerKind.telemetry,
        layer,
        filename=export_filename(LayerKind.telemetry, parts, dom),
        kept=kept,
        left_out=left_out,
        notes=notes,
    )


# ---------------------------------------------------------------- coverage, gaps, plan


def _inventory_notes(graph: Graph, inventory: str) -> tuple[str, list[str]]:
    """A one-line description of the inventory and notes on ids its import could not place."""
    info = C.inventory_info(graph, inventory=inventory)
    summary = info.summary or {}
    notes = []
    for key, what in (
        ("ids_unknown", "unknown to the loaded release"),
        ("ids_retired", "deprecated or revoked without replacement"),
    ):
        ids = [x.get("id") for x in summary.get(key) or [] if isinstance(x, dict)]
        if ids:
            shown = ", ".join(str(i) for i in ids[:10]) + (" ..." if len(ids) > 10 else "")
            notes.append(f"inventory {info.name}: {len(ids)} ids {what} ({shown})")
    if info.stale:
        notes.append(f"inventory {info.name}: the ATT&CK releases changed since its import")
    line = f"{info.name} ({info.format}, {info.rules} rules, imported {info.imported_at})"
    return line, notes


@cached_answer
def coverage_layer_for(
    graph: Graph,
    *,
    inventory: str,
    domain: str | None = None,
    platforms: Sequence[str] | None = None,
    include_partial: bool = True,
) -> LayerExport:
    """What an imported detection inventory covers: score = number of rules, comment = their
    names (from :func:`queries.coverage.inventory_coverage`).

    Techniques only partially covered (a rule on the parent, or on a sub-technique only) score
    0 and get their own colour, legend item and a comment naming those rules;
    ``include_partial=False`` leaves them out.
    """
    dom = norm_domain(domain)
    cov = C.inventory_coverage(graph, inventory=inventory, domain=dom)
    described, notes = _inventory_notes(graph, inventory)
    by_id = {t.technique_id: t for t in cov.techniques}
    ids = [t.technique_id for t in cov.techniques if include_partial or not t.partial]
    index = technique_index(graph, ids)
    dom = choose_domain(graph, index, ids, dom)
    kept, left_out = partition(ids, index, dom)
    kept = _on_platforms(kept, platforms)
    entries = []
    partial: dict[str, tuple[list[str], int]] = {}
    for tech in kept:
        c = by_id[tech.technique_id]
        if c.partial:
            partial[tech.technique_id] = (list(c.partial_rules), c.partial_rule_count)
        entries.append(
            {
                "technique_id": tech.technique_id,
                "tactics": list(tech.tactics),
                "rules": [] if c.partial else _numbered(c.rules),
                "rule_count": 0 if c.partial else c.rule_count,
                "metadata": [("partial rule", r) for r in c.partial_rules],
            }
        )
    options = common_options(graph, dom, kept, platforms)
    legend = [(f"{PARTIAL_LABEL}", PARTIAL_COLOR)] if partial else []
    full = len(kept) - len(partial)
    layer = coverage_layer(
        entries,
        name=f"Coverage: {cov.inventory}",
        description=(
            f"Score: number of detection rules of inventory {cov.inventory} per technique "
            f"({full} covered, {len(partial)} partially)."
        ),
        legend=legend,
        metadata=[
            ("inventory", described),
            meta_release(options["attack_version"], dom),
            ("generated by", "ttpgraph"),
        ],
        **options,
    )
    for e in layer["techniques"]:
        found = partial.get(e["techniqueID"])
        if found is not None and "score" in e:
            rules, count = found
            n = max(count, len(rules))
            more = f"\n... and {n - len(rules)} more" if n > len(rules) else ""
            e["color"] = PARTIAL_COLOR
            e["comment"] = f"Partially covered ({n} rule{'s' if n != 1 else ''}"
            e["comment"] += " on its parent or sub-techniques):\n" + "\n".join(rules) + more
    validate_layer(layer)
    return make_export(
        LayerKind.coverage,
        layer,
        filename=export_filename(LayerKind.coverage, [cov.inventory], dom),
        kept=kept,
        left_out=left_out,
        notes=notes,
    )


def _numbered(names: Sequence[str]) -> list[str]:
    """Rule names with repeats told apart ("X", "X (2)"): two rules may share a title, and the
    layer builder merges equal names, which would count them once."""
    seen: Counter[str] = Counter()
    out = []
    for name in names:
        seen[name] += 1
        out.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return out


def _on_platforms(kept: list[Tech], platforms: Sequence[str] | None) -> list[Tech]:
    if not platforms:
        return kept
    wanted = {p.lower() for p in platforms}
    return [t for t in kept if any(p.lower() in wanted for p in t.platforms)]


def _actor_line(refs: Sequence[Any]) -> str:
    return ", ".join(
        f"{a.name} ({a.group_id})" + (f" x{a.weight:g}" if a.weight != 1 else "") for a in refs
    )


@cached_answer
def gaps_layer_for(
    graph: Graph,
    *,
    actors: Sequence[str] | Mapping[str, float],
    inventory: str,
    platforms: Sequence[str] | None = None,
    domain: str | None = None,
    include_software: bool = False,
    partial_counts_as_covered: bool = False,
) -> LayerExport:
    """The actors' techniques the inventory does not cover, scored by priority (from
    :func:`queries.coverage.gap_analysis`, rounded to a whole number; the exact value, the
    actors using it and partial rules in the metadata, the reasons in the comment). Sorted by
    score in the Navigator, highest first."""
    dom = norm_domain(domain)
    ga = C.gap_analysis(
        graph,
        actors=dict(actors) if isinstance(actors, Mapping) else list(actors),
        inventory=inventory,
        platforms=list(platforms) if platforms else None,
        domain=dom,
        include_software=include_software,
        partial_counts_as_covered=partial_counts_as_covered,
    )
    described, notes = _inventory_notes(graph, inventory)
    gaps = {t.technique_id: t for t in ga.gap_techniques()}
    index = technique_index(graph, gaps)
    dom = choose_domain(graph, index, gaps, dom)
    kept, left_out = partition(gaps, index, dom)
    names = {a.group_id: f"{a.name} ({a.group_id})" for a in ga.actors}
    entries = []
    for tech in kept:
        g = gaps[tech.technique_id]
        entries.append(
            {
                "technique_id": tech.technique_id,
                "tactics": list(tech.tactics),
                # Whole numbers: mitreattack-python truncates scores to ints, so its SVG and
                # Excel would colour 21.4 as 21; the exact priority stays in the metadata.
                "priority": int(g.priority + 0.5),
                "metadata": [("priority (exact)", f"{g.priority:g}")]
                + [("actor", names.get(a, a)) for a in g.actors]
                + [("partial rule", r) for r in g.partial_rules],
                "reason": "\n".join(g.reasons),
            }
        )
    options = common_options(graph, dom, kept, platforms)
    in_domain = [t for t in ga.techniques if dom in t.domains]
    covered = sum(1 for t in in_domain if t.covered)
    share = C.pct(covered, len(in_domain))
    layer = gaps_layer(
        entries,
        name=f"Gaps: {_short(ga.inventory)} vs " + ", ".join(a.name for a in ga.actors)[:80],
        description=(
            f"Techniques of {_actor_line(ga.actors)} that inventory {ga.inventory} does not "
            f"cover ({len(kept)} of {len(in_domain)}; coverage {share:g}%)."
            " Score: priority of the gap (higher: close it first); reasons in the comment."
        ),
        metadata=[
            ("actors", _actor_line(ga.actors)),
            ("inventory", described),
            ("coverage", f"{covered} of {len(in_domain)} techniques"),
            ("partial counts as covered", "yes" if partial_counts_as_covered else "no"),
            meta_release(options["attack_version"], dom),
            ("generated by", "ttpgraph"),
        ],
        **options,
    )
    return make_export(
        LayerKind.gaps,
        layer,
        filename=export_filename(
            LayerKind.gaps, [ga.inventory, *(a.group_id for a in ga.actors)], dom
        ),
        kept=kept,
        left_out=left_out,
        notes=notes,
    )


def _short(name: str) -> str:
    return name if len(name) <= 40 else name[:39] + "…"


@cached_answer
def telemetry_plan_layer_for(
    graph: Graph,
    *,
    actors: Sequence[str] | Mapping[str, float],
    inventory: str,
    level: TelemetryLevel | str = TelemetryLevel.log_source,
    include_software: bool = False,
    domain: str | None = None,
    platforms: Sequence[str] | None = None,
    collected: Sequence[str] | None = None,
    steps: int = 50,
) -> LayerExport:
    """The coverage service's collection plan as a layer
    (:func:`queries.coverage.prioritize_telemetry`): each gap technique scored by how early the
    telemetry that lets you detect it comes in the plan (step 1 of N scores N, the last step 1;
    0: no ATT&CK telemetry is known for it), the step, source and analytics to build in the
    comment."""
    lvl = TelemetryLevel(level)
    dom = norm_domain(domain)
    plan = C.prioritize_telemetry(
        graph,
        actors=dict(actors) if isinstance(actors, Mapping) else list(actors),
        inventory=inventory,
        platforms=list(platforms) if platforms else None,
        domain=dom,
        include_software=include_software,
        level=lvl.value,
        collected=list(collected) if collected else None,
        limit=steps,
    )
    described, notes = _inventory_notes(graph, inventory)
    step_of: dict[str, C.TelemetryStep] = {}
    for step in plan.steps:
        for tid in step.techniques_gained:
            step_of.setdefault(tid, step)
    unreachable = set(plan.unreachable)
    # Every gap is written: reached by a step, known to no telemetry, or beyond the last step.
    gaps = C.gap_analysis(
        graph,
        actors=dict(actors) if isinstance(actors, Mapping) else list(actors),
        inventory=inventory,
        platforms=list(platforms) if platforms else None,
        domain=dom,
        include_software=include_software,
    ).gap_techniques()
    ids = list(step_of) + [t.technique_id for t in gaps if t.technique_id not in step_of]
    index = technique_index(graph, ids)
    dom = choose_domain(graph, index, ids, dom)
    kept, left_out = partition(ids, index, dom)
    n = len(plan.steps)
    techniques = []
    for tech in kept:
        found = step_of.get(tech.technique_id)
        if found is None:
            why = (
                "No ATT&CK telemetry is known for this gap."
                if tech.technique_id in unreachable
                else f"Telemetry can show this gap, but only after the plan's {n} steps."
            )
            techniques.append(
                LayerTechnique(
                    technique_id=tech.technique_id,
                    tactics=list(tech.tactics),
                    score=0,
                    comment=why,
                    metadata=[("step", "none")],
                    links=[("ATT&CK: " + tech.technique_id, technique_url(tech.technique_id))],
                )
            )
            continue
        step = found
        lines = [
            f"Step {step.rank} of {n}: collect {step.source} (+{step.gain} gap techniques, "
            f"coverage {step.coverage_before:g}% -> {step.coverage_after:g}%)"
        ]
        for a in step.analytics:
            if a.technique_id == tech.technique_id:
                lines.append(
                    f"Build analytic {a.analytic_id} ({a.strategy_id} {a.strategy})"
                    + (f": {', '.join(a.channels)}" if a.channels else "")
                )
        techniques.append(
            LayerTechnique(
                technique_id=tech.technique_id,
                tactics=list(tech.tactics),
                score=n - step.rank + 1,
                comment="\n".join(lines),
                metadata=[
                    ("step", str(step.rank)),
                    ("collect", step.source),
                    *(("data component", d) for d in step.data_components),
                ],
                links=[("ATT&CK: " + tech.technique_id, technique_url(tech.technique_id))],
            )
        )
    options = common_options(graph, dom, kept, platforms)
    plan_meta: list[Any] = [
        (
            f"step {s.rank}",
            f"{s.source} (+{s.gain}, {s.coverage_before:g}% -> {s.coverage_after:g}%)",
        )
        for s in plan.steps[:15]
    ]
    layer = build_layer(
        techniques,
        name=f"Telemetry plan: {_short(plan.inventory)} vs "
        + ", ".join(a.name for a in plan.actors)[:80],
        description=(
            f"Which telemetry ({lvl.value.replace('_', ' ')}s) to collect first to detect the "
            f"gaps of {_actor_line(plan.actors)} in inventory {plan.inventory}. Score: step 1 "
            f"of {n} scores {n}, the last step 1; 0: no ATT&CK telemetry is known."
        ),
        gradient=Gradient(HEAT_GRADIENT, 0, max(n, 2)),
        sorting=3,
        metadata=[
            ("actors", _actor_line(plan.actors)),
            ("inventory", described),
            ("level", lvl.value),
            *plan_meta,
            meta_release(options["attack_version"], dom),
            ("generated by", "ttpgraph"),
        ],
        **options,
    )
    parts = [plan.inventory, *(a.group_id for a in plan.actors)]
    return make_export(
        LayerKind.telemetry,
        layer,
        filename=export_filename(LayerKind.telemetry, ["plan", *parts], dom),
        kept=kept,
        left_out=left_out,
        notes=notes,
    )
