"""Saved threat models over HTTP: create or replace (write key), list, read, delete, and the
analyses asked by name. A release diff (``POST /api/v1/releases/diff``) includes how each saved
model's coverage changes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field

from queries import coverage as C
from queries import plans as P
from queries import threat_models as TM

from ..deps import CursorQuery, GraphDep, data_response, paginate
from ..problems import PROBLEM_RESPONSES
from .coverage import ReportFormat, report_response

router = APIRouter(
    prefix="/api/v1/threat-models", tags=["threat models"], responses=PROBLEM_RESPONSES
)

NamePath = Annotated[str, Path(min_length=1, max_length=TM.MAX_NAME, description="model name")]


class ThreatModelIn(BaseModel):
    actors: list[str] | dict[str, float] = Field(
        description="ATT&CK ids, names or aliases (or the STIX ids of your own clusters); an "
        "object gives weights",
        min_length=1,
        max_length=C.MAX_ACTORS,
    )
    inventory: str | None = Field(default=None, max_length=100)
    platforms: list[str] | None = Field(default=None, max_length=50)
    domain: str | None = Field(default=None, pattern="^(enterprise|mobile|ics)(-attack)?$")
    include_software: bool = False
    partial_counts_as_covered: bool = False
    description: str = Field(default="", max_length=2000)


class Deleted(BaseModel):
    deleted: str


@router.get("", summary="The saved threat models, by name")
def list_models(
    graph: GraphDep,
    request: Request,
    response: Response,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: CursorQuery = None,
) -> list[TM.ThreatModel]:
    return paginate(TM.list_threat_models(graph), key=lambda m: (m.name,), limit=limit,
                    cursor=cursor, request=request, response=response)  # fmt: skip


@router.get("/{name}", summary="One saved threat model")
def get_model(graph: GraphDep, name: NamePath) -> TM.ThreatModel:
    return TM.get_threat_model(graph, name)


@router.put("/{name}", summary="Create or replace a threat model (write key)")
def put_model(graph: GraphDep, name: NamePath, body: ThreatModelIn) -> TM.ThreatModel:
    """Actors are resolved now (unknown ones: 404 with close matches) and the inventory must
    exist; nothing is written otherwise."""
    return TM.save_threat_model(graph, name=name, **body.model_dump())


@router.delete("/{name}", summary="Delete a threat model (write key)")
def delete_model(graph: GraphDep, name: NamePath) -> Deleted:
    TM.delete_threat_model(graph, name)
    return Deleted(deleted=name)


@router.get(
    "/{name}/gaps",
    summary="Gap analysis of a saved threat model, ranked by priority",
    response_model=C.GapAnalysis,
)
def model_gaps(graph: GraphDep, name: NamePath) -> Response:
    return data_response(C.gap_answer(graph, **TM.get_threat_model(graph, name).gap_args()))


@router.get(
    "/{name}/report",
    summary="The assessment report of a saved threat model (text, Markdown or JSON)",
    response_model=P.AssessmentReport,
    responses={200: {"content": {"text/plain": {}, "text/markdown": {}}}},
)
def model_report(
    graph: GraphDep,
    name: NamePath,
    format: Annotated[ReportFormat, Query()] = ReportFormat.text,
    top: Annotated[int, Query(ge=1, le=100)] = 10,
    level: Annotated[C.TelemetryLevel, Query()] = C.TelemetryLevel.log_source,
) -> Response:
    args = TM.get_threat_model(graph, name).gap_args()
    return report_response(P.assessment_report(graph, **args, top=top, level=level), format)
