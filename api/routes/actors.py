"""Actor intelligence over HTTP: search, profile, compare, similar, and resolution."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel

from queries import actors
from queries.actors import PathKind
from queries.resolve import resolve_group, resolve_software, resolve_technique

from ..deps import (
    ActorList,
    CursorQuery,
    GraphDep,
    actor_error,
    data_response,
    model_response,
    paginate,
)
from ..problems import PROBLEM_RESPONSES

router = APIRouter(prefix="/api/v1", tags=["actors"], responses=PROBLEM_RESPONSES)
MAX_SEARCH_HITS = 200  # a search ranks at most this many groups; pages are cut from them

ActorPath = Annotated[
    str,
    Path(
        description="ATT&CK id (G0016), name (APT29) or alias (Cozy Bear), case-insensitive",
        max_length=200,
    ),
]
Domain = Annotated[
    str | None,
    Query(description="enterprise, mobile or ics", pattern="^(enterprise|mobile|ics)(-attack)?$"),
]
IncludeSoftware = Annotated[bool, Query(description="count techniques the actors' software uses")]


class ResolvedName(BaseModel):
    attack_id: str
    name: str
    matched: str
    note: str | None = None


@router.get(
    "/groups", summary="Every group, by id; or, with q, groups ranked by a full-text search"
)
def search_groups(
    graph: GraphDep,
    request: Request,
    response: Response,
    q: Annotated[
        str | None,
        Query(min_length=1, max_length=200, description="words to search (name, aliases, text)"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: CursorQuery = None,
) -> list[actors.GroupHit]:
    if q is None:
        found = actors.list_groups(graph, limit=5000)
        return paginate(found, key=lambda g: (g.group_id,), limit=limit, cursor=cursor,
                        request=request, response=response)  # fmt: skip
    hits = actors.search_groups(graph, text=q, limit=MAX_SEARCH_HITS)
    return paginate(hits, key=lambda g: (-(g.score or 0.0), g.group_id), limit=limit,
                    cursor=cursor, request=request, response=response)  # fmt: skip


@router.get("/groups/{group}", summary="Resolve a group name, id or alias")
def get_group(graph: GraphDep, group: ActorPath) -> ResolvedName:
    return ResolvedName(**resolve_group(graph, group).__dict__)


@router.get(
    "/groups/{group}/profile",
    summary="Every technique a group is tied to, and how",
    response_model=actors.GroupProfile,
)
def group_profile(
    graph: GraphDep,
    group: ActorPath,
    kind: Annotated[
        list[PathKind] | None, Query(description="path kinds to include (default: all)")
    ] = None,
    platform: Annotated[list[str] | None, Query(description="e.g. Windows, Linux")] = None,
    domain: Domain = None,
    tactic: Annotated[str | None, Query(description="shortname or name", max_length=80)] = None,
    rollup: Annotated[bool, Query(description="merge sub-techniques into parents")] = False,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> Response:
    return data_response(
        actors.profile_answer(
            graph,
            group=group,
            kinds=kind,
            platforms=platform,
            domain=domain,
            tactic=tactic,
            rollup=rollup,
            limit=limit,
        )
    )


@router.get(
    "/groups/{group}/similar",
    summary="Groups most similar to this one (Jaccard)",
    response_model=actors.Similarity,
)
def group_similar(
    graph: GraphDep,
    group: ActorPath,
    include_software: IncludeSoftware = False,
    domain: Domain = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 10,
) -> Response:
    return model_response(
        actors.similar_groups(
            graph, group=group, include_software=include_software, domain=domain, limit=limit
        )
    )


@router.get(
    "/compare",
    summary="Compare 2 to 50 actors: shared, unique, k-of-N, Jaccard",
    response_model=actors.Comparison,
)
def compare(
    graph: GraphDep,
    actor: ActorList,
    include_software: IncludeSoftware = False,
    domain: Domain = None,
) -> Response:
    if len(actor) < 2:
        raise actor_error(f"compare needs 2 to {actors.MAX_ACTORS} actors, got 1", "too_short")
    return model_response(
        actors.compare_groups(graph, groups=actor, include_software=include_software, domain=domain)
    )


@router.get("/software/{software}", summary="Resolve a software name, id or alias")
def get_software(graph: GraphDep, software: Annotated[str, Path(max_length=200)]) -> ResolvedName:
    return ResolvedName(**resolve_software(graph, software).__dict__)


@router.get("/techniques/{technique}", summary="Resolve a technique id or name")
def get_technique(graph: GraphDep, technique: Annotated[str, Path(max_length=200)]) -> ResolvedName:
    return ResolvedName(**resolve_technique(graph, technique).__dict__)
