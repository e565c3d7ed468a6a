"""Detection coverage: what an inventory covers, the gaps of a threat model ranked by priority,
and which telemetry to collect first. Answered from the graph (see ``docs/coverage.md``).

Modules: :mod:`.models` (the answers), :mod:`.common` (domains, platforms, actors and their
weights, percentages), :mod:`.inventories` (the inventories imported and what each covers),
:mod:`.gaps` (the gap analysis and how a gap's priority is computed) and :mod:`.telemetry`
(which telemetry to collect first). The names callers use are re-exported here
(``from queries import coverage as C; C.gap_analysis(...)``).
"""

from __future__ import annotations

from ..kinds import TelemetryLevel
from .common import (
    BAR_WIDTH,
    DOMAINS,
    MAX_ACTORS,
    actors_with_weights,
    bar,
    check_domain,
    check_platforms,
    gap_scopes,
    now_iso,
    parse_actor_args,
    parse_weights,
    pct,
    real_channel,
    resolve_actors,
    split_values,
)
from .gaps import (
    PARTIAL_FACTOR,
    ThreatModel,
    coverage_state,
    gap_analysis,
    gap_answer,
    shape_gaps,
    tactic_bar_lines,
)
from .inventories import (
    check_inventory,
    inventory_coverage,
    inventory_info,
    inventory_rules,
    list_inventories,
    mapping_warnings,
)
from .models import (
    ActorRef,
    CoveredTechnique,
    GapAnalysis,
    GapTechnique,
    InventoryCoverage,
    InventoryInfo,
    InventoryRecord,
    InventoryRule,
    PriorityWeights,
    RuleCovers,
    TacticCoverage,
    TelemetryAnalytic,
    TelemetryPlan,
    TelemetryStep,
)
from .telemetry import prioritize_telemetry, shape_telemetry, stored_telemetry, telemetry_rows

__all__ = [
    "BAR_WIDTH",
    "DOMAINS",
    "MAX_ACTORS",
    "PARTIAL_FACTOR",
    "ActorRef",
    "CoveredTechnique",
    "GapAnalysis",
    "GapTechnique",
    "InventoryCoverage",
    "InventoryInfo",
    "InventoryRecord",
    "InventoryRule",
    "PriorityWeights",
    "RuleCovers",
    "TacticCoverage",
    "TelemetryAnalytic",
    "TelemetryLevel",
    "TelemetryPlan",
    "TelemetryStep",
    "actors_with_weights",
    "ThreatModel",
    "coverage_state",
    "bar",
    "check_domain",
    "check_inventory",
    "check_platforms",
    "gap_analysis",
    "gap_answer",
    "gap_scopes",
    "inventory_coverage",
    "inventory_info",
    "inventory_rules",
    "list_inventories",
    "mapping_warnings",
    "now_iso",
    "parse_actor_args",
    "parse_weights",
    "pct",
    "prioritize_telemetry",
    "real_channel",
    "resolve_actors",
    "shape_gaps",
    "split_values",
    "tactic_bar_lines",
    "shape_telemetry",
    "stored_telemetry",
    "telemetry_rows",
]
