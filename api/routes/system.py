"""Health, readiness and what is loaded."""

from __future__ import annotations

from fastapi import APIRouter, Query

from queries import status as status_service
from queries.models import GraphStatus, Release

from ..deps import GraphDep
from ..problems import PROBLEM_RESPONSES

router = APIRouter()


@router.get("/health", tags=["system"], summary="The API process is up (no database check)")
def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready", tags=["system"], summary="Neo4j is reachable", responses=PROBLEM_RESPONSES)
def ready(graph: GraphDep) -> dict[str, str]:
    graph.ping()
    return {"status": "ready"}


@router.get(
    "/api/v1/releases",
    tags=["system"],
    summary="ATT&CK releases loaded, one per domain",
    responses=PROBLEM_RESPONSES,
)
def list_releases(graph: GraphDep, limit: int = Query(100, ge=1, le=1000)) -> list[Release]:
    return status_service.releases(graph, limit=limit)


@router.get(
    "/api/v1/status",
    tags=["system"],
    summary="Releases and node counts",
    responses=PROBLEM_RESPONSES,
)
def graph_status(graph: GraphDep) -> GraphStatus:
    return status_service.graph_status(graph)
