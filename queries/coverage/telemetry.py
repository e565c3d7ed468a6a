"""Which telemetry to collect first: greedy marginal gain over a gap analysis's gaps, with the
ATT&CK analytics each step makes buildable."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from ..cache import cached_answer
from ..catalog import Q
from ..errors import Conflict, InvalidInput
from ..graph import Graph
from ..kinds import TelemetryLevel
from .common import gap_scopes, pct, real_channel
from .gaps import ThreatModel, coverage_state
from .inventories import mapping_warnings
from .models import TelemetryAnalytic, TelemetryPlan, TelemetryStep
from .stored import decode_telemetry


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
    model, row = ThreatModel.ask(
        graph,
        Q.telemetry_plan,
        actors=actors,
        inventory=inventory,
        platforms=platforms,
        domain=domain,
        include_software=include_software,
        partial_counts_as_covered=partial_counts_as_covered,
    )
    rules = model.rules(graph, row, [t["technique_id"] for t in row["techniques"]])
    return shape_telemetry(row, rules, model=model, level=lvl, collected=collected, limit=limit)


def shape_telemetry(
    row: dict[str, Any],
    rules: dict[str, dict[str, Any]],
    *,
    model: ThreatModel,
    level: TelemetryLevel,
    collected: list[str] | None,
    limit: int,
) -> TelemetryPlan:
    """``telemetry_plan``'s row and the inventory's rules per technique as the greedy plan:
    each step the source that reaches the most actor-weighted gaps not reached yet."""
    pcac = model.filters["partial_counts_as_covered"]
    weight_of = {a.group_id: a.weight for a in model.refs}
    total = len(row["techniques"])
    weight: dict[str, float] = {}  # the gaps, with their actors' summed weight
    for t in row["techniques"]:
        covered_t, _ = coverage_state(
            rules.get(t["technique_id"], {}), partial_counts_as_covered=pcac
        )
        if not covered_t:
            weight[t["technique_id"]] = sum(weight_of.get(g, 0.0) for g in set(t["actors"]))
    covered_now = total - len(weight)
    releases = {r["domain"]: r["version"] for r in row["releases"]}
    _, warnings = mapping_warnings(
        {"name": row["inventory"], "releases": row["inventory_releases"]},
        releases,
        model.filters["domain"],
    )
    v18, v17 = stored_telemetry(row["telemetry"], set(weight), model.filters["platforms"])
    reach: dict[str, set[str]] = defaultdict(set)
    kind: dict[str, str] = {}
    dcs: dict[str, set[str]] = defaultdict(set)
    from_v17: set[str] = set()
    rows_of: dict[str, list[dict[str, Any]]] = defaultdict(list)  # each step reads its own
    for r in v18:
        key = r["log_source"] if level == TelemetryLevel.log_source else r["data_component"]
        rows_of[key].append(r)
        reach[key].add(r["technique_id"])
        kind[key] = level.value
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
    for src in list(reach):
        if src.lower() in have:
            remaining -= reach[src]
            del reach[src]
    steps: list[TelemetryStep] = []
    covered = covered_now
    while remaining and len(steps) < limit and reach:
        # the most actor weight gained, then the most techniques, then the name; a source that
        # gains nothing now never will (what remains only shrinks)
        best: str | None = None
        best_key: tuple[float, int, str] = (0.0, 0, "")
        gains: set[str] = set()
        for src in list(reach):
            gain = reach[src] & remaining
            if not gain:
                del reach[src]
                continue
            key = (-sum(weight[t] for t in gain), -len(gain), src)
            if best is None or key < best_key:
                best, best_key, gains = src, key, gain
        if best is None:
            break
        gained = sorted(gains)
        remaining -= gains
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
                coverage_before=pct(before, total),
                coverage_after=pct(covered, total),
                analytics=_step_analytics(rows_of.get(best, []), best, gains, level),
                v17=best in from_v17,
            )
        )
        del reach[best]
    return TelemetryPlan(
        warnings=warnings,
        inventory=row["inventory"],
        actors=model.refs,
        level=level,
        filters={**model.filters, "collected": sorted(have)},
        total=total,
        covered=covered_now,
        gaps=total - covered_now,
        coverage_pct=pct(covered_now, total),
        steps=steps,
        reachable=len(reachable),
        unreachable=sorted(set(weight) - reachable),
        final_coverage_pct=pct(covered, total),
    )


def stored_telemetry(
    stored: list[dict[str, Any]], ids: set[str], platforms: list[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The v18 and v17 telemetry rows of the techniques ``ids`` (v18: of analytics for one of
    the ``platforms``, lower-case; all when none), from what the release load stored on them."""
    v18: list[dict[str, Any]] = []
    v17: list[dict[str, Any]] = []
    for t in stored:
        if t["technique_id"] not in ids:
            continue
        if t["telemetry"] is None:
            raise Conflict(
                "the graph's ATT&CK was loaded by an earlier ttpgraph (its techniques lack the "
                "telemetry a plan reads): load it again (ttpgraph load, as it was loaded)"
            )
        rows18, rows17 = decode_telemetry(t["technique_id"], t["telemetry"])
        v18 += [r for r in rows18 if not platforms
                or any(str(p).lower() in platforms for p in r["platforms"] or [])]  # fmt: skip
        v17 += rows17
    return v18, v17


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
