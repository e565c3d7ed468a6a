"""Release snapshots: what a diff compares. One domain's techniques (names, tactics,
revoked/deprecated and the replacement), tactics, groups with the techniques each uses by every
path kind, and the detection model (data components that DETECTS techniques in ATT&CK v17;
detection strategies -> analytics -> log sources -> data components in v18). A snapshot comes
from the loaded graph (:func:`snapshot_from_graph`) or from a bundle
(``loader.diff.snapshot_from_objects``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from ..catalog import Q
from ..errors import InvalidInput, NotFound
from ..graph import Graph

DOMAINS = ("enterprise-attack", "mobile-attack", "ics-attack")
_ALIASES = {"enterprise": "enterprise-attack", "mobile": "mobile-attack", "ics": "ics-attack"}
ALL_ROWS = 1_000_000  # every row of a release (ATT&CK has ~1,400 techniques per domain at most)


def normalize_domain(value: str) -> str:
    text = value.strip().lower()
    text = _ALIASES.get(text, text)
    if text not in DOMAINS:
        raise InvalidInput(f"unknown domain {value!r}: use enterprise, mobile or ics")
    return text


class TechniqueState(BaseModel):
    stix_id: str
    attack_id: str | None
    name: str
    tactics: list[str] = Field(description="tactic shortnames, sorted")
    platforms: list[str] = Field(default_factory=list)
    is_subtechnique: bool = False
    revoked: bool = False
    deprecated: bool = False
    replaced_by: str | None = Field(default=None, description="ATT&CK id of the final replacement")
    replaced_by_name: str | None = None

    @property
    def current(self) -> bool:
        return not self.revoked and not self.deprecated


class TacticState(BaseModel):
    stix_id: str
    attack_id: str | None
    name: str
    shortname: str = Field(description="what a technique's kill chain phase names it by")
    revoked: bool = False
    deprecated: bool = False

    @property
    def current(self) -> bool:
        return not self.revoked and not self.deprecated


class GroupState(BaseModel):
    stix_id: str
    attack_id: str | None
    name: str
    revoked: bool = False
    deprecated: bool = False
    techniques: list[str] = Field(description="ATT&CK ids of techniques used directly, sorted")
    campaign_techniques: list[str] = Field(
        default_factory=list, description="used in campaigns attributed to the group, sorted"
    )
    software_techniques: list[str] = Field(
        default_factory=list,
        description="used by the group's software (its own and its campaigns'), sorted",
    )


class ComponentDetection(BaseModel):
    stix_id: str
    attack_id: str | None
    name: str
    retired: bool = False
    direct: list[str] = Field(description="techniques the component DETECTS itself (v17 model)")
    via: list[str] = Field(
        description="techniques reached through log sources -> analytics -> detection strategies "
        "(v18 model)"
    )


class DetectionSummary(BaseModel):
    model: Literal["data components (v17)", "detection strategies (v18)", "both", "none"]
    component_detects: int = Field(description="current DataComponent-DETECTS->Technique edges")
    component_techniques: int = Field(description="techniques detected by data components")
    strategies: int = Field(description="current detection strategies")
    strategy_techniques: int = Field(description="techniques detected by detection strategies")
    analytics: int
    log_sources: int = Field(description="log sources the current analytics use")


def detection_model(component_detects: int, strategies: int) -> str:
    if component_detects and strategies:
        return "both"
    if component_detects:
        return "data components (v17)"
    if strategies:
        return "detection strategies (v18)"
    return "none"


class ReleaseSnapshot(BaseModel):
    domain: str
    version: str | None
    source: str
    techniques: list[TechniqueState]
    groups: list[GroupState]
    components: list[ComponentDetection]
    detection: DetectionSummary
    tactics: list[TacticState] = Field(default_factory=list)
    warnings: list[str] = Field(
        default_factory=list,
        description="what the bundle's validation let through with a word (a retired technique "
        "whose kill chain phase names no tactic of the release)",
    )


def snapshot_from_graph(graph: Graph, *, domain: str) -> ReleaseSnapshot:
    """The loaded release of ``domain`` as a snapshot; NotFound when none is loaded."""
    domain = normalize_domain(domain)
    rel = [r for r in graph.read(Q.releases, limit=100) if r["domain"] == domain]
    if not rel:
        raise NotFound(f"no {domain} release is loaded: load one first (ttpgraph load)")
    techniques = [
        TechniqueState(**{**r, "tactics": sorted(set(r["tactics"]))})
        for r in graph.read(Q.release_techniques, domain=domain, limit=ALL_ROWS)
    ]
    groups = [
        GroupState(
            **{
                **r,
                "techniques": sorted(r["techniques"]),
                "campaign_techniques": sorted(r["campaign_techniques"]),
                "software_techniques": sorted(r["software_techniques"]),
            }
        )
        for r in graph.read(Q.release_group_techniques, domain=domain, limit=ALL_ROWS)
    ]
    components = [
        ComponentDetection(**{**r, "direct": sorted(r["direct"]), "via": sorted(r["via"])})
        for r in graph.read(Q.release_component_detections, domain=domain, limit=ALL_ROWS)
    ]
    tactics = [
        TacticState(**r) for r in graph.read(Q.release_tactic_states, domain=domain, limit=ALL_ROWS)
    ]
    c = graph.read(Q.release_detection_counts, domain=domain)[0]
    detection = DetectionSummary(
        model=detection_model(c["component_detects"], c["strategies"]),  # type: ignore[arg-type]
        **c,
    )
    return ReleaseSnapshot(
        domain=domain,
        version=rel[0]["version"],
        source=f"graph ({rel[0]['source']})",
        techniques=techniques,
        groups=groups,
        components=components,
        detection=detection,
        tactics=tactics,
    )
