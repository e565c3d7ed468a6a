"""The ATT&CK matrix page's data over HTTP: a domain's matrix (the skeleton the page colours
with the answers of the other routes) and the evidence behind one cell. The page itself is
served at /ui/matrix with the other page assets (api/routes/overlap.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from queries import matrix

from ..deps import GraphDep
from ..problems import PROBLEM_RESPONSES

router = APIRouter(prefix="/api/v1", tags=["matrix"], responses=PROBLEM_RESPONSES)


@router.get("/matrix", summary="A domain's ATT&CK matrix: tactics in order, their techniques")
def get_matrix(
    graph: GraphDep,
    domain: Annotated[
        str,
        Query(
            description="enterprise, mobile or ics", pattern="^(enterprise|mobile|ics)(-attack)?$"
        ),
    ] = "enterprise-attack",
) -> matrix.MatrixSkeleton:
    """Tactic columns in the matrix's order (from the graph), each with its techniques and
    their sub-techniques (by name), platforms, and counts; the loaded release's version."""
    return matrix.matrix_skeleton(graph, domain=domain)


@router.get(
    "/techniques/{technique}/evidence",
    summary="One technique and the evidence behind it: users, detections, mitigations",
)
def get_technique_evidence(
    graph: GraphDep,
    technique: Annotated[str, Path(description="ATT&CK id or name", max_length=200)],
) -> matrix.TechniqueEvidence:
    """The groups (directly or via an attributed campaign) and software that use it, with
    ATT&CK's procedure text and citations; detection strategies -> analytics -> log sources
    (v18) and data components (v17); mitigations with how each applies."""
    return matrix.technique_evidence(graph, technique=technique)
