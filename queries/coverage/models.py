"""The answers of the coverage services (pydantic models): inventories and their rules, covered
techniques, gap analyses, telemetry plans, and the weights of a gap's priority."""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, Field

from ..errors import InvalidInput
from ..kinds import TelemetryLevel


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
