"""The organisation's own intelligence over HTTP: imports (file upload), incidents, SAME_AS
links, and the questions: who fits, what an IOC tells, what to expect next."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Path, Query, Request, Response, UploadFile
from pydantic import BaseModel, Field

from loader import intel as intel_loader
from loader.sources import MAX_BUNDLE_BYTES
from queries import intel
from queries.errors import InvalidInput
from queries.intel import split_ids

from ..deps import CursorQuery, GraphDep, paginate
from ..problems import PROBLEM_RESPONSES

router = APIRouter(prefix="/api/v1", tags=["intel"], responses=PROBLEM_RESPONSES)

Techniques = Annotated[
    list[str] | None,
    Query(
        description="observed technique ids or names; repeat or comma-separate (T1059.001,T1105)",
        max_length=intel.MAX_OBSERVED,
    ),
]
Incident = Annotated[
    str | None, Query(description="an incident or report, by name or STIX id", max_length=300)
]
Domain = Annotated[
    str | None,
    Query(description="enterprise, mobile or ics", pattern="^(enterprise|mobile|ics)(-attack)?$"),
]
IncludeSoftware = Annotated[bool, Query(description="count techniques the actors' software uses")]


class IncidentIn(BaseModel):
    name: str = Field(min_length=1, max_length=200, description="the incident's name")
    techniques: list[str] = Field(
        min_length=1, max_length=intel.MAX_OBSERVED, description="observed technique ids or names"
    )
    iocs: list[str] = Field([], max_length=10_000, description="IOCs seen (IP, domain, URL...)")
    description: str | None = Field(None, max_length=20_000)
    first_seen: str | None = Field(None, max_length=40, description="ISO date")
    replace: bool = Field(False, description="replace an incident of the same name")


class SameAsIn(BaseModel):
    cluster: str = Field(min_length=1, max_length=300, description="the organisation's cluster")
    group: str = Field(min_length=1, max_length=200, description="the ATT&CK group (G0016...)")


class SameAsOut(BaseModel):
    cluster: str
    group_id: str
    group: str
    links: int = Field(description="cluster copies (one per import) linked or unlinked")
    removed: bool


class Deleted(BaseModel):
    source: str
    deleted_nodes: int


@router.post(
    "/intel/imports",
    summary="Import an OpenCTI / ATT&CK Workbench / MISP export (STIX 2.1 bundle or MISP JSON)",
    status_code=201,
)
def import_intel(
    graph: GraphDep,
    file: Annotated[
        UploadFile, File(description="a STIX 2.1 bundle or MISP event JSON (.json or .json.gz)")
    ],
    source: Annotated[
        str | None,
        Form(
            max_length=200,
            description="label recorded on every node (default '<flavour>-export <file name>'); "
            "importing the same label again replaces it",
        ),
    ] = None,
    link_attack_ids: Annotated[
        bool, Form(description="link objects that carry an ATT&CK id to it (SAME_AS)")
    ] = False,
) -> intel.ImportResult:
    """Validated whole (every STIX object with stix2), then written in one transaction: an
    invalid object refuses the import with a 422 naming it, and nothing is written."""
    name = file.filename or "upload.json"
    chunks, total = [], 0
    while chunk := file.file.read(1 << 20):
        total += len(chunk)
        if total > MAX_BUNDLE_BYTES:
            raise InvalidInput(f"{name}: larger than {MAX_BUNDLE_BYTES // (1024 * 1024)} MB")
        chunks.append(chunk)
    raw = b"".join(chunks)
    return intel_loader.import_intel_bytes(
        graph, raw, name=name, source=source, link_attack_ids=link_attack_ids
    )


@router.get("/intel/sources", summary="The imported intelligence sources, newest first")
def intel_sources(
    graph: GraphDep,
    request: Request,
    response: Response,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: CursorQuery = None,
) -> list[intel.IntelSource]:
    found = intel.list_sources(graph, limit=10_000)
    return paginate(found, key=lambda s: (s.imported_at or "", s.source), limit=limit,
                    cursor=cursor, request=request, response=response, descending=True)  # fmt: skip


@router.delete("/intel/sources/{source:path}", summary="Remove everything one source imported")
def delete_source(
    graph: GraphDep, source: Annotated[str, Path(max_length=200, description="the source label")]
) -> Deleted:
    return Deleted(source=source, deleted_nodes=intel_loader.delete_source(graph, source))


@router.post(
    "/intel/same-as", summary="Link a cluster of the organisation and an ATT&CK group (SAME_AS)"
)
def link_same_as(graph: GraphDep, body: SameAsIn) -> SameAsOut:
    return SameAsOut(**intel_loader.link_same_as(graph, cluster=body.cluster, group=body.group))


@router.delete("/intel/same-as", summary="Remove a SAME_AS link")
def unlink_same_as(
    graph: GraphDep,
    cluster: Annotated[str, Query(max_length=300)],
    group: Annotated[str, Query(max_length=200)],
) -> SameAsOut:
    return SameAsOut(**intel_loader.link_same_as(graph, cluster=cluster, group=group, remove=True))


@router.post("/incidents", summary="Create an incident: observed techniques (+ IOCs)",
             status_code=201)  # fmt: skip
def create_incident(graph: GraphDep, body: IncidentIn) -> intel.ImportResult:
    """The quick form. An incident of the same name is a 409 unless ``replace``."""
    return intel_loader.create_incident(
        graph,
        name=body.name,
        techniques=split_ids(body.techniques),
        iocs=split_ids(body.iocs),
        description=body.description,
        first_seen=body.first_seen,
        replace=body.replace,
    )


@router.get("/incidents", summary="Incidents and reports, newest first")
def list_incidents(
    graph: GraphDep,
    request: Request,
    response: Response,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: CursorQuery = None,
) -> list[intel.IncidentSummary]:
    found = intel.list_incidents(graph, limit=10_000)
    return paginate(found, key=lambda i: (i.imported_at or "", i.stix_id), limit=limit,
                    cursor=cursor, request=request, response=response, descending=True)  # fmt: skip


@router.get("/attribution", summary="Who fits the observed techniques (groups and clusters)")
def attribution(
    graph: GraphDep,
    technique: Techniques = None,
    incident: Incident = None,
    include_software: IncludeSoftware = False,
    include_org: Annotated[bool, Query(description="rank the organisation's clusters too")] = True,
    domain: Domain = None,
    rollup: Annotated[bool, Query(description="compare at the parent-technique level")] = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 10,
) -> intel.Attribution:
    """Ranked by the cosine similarity of rarity-weighted (IDF) technique sets, with the shared
    and missing techniques and ATT&CK's (or the import's) evidence for each shared one."""
    return intel.attribute(
        graph,
        techniques=split_ids(technique) or None,
        incident=incident,
        include_software=include_software,
        include_org=include_org,
        domain=domain,
        rollup=rollup,
        limit=limit,
    )


@router.get("/ioc", summary="What an IOC tells: linked techniques, software, actors, as paths")
def ioc(
    graph: GraphDep,
    value: Annotated[str, Query(min_length=1, max_length=2048, description="IP, domain, hash...")],
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> intel.IocAnswer:
    return intel.ioc_lookup(graph, value=value, limit=limit)


@router.get("/expectation", summary="What to expect next from an actor, with detection coverage")
def expectation(
    graph: GraphDep,
    actor: Annotated[
        str, Query(min_length=1, max_length=300, description="ATT&CK group or a cluster")
    ],
    technique: Techniques = None,
    incident: Incident = None,
    include_software: IncludeSoftware = False,
    domain: Domain = None,
    inventory: Annotated[
        list[str] | None, Query(description="detection inventories (default: all imported)")
    ] = None,
) -> intel.Expectation:
    """The actor's techniques not observed yet, in matrix order, each flagged with whether a
    rule of the imported detection inventories covers it (null when none is imported)."""
    return intel.expect_next(
        graph,
        actor=actor,
        techniques=split_ids(technique) or None,
        incident=incident,
        include_software=include_software,
        domain=domain,
        inventories=inventory,
    )
