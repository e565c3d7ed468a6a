"""The answers about the organisation's intelligence, as the CLI and the API give them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

ActorKind = Literal["attack-group", "org-cluster"]


class ImportResult(BaseModel):
    source: str = Field(description="the import's label; importing it again replaces it")
    flavour: str = Field(description="opencti, workbench, misp, stix, misp-json or incident")
    file: str | None = None
    sha256: str | None = None
    replaced: bool = Field(description="an earlier import of the same source was replaced")
    nodes: dict[str, int] = Field(description="nodes written per label")
    relationships: dict[str, int] = Field(description="relationships written per type")
    same_as: int = Field(0, description="SAME_AS links made to ATT&CK objects (on request)")
    skipped: dict[str, int] = Field(description="objects and references not imported, and why")
    warnings: list[str]
    seconds: float


class IntelSource(BaseModel):
    source: str
    flavour: str | None = None
    file: str | None = None
    sha256: str | None = None
    imported_at: str | None = None
    nodes: int | None = None
    relationships: int | None = None
    counts: dict[str, int] = {}
    warnings: list[str] = []


class IncidentSummary(BaseModel):
    stix_id: str
    name: str
    source: str
    kind: str = Field(description="incident or report")
    date: str | None = None
    techniques: int
    iocs: int
    imported_at: str | None = None


class ObservedTechnique(BaseModel):
    technique_id: str
    name: str
    tactics: list[str] = []
    weight: float = Field(description="rarity weight (IDF) over the actors compared")
    actors_using: int = Field(description="how many of the actors compared use it")


class TechniqueEvidence(BaseModel):
    kind: str = Field(description="direct, software or campaign")
    via_id: str | None = None
    via_name: str | None = None
    procedure: str | None = None
    technique_id: str | None = Field(None, description="the sub-technique, when rolled up")
    citations: list[str] = []
    citation_urls: list[str] = []
    source: str | None = Field(None, description="the organisation's import it came from")


class SharedTechnique(BaseModel):
    technique_id: str
    name: str
    weight: float
    kinds: list[str]
    evidence: list[TechniqueEvidence] = []


class ActorMatch(BaseModel):
    rank: int
    actor_id: str = Field(description="ATT&CK id (G0016) or the cluster's STIX id")
    name: str
    kind: ActorKind
    sources: list[str] = Field([], description="imports that hold the cluster")
    score: float = Field(description="sqrt(similarity * coverage), 0..1: what ranks")
    similarity: float = Field(description="IDF-weighted cosine similarity of the two sets, 0..1")
    coverage: float = Field(description="weighted share of the observed techniques it uses, 0..1")
    shared: int
    missing: int = Field(description="observed techniques it is not known to use")
    technique_count: int
    unobserved: int = Field(description="its techniques not observed (what may come next)")
    shared_techniques: list[SharedTechnique]
    missing_techniques: list[str]
    same_as: list[str] = Field([], description="SAME_AS links: ATT&CK groups or clusters")


class Attribution(BaseModel):
    observed: list[ObservedTechnique]
    incident: str | None = None
    notes: list[str] = []
    domain: str | None
    include_software: bool
    include_org: bool
    rollup: bool
    actors_compared: int
    unused: list[str] = Field(description="observed techniques no compared actor uses")
    method: str
    candidates: list[ActorMatch]


class RecallGroup(BaseModel):
    group_id: str
    name: str
    technique_count: int
    sample_size: int
    trials: int
    hits: int
    rate: float
    ranks: list[int]
    median_rank: float


class RecallReport(BaseModel):
    fraction: float
    noise: int
    top: int
    trials: int
    seed: int
    domain: str | None
    include_software: bool
    actors_compared: int
    hits: int
    total: int
    rate: float
    groups: list[RecallGroup]


class IocMatch(BaseModel):
    label: str
    stix_id: str
    stix_type: str | None = None
    name: str | None = None
    value: str | None = None
    pattern: str | None = None
    source: str
    score: float | None = None
    valid_from: str | None = None
    valid_until: str | None = None
    description: str | None = None
    revoked: bool = False


class PathNode(BaseModel):
    label: str | None
    id: str
    name: str | None = None
    source: str | None = None


class PathRelationship(BaseModel):
    type: str
    forward: bool = Field(description="points from the node before it to the node after it")


class IocPath(BaseModel):
    nodes: list[PathNode]
    relationships: list[PathRelationship]

    def text(self) -> str:
        out = _node_text(self.nodes[0])
        for rel, node in zip(self.relationships, self.nodes[1:], strict=False):
            arrow = f"-[{rel.type}]->" if rel.forward else f"<-[{rel.type}]-"
            out += f" {arrow} {_node_text(node)}"
        return out


def _node_text(n: PathNode) -> str:
    return f"({n.label} {n.id}{' ' + repr(n.name) if n.name and n.name != n.id else ''})"


class LinkedObject(BaseModel):
    label: str
    id: str
    name: str | None = None
    source: str | None = Field(None, description="the import, for the organisation's objects")
    hops: int = Field(description="length of the shortest path from the IOC")
    via: str = Field(description="that path, as text")
    tactics: list[str] = []


class IocAnswer(BaseModel):
    value: str
    matches: list[IocMatch]
    techniques: list[LinkedObject]
    software: list[LinkedObject]
    campaigns: list[LinkedObject]
    actors: list[LinkedObject] = Field(description="ATT&CK groups and the organisation's clusters")
    reports: list[LinkedObject] = Field(description="reports and incidents that mention it")
    sightings: list[LinkedObject]
    paths: list[IocPath]


class ExpectedTechnique(BaseModel):
    technique_id: str
    name: str
    tactics: list[str]
    tactic_names: list[str] = []
    tactic_order: int | None = Field(None, description="matrix column of its first tactic")
    kinds: list[str] = Field(description="how the actor is tied to it")
    detectable: bool | None = Field(
        None, description="a rule of the inventories covers it (None: no inventory imported)"
    )
    partial: bool = Field(False, description="covered only through a parent or sub-technique")
    rules: list[str] = Field([], description="inventory: rule name")


class TacticBucket(BaseModel):
    tactic: str
    name: str
    order: int | None
    techniques: list[str]
    detectable: int
    undetected: int


class Expectation(BaseModel):
    actor_id: str
    name: str
    kind: ActorKind
    resolved_note: str | None = None
    observed: list[str]
    observed_used: list[str] = Field(description="observed techniques the actor is known to use")
    include_software: bool
    domain: str | None
    inventories: list[str] = Field(description="detection inventories consulted")
    detection: str = Field(description="how the detection flag was computed, or why not")
    expected: list[ExpectedTechnique]
    by_tactic: list[TacticBucket]
