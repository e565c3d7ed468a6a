"""The ATT&CK matrix as the web page draws it, and the evidence behind one cell.

``matrix_skeleton``: a domain's current matrix — tactic columns in the matrix's own order
(``(:Matrix)-[:HAS_TACTIC {order}]->(:Tactic)``), techniques with their sub-techniques, names,
ids and platforms. Answers (profile, compare, gaps, telemetry) come from their own services;
the page colours this skeleton with them.

``technique_evidence``: everything the graph knows about one technique — the groups and
software that use it with ATT&CK's procedure text and citations, the detection strategies,
analytics and log sources (v18) or data components (v17) that see it, the mitigations.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field

from .cache import cached_answer
from .catalog import Q
from .coverage import check_domain
from .errors import NotFound
from .graph import Graph
from .resolve import resolve_technique

MAX_USES = 1000


# ---------------------------------------------------------------- the skeleton


class MatrixSubtechnique(BaseModel):
    technique_id: str
    name: str
    platforms: list[str] = []


class MatrixTechnique(BaseModel):
    technique_id: str
    name: str
    platforms: list[str] = []
    subtechniques: list[MatrixSubtechnique] = Field(
        default_factory=list, description="its sub-techniques in this tactic, by name"
    )


class MatrixTactic(BaseModel):
    tactic_id: str
    shortname: str
    name: str
    url: str | None = None
    order: int = Field(description="column, from the matrix's HAS_TACTIC order")
    technique_count: int = Field(description="techniques in the column (sub-techniques apart)")
    subtechnique_count: int
    techniques: list[MatrixTechnique] = Field(description="by name, as the Navigator sorts")


class MatrixSkeleton(BaseModel):
    domain: str
    matrix: str = Field(description="the matrix's name, e.g. Enterprise ATT&CK")
    url: str | None = None
    attack_version: str | None = Field(description="the loaded release of the domain")
    techniques: int = Field(description="distinct techniques (sub-techniques apart)")
    subtechniques: int
    cells: int = Field(description="technique-in-tactic cells, sub-techniques included")
    platforms: list[str] = Field(description="every platform a technique of the matrix names")
    tactics: list[MatrixTactic]


def shape_skeleton(domain: str, rows: Sequence[dict[str, Any]]) -> MatrixSkeleton:
    """Rows of ``matrix_skeleton`` (one per tactic, in order) -> the page's matrix."""
    tactics: list[MatrixTactic] = []
    parents: set[str] = set()
    subs: set[str] = set()
    platforms: set[str] = set()
    cells = 0
    for row in rows:
        techs = row["techniques"] or []
        here = {t["technique_id"] for t in techs}
        top: dict[str, MatrixTechnique] = {}
        for t in techs:
            # A sub-technique whose parent is not in this column stands alone in it.
            if t["parent_id"] is None or t["parent_id"] not in here:
                top[t["technique_id"]] = MatrixTechnique(
                    technique_id=t["technique_id"], name=t["name"], platforms=t["platforms"]
                )
        for t in techs:
            if t["parent_id"] is not None and t["parent_id"] in here:
                top[t["parent_id"]].subtechniques.append(
                    MatrixSubtechnique(
                        technique_id=t["technique_id"], name=t["name"], platforms=t["platforms"]
                    )
                )
            (subs if t["parent_id"] else parents).add(t["technique_id"])
            platforms.update(t["platforms"])
        for m in top.values():
            m.subtechniques.sort(key=lambda s: (s.name.casefold(), s.technique_id))
        ordered = sorted(top.values(), key=lambda m: (m.name.casefold(), m.technique_id))
        cells += len(techs)
        tactics.append(
            MatrixTactic(
                tactic_id=row["tactic_id"],
                shortname=row["shortname"],
                name=row["name"],
                url=row["url"],
                order=row["order"],
                technique_count=sum(1 for t in techs if t["parent_id"] is None),
                subtechnique_count=sum(1 for t in techs if t["parent_id"] is not None),
                techniques=ordered,
            )
        )
    first = rows[0] if rows else {}
    return MatrixSkeleton(
        domain=domain,
        matrix=first.get("matrix") or domain,
        url=first.get("matrix_url"),
        attack_version=first.get("version"),
        techniques=len(parents),
        subtechniques=len(subs),
        cells=cells,
        platforms=sorted(platforms, key=str.casefold),
        tactics=tactics,
    )


@cached_answer
def matrix_skeleton(graph: Graph, *, domain: str = "enterprise-attack") -> MatrixSkeleton:
    """The domain's current matrix: tactics in column order, their techniques and
    sub-techniques. NotFound when no release of the domain is loaded."""
    dom = check_domain(domain) or "enterprise-attack"
    rows = graph.read(Q.matrix_skeleton, domain=dom, limit=100)
    if not rows:
        raise NotFound(
            f"no ATT&CK matrix of {dom} is loaded (ttpgraph load --domain {dom.split('-')[0]})"
        )
    return shape_skeleton(dom, rows)


# ---------------------------------------------------------------- one cell's evidence


class TacticRef(BaseModel):
    tactic_id: str
    shortname: str
    name: str


class TechniqueName(BaseModel):
    technique_id: str
    name: str


class Procedure(BaseModel):
    procedure: str | None = Field(None, description="ATT&CK's procedure text")
    citations: list[str] = Field([], description="the cited sources' names")
    citation_urls: list[str] = Field([], description="their URLs, in the same order")


class GroupUse(Procedure):
    group_id: str
    name: str
    url: str | None = None
    kind: str = Field(description="direct, or campaign (a campaign attributed to the group)")
    via_id: str | None = None
    via_name: str | None = None
    via_url: str | None = None


class SoftwareUse(Procedure):
    software_id: str
    name: str
    url: str | None = None
    type: str = Field(description="malware or tool")


class LogSourceRef(BaseModel):
    name: str
    channel: str | None = None
    data_component_id: str | None = None
    data_component: str | None = None


class AnalyticRef(BaseModel):
    analytic_id: str
    url: str | None = None
    platforms: list[str] = []
    log_sources: list[LogSourceRef] = []


class DetectionStrategyRef(BaseModel):
    strategy_id: str
    name: str
    url: str | None = None
    analytics: list[AnalyticRef] = []


class DataComponentRef(BaseModel):
    data_component_id: str
    name: str
    url: str | None = None


class MitigationRef(BaseModel):
    mitigation_id: str
    name: str
    url: str | None = None
    how: str | None = Field(None, description="how it applies to this technique (ATT&CK's text)")


class TechniqueEvidence(BaseModel):
    technique_id: str
    name: str
    description: str = ""
    url: str | None = None
    is_subtechnique: bool
    parent_id: str | None = None
    parent_name: str | None = None
    platforms: list[str] = []
    domains: list[str] = []
    tactics: list[TacticRef] = Field(description="in matrix order")
    subtechniques: list[TechniqueName] = []
    groups: list[GroupUse] = Field(description="groups using it, directly or via a campaign")
    software: list[SoftwareUse] = Field(description="software using it")
    detection_strategies: list[DetectionStrategyRef] = Field(description="ATT&CK v18")
    data_components: list[DataComponentRef] = Field(description="ATT&CK v17: DETECTS")
    mitigations: list[MitigationRef]
    resolved_note: str | None = None


def shape_evidence(row: dict[str, Any], note: str | None = None) -> TechniqueEvidence:
    """The one row of ``technique_evidence`` -> the panel's answer."""
    return TechniqueEvidence(**{**row, "description": row["description"] or ""}, resolved_note=note)


@cached_answer
def technique_evidence(graph: Graph, *, technique: str) -> TechniqueEvidence:
    """One technique (id or name) with the evidence behind it; NotFound with close matches."""
    resolved = resolve_technique(graph, technique)
    rows = graph.read(Q.technique_evidence, technique_id=resolved.attack_id, limit=MAX_USES)
    if not rows:
        raise NotFound(f"technique {resolved.attack_id} is not in the loaded ATT&CK")
    return shape_evidence(rows[0], resolved.note)
