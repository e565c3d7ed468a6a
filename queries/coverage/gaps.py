"""Gap analysis: the techniques of a threat model (the actors' techniques) held against an
inventory, ranked by priority, with coverage per tactic.

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

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from ..cache import cached_answer
from ..catalog import Q
from ..errors import Conflict, InvalidInput, TtpgraphError
from ..graph import Graph
from ..kinds import path_kinds
from ..resolve import read_for_groups
from .common import (
    actor_refs,
    bar,
    check_domain,
    check_platforms,
    gap_scopes,
    pct,
    weighted_actors,
)
from .inventories import check_inventory, mapping_warnings
from .models import ActorRef, GapAnalysis, PriorityWeights, TacticCoverage

PARTIAL_FACTOR = 0.5


def _inventory_rules(graph: Graph, inventory: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    """technique id -> {rules, partial_rules, via}: the inventory's rules covering ``ids``."""
    if not ids:
        return {}
    rows = graph.read(Q.coverage_rules_for_techniques, inventory=inventory, technique_ids=ids)
    return {r["technique_id"]: r for r in rows}


def _reasons(
    f: dict[str, Any],
    users: list[str],
    actor_weight: float,
    *,
    total_groups: int,
    n_actors: int,
    actor_names: dict[str, str],
    total_weight: float,
    weighted: bool,
    partial_note: str | None,
) -> list[str]:
    share = f"{len(users)} of {n_actors} selected actors"
    if weighted:
        share += f" (weight {actor_weight:g} of {total_weight:g})"
    reasons = [
        f"used by {share}: {', '.join(f'{actor_names[g]} ({g})' for g in users)}",
        f"used by {f['groups_using']} of {total_groups} ATT&CK groups "
        f"({pct(f['groups_using'], total_groups):g}%)",
    ]
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
    sub-techniques as covered. :func:`gap_answer` as a model.
    """
    return GapAnalysis.model_validate(
        gap_answer(
            graph,
            actors=actors,
            inventory=inventory,
            platforms=platforms,
            domain=domain,
            include_software=include_software,
            partial_counts_as_covered=partial_counts_as_covered,
            weights=weights,
        )
    )


@cached_answer(scopes=gap_scopes)
def gap_answer(
    graph: Graph,
    *,
    actors: list[str] | dict[str, float],
    inventory: str,
    platforms: list[str] | None = None,
    domain: str | None = None,
    include_software: bool = False,
    partial_counts_as_covered: bool = False,
    weights: PriorityWeights | None = None,
) -> dict[str, Any]:
    """A gap analysis as JSON-ready data in the shape of :class:`GapAnalysis` (fields in its
    order): what the API sends, serialised as it is (validating 5 actors' analysis into models
    and dumping them took 2.3 ms, orjson on this data 0.3). One catalog query (and, after a
    release was loaded since the import, the inventory's rules) and :func:`shape_gaps`."""
    w = (weights or PriorityWeights()).normalised()
    model, row = ThreatModel.ask(
        graph,
        Q.gap_analysis,
        actors=actors,
        inventory=inventory,
        platforms=platforms,
        domain=domain,
        include_software=include_software,
        partial_counts_as_covered=partial_counts_as_covered,
    )
    return shape_gaps(
        row,
        model.rules(graph, row, row["technique_ids"]),
        refs=model.refs,
        weights=w,
        filters=model.filters,
    )


@dataclass(frozen=True)
class ThreatModel:
    """A threat model held against an inventory, checked and resolved: the actors, the
    inventory's name and the filters an answer reports."""

    refs: list[ActorRef]
    inventory: str
    filters: dict[str, Any]

    @classmethod
    def ask(
        cls,
        graph: Graph,
        query: str,
        *,
        actors: list[str] | dict[str, float],
        inventory: str,
        platforms: list[str] | None,
        domain: str | None,
        include_software: bool,
        partial_counts_as_covered: bool,
    ) -> tuple[ThreatModel, dict[str, Any]]:
        """The threat model checked, its actors resolved and ``query`` (``gap_analysis``,
        ``telemetry_plan``: one row) answered for them - in one round trip when the actors are
        what they look like (``queries.resolve.read_for_groups``)."""
        if not isinstance(inventory, str) or not inventory.strip():
            raise InvalidInput("inventory: give the name of an imported inventory")
        dom = check_domain(domain)
        plats = check_platforms(platforms)
        params = {
            "kinds": path_kinds(include_software),
            "domain": dom,
            "platforms": plats,
            "inventory": inventory.strip(),
        }
        try:
            items = weighted_actors(actors)
            resolved, rows = read_for_groups(graph, query, [n for n, _ in items], **params)
            refs = actor_refs(items, resolved)
        except TtpgraphError:
            check_inventory(graph, inventory)  # a missing inventory is named first
            raise
        model = cls(
            refs=refs,
            inventory=inventory.strip(),
            filters={
                "platforms": plats,
                "domain": dom,
                "include_software": include_software,
                "partial_counts_as_covered": partial_counts_as_covered,
            },
        )
        return model, rows[0]

    def rules(
        self, graph: Graph, row: dict[str, Any], technique_ids: list[str]
    ) -> dict[str, dict[str, Any]]:
        """technique id -> the inventory's rules on it, from the query's ``row``: as the import
        stored them, or (a release was loaded since) computed from the rules' COVERS edges on
        ``technique_ids`` (the threat model's)."""
        if row["inventory"] is None:
            check_inventory(graph, self.inventory)
        if row["coverage_stored"]:
            return {r["technique_id"]: r for r in row["coverage"]}
        return _inventory_rules(graph, row["inventory"], technique_ids)


def coverage_state(cov: dict[str, Any], *, partial_counts_as_covered: bool) -> tuple[bool, bool]:
    """(covered, partial) of a technique, from the inventory's rules on it (``rule_count``:
    rules on the technique itself; ``partial_rule_count``: only on its parent or sub-techniques).
    """
    full = bool(cov.get("rule_count") or cov.get("rules"))
    partial = not full and bool(cov.get("partial_rule_count") or cov.get("partial_rules"))
    return full or (partial and partial_counts_as_covered), partial


# The fields of gap_analysis's techniques, which it returns as lists.
TECHNIQUE_FIELDS = (
    "technique_id", "name", "is_subtechnique", "parent_id", "parent_name", "tactics",
    "tactic_names", "tactic_orders", "matrix_widths", "tactic_domains", "platforms", "domains",
    "url", "detection_strategies", "analytics", "data_components", "mitigations",
    "groups_using", "actors",
)  # fmt: skip


def shape_gaps(
    row: dict[str, Any],
    rules: dict[str, dict[str, Any]],
    *,
    refs: list[ActorRef],
    weights: dict[str, float],
    filters: dict[str, Any],
) -> dict[str, Any]:
    """``gap_analysis``'s row and the inventory's rules per technique as the ranked answer's
    data (:class:`GapAnalysis`'s shape)."""
    partial_counts_as_covered = filters["partial_counts_as_covered"]
    dom = filters["domain"]
    w = weights
    weight_of = {a.group_id: a.weight for a in refs}
    names = {a.group_id: a.name for a in refs}
    total_weight = sum(weight_of.values())
    weighted = len({a.weight for a in refs}) > 1
    total_groups = row["total_groups"]
    facts = {t[0]: dict(zip(TECHNIQUE_FIELDS, t, strict=True)) for t in row["techniques"]}
    if any(f["groups_using"] is None for f in facts.values()):
        raise Conflict(
            "the graph's ATT&CK was loaded by an earlier ttpgraph (its techniques lack the "
            "facts a gap analysis ranks by): load it again (ttpgraph load, as it was loaded)"
        )
    max_groups = max((f["groups_using"] for f in facts.values()), default=0) or 1
    rows: list[dict[str, Any]] = []
    for tid, f in facts.items():
        groups_using = f["groups_using"]
        users = sorted({a["group_id"] for a in f["actors"]})
        actor_weight = sum(weight_of.get(g, 0.0) for g in users)
        cov = rules.get(tid, {})
        full = cov.get("rules") or []
        part = cov.get("partial_rules") or []
        covered, partial = coverage_state(cov, partial_counts_as_covered=partial_counts_as_covered)
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
        rows.append(
            {
                "technique_id": tid,
                "name": f["name"],
                "is_subtechnique": bool(f["is_subtechnique"]),
                "parent_id": f["parent_id"],
                "parent_name": f["parent_name"],
                "tactics": f["tactics"] or [],
                "tactic_names": f["tactic_names"] or [],
                "platforms": f["platforms"] or [],
                "domains": f["domains"] or [],
                "url": f["url"],
                "covered": covered,
                "partial": partial,
                "rules": full,
                "rule_count": cov.get("rule_count") or len(full),
                "partial_rules": part,
                "partial_rule_count": cov.get("partial_rule_count") or len(part),
                "actors": users,
                "kinds": {a["group_id"]: sorted(a["kinds"]) for a in f["actors"]},
                "actor_weight": round(float(actor_weight), 4),
                "groups_using": groups_using,
                "total_groups": total_groups,
                "detection_strategies": f["detection_strategies"],
                "analytics": f["analytics"],
                "data_components": f["data_components"],
                "mitigations": f["mitigations"],
                "factors": {k: round(v, 4) for k, v in factors.items()},
                "priority": round(score, 1),
                "reasons": _reasons(
                    f,
                    users,
                    actor_weight,
                    total_groups=total_groups,
                    n_actors=len(refs),
                    actor_names=names,
                    total_weight=total_weight,
                    weighted=weighted,
                    partial_note=partial_note,
                ),
            }
        )
    rows.sort(key=lambda t: (t["covered"], -t["priority"], t["technique_id"]))
    techniques = rows
    domains = sorted(
        {
            d
            for t in techniques
            for d in (facts[t["technique_id"]]["tactic_domains"] or t["domains"])
        }
        | ({dom} if dom else set())
    )
    tactics = _tactic_rows(techniques, facts, [r for r in row["tactics"] if r["domain"] in domains])
    covered_n = sum(1 for t in techniques if t["covered"])
    releases = {r["domain"]: r["version"] for r in row["releases"]}
    mapped, warnings = mapping_warnings(
        {"name": row["inventory"], "releases": row["inventory_releases"]}, releases, dom
    )
    return {
        "inventory": row["inventory"],
        "actors": [a.model_dump() for a in refs],
        "filters": filters,
        "weights": {k: round(float(v), 4) for k, v in w.items()},
        "releases": releases,
        "inventory_releases": mapped,
        "warnings": warnings,
        "total": len(techniques),
        "covered": covered_n,
        "partial": sum(1 for t in techniques if t["partial"]),
        "gaps": len(techniques) - covered_n,
        "coverage_pct": pct(covered_n, len(techniques)),
        "tactics": tactics,
        "techniques": techniques,
    }


def _tactic_rows(
    techniques: list[dict[str, Any]],
    facts: dict[str, dict[str, Any]],
    matrix: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for t in techniques:
        tactic_domains = facts[t["technique_id"]]["tactic_domains"] or []
        for d, s in zip(tactic_domains, t["tactics"], strict=False):
            c = counts[(d, s)]
            c[0] += 1
            c[1] += int(t["covered"])
            c[2] += int(t["partial"])
    rows = []
    for r in matrix:
        total, covered, partial = counts.get((r["domain"], r["shortname"]), [0, 0, 0])
        p = pct(covered, total) if total else None
        rows.append(
            {
                "domain": r["domain"],
                "tactic_id": r["tactic_id"],
                "tactic": r["name"],
                "shortname": r["shortname"],
                "order": r["order"],
                "total": total,
                "covered": covered,
                "partial": partial,
                "gaps": total - covered,
                "coverage_pct": p,
                "bar": bar(p),
            }
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
