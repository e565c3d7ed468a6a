"""ATT&CK releases over time: what changes between two releases, and what that means for the
organisation's detection rules and threat models.

A :class:`ReleaseSnapshot` (``snapshots``) is what a diff compares, from the loaded graph or from
a bundle (``loader.diff.snapshot_from_objects``); :func:`diff_snapshots` (``diff``) compares two
of them, whatever their origin; :func:`rule_impact` (``impact``) judges the techniques each
inventory rule is tagged with against a release; :func:`model_change` (``model_change``) says how
a threat model's coverage changes; ``render`` draws a diff as a Navigator layer or Markdown.
"""

from .diff import (
    ComponentChange,
    DetectionChange,
    GroupChange,
    ReleaseDiff,
    TechniqueChange,
    TechniqueMoved,
    TechniqueRenamed,
    TechniqueRevoked,
    diff_snapshots,
)
from .impact import (
    InventoryImpact,
    RuleImpact,
    TaggedRule,
    inventory_rules,
    release_impact,
    rule_impact,
    technique_domains,
)
from .model_change import (
    InventoryOptions,
    ModelSide,
    ModelTacticChange,
    ModelTechniqueChange,
    ReleaseIndex,
    ThreatModelChange,
    inventory_options,
    judge_model,
    model_change,
    threat_model_changes,
)
from .render import (
    COVERED_COLOR,
    GAP_COLOR,
    PARTIAL_COLOR,
    diff_layer,
    diff_markdown,
    model_change_layer,
    model_headline,
)
from .snapshots import (
    DOMAINS,
    ComponentDetection,
    DetectionSummary,
    GroupState,
    ReleaseSnapshot,
    TechniqueState,
    detection_model,
    normalize_domain,
    snapshot_from_graph,
)

__all__ = [
    "COVERED_COLOR",
    "DOMAINS",
    "GAP_COLOR",
    "PARTIAL_COLOR",
    "ComponentChange",
    "ComponentDetection",
    "DetectionChange",
    "DetectionSummary",
    "GroupChange",
    "GroupState",
    "InventoryImpact",
    "InventoryOptions",
    "ModelSide",
    "ModelTacticChange",
    "ModelTechniqueChange",
    "ReleaseDiff",
    "ReleaseIndex",
    "ReleaseSnapshot",
    "RuleImpact",
    "TaggedRule",
    "TechniqueChange",
    "TechniqueMoved",
    "TechniqueRenamed",
    "TechniqueRevoked",
    "TechniqueState",
    "ThreatModelChange",
    "detection_model",
    "diff_layer",
    "diff_markdown",
    "diff_snapshots",
    "inventory_options",
    "inventory_rules",
    "judge_model",
    "model_change",
    "model_change_layer",
    "model_headline",
    "normalize_domain",
    "release_impact",
    "rule_impact",
    "snapshot_from_graph",
    "technique_domains",
    "threat_model_changes",
]
