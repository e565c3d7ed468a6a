"""Health, readiness and what is loaded."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from queries import status as status_service
from queries.errors import Unavailable
from queries.models import GraphStatus, Release

from ..deps import AsyncGraphDep, CursorQuery, GraphDep, paginate
from ..problems import PROBLEM_RESPONSES

router = APIRouter()


@router.get("/health", tags=["system"], summary="The API process is up (no database check; open)")
async def health() -> dict[str, str]:
    # On the event loop, not in the thread pool: busy service threads never delay it.
    return {"status": "ok"}


@router.get(
    "/ready",
    tags=["system"],
    summary="Neo4j is reachable (open, for load balancers; 503 when not)",
    responses=PROBLEM_RESPONSES,
)
async def ready(agraph: AsyncGraphDep) -> dict[str, str]:
    try:
        await agraph.ping()
    except Unavailable:
        # Open to anyone: say what, not where (no address, no driver message).
        raise Unavailable("Neo4j is not reachable from the API") from None
    return {"status": "ready"}


@router.get(
    "/api/v1/releases",
    tags=["system"],
    summary="ATT&CK releases loaded, one per domain (paginated by domain)",
    responses=PROBLEM_RESPONSES,
)
def list_releases(
    graph: GraphDep,
    request: Request,
    response: Response,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: CursorQuery = None,
) -> list[Release]:
    releases = status_service.releases(graph, limit=1000)
    return paginate(
        releases,
        key=lambda r: (r.domain,),
        limit=limit,
        cursor=cursor,
        request=request,
        response=response,
    )


@router.get(
    "/api/v1/status",
    tags=["system"],
    summary="Releases and node counts",
    responses=PROBLEM_RESPONSES,
)
def graph_status(graph: GraphDep) -> GraphStatus:
    return status_service.graph_status(graph)
