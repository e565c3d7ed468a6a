"""Detection coverage over HTTP: inventories (upload, list, show, delete, coverage), gap
analysis, telemetry priorities, the remediation and emulation plans and the assessment report.

Analyses take the threat model in the query string: ``actor`` repeated (ATT&CK id, name or
alias; ``APT29=2`` gives a weight), ``inventory``, optional ``platform`` (repeated), ``domain``,
``include_software`` and ``partial_covered``.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path as FsPath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from loader.atomic import find_atomics_dir, read_index
from loader.inventory import PARENT_MODES, PARSERS, STATUSES, SUB_MODES
from loader.inventory.crosswalk import parse_crosswalk
from loader.inventory.importer import delete_inventory, import_inventory
from loader.inventory.planner import ImportOptions
from loader.inventory_remap import remap_inventory
from queries import coverage as C
from queries import plans as P
from queries.errors import InvalidInput, NotFound
from queries.technique_index import Crosswalk

from ..archives import extract_archive, is_archive
from ..deps import ActorList, CursorQuery, GraphDep, data_response, model_response, paginate
from ..problems import PROBLEM_RESPONSES

router = APIRouter(prefix="/api/v1", tags=["coverage"], responses=PROBLEM_RESPONSES)

MAX_CROSSWALK_BYTES = 5 * 1024 * 1024

InventoryFormat = StrEnum("InventoryFormat", {k.replace("-", "_"): k for k in PARSERS})  # type: ignore[misc]
RuleStatus = StrEnum("RuleStatus", {s: s for s in STATUSES})  # type: ignore[misc]


class ReportFormat(StrEnum):
    text = "text"
    markdown = "markdown"
    json = "json"


class PlanFormat(StrEnum):
    json = "json"
    yaml = "yaml"


class ImportSummary(BaseModel):
    """What an import read and wrote (extra keys may be added)."""

    model_config = ConfigDict(extra="allow")

    name: str
    format: str
    source: str
    imported_at: str
    rules_read: int
    excluded: dict[str, int]
    rules: int = Field(description="rules imported (after excluded statuses)")
    mapped: int = Field(description="rules covering at least one current technique")
    unmapped: int = Field(description="rules naming no technique")
    unresolved: int = Field(description="rules whose ids are all unknown or retired")
    ids: int
    ids_remapped: list[dict[str, Any]] = Field(description="revoked or crosswalked ids")
    ids_unknown: list[dict[str, Any]]
    ids_retired: list[dict[str, Any]]
    techniques_covered: int
    techniques_partial: int
    by_status: dict[str, int]
    parse_issues: int
    issues: list[dict[str, str]]


class Deleted(BaseModel):
    deleted: str
    rules: int


# ---------------------------------------------------------------- the threat model


@dataclass(frozen=True)
class ThreatModel:
    """The query parameters every analysis shares, as the services' keyword arguments."""

    kwargs: dict[str, Any]


async def threat_model(
    actor: ActorList,
    inventory: Annotated[str, Query(min_length=1, max_length=100)],
    platform: Annotated[list[str] | None, Query(description="e.g. Windows, Linux (repeat)")] = None,
    domain: Annotated[
        str | None,
        Query(
            description="enterprise, mobile or ics",
            pattern="^(enterprise|mobile|ics)(-attack)?$",
        ),
    ] = None,
    include_software: Annotated[
        bool, Query(description="add the techniques of the actors' software")
    ] = False,
    partial_covered: Annotated[
        bool, Query(description="count parent/sub-technique coverage as covered")
    ] = False,
) -> ThreatModel:
    return ThreatModel(
        {
            "actors": C.parse_actor_args(actor),
            "inventory": inventory,
            "platforms": platform,
            "domain": domain,
            "include_software": include_software,
            "partial_counts_as_covered": partial_covered,
        }
    )


TM = Annotated[ThreatModel, Depends(threat_model)]


# ---------------------------------------------------------------- inventories


def _safe_name(filename: str | None) -> str:
    name = FsPath(filename or "upload").name.strip() or "upload"
    return "".join(c if c.isalnum() or c in "._- " else "_" for c in name)[:200]


def _read_crosswalk(crosswalk: UploadFile | None) -> Crosswalk | None:
    if crosswalk is None or not crosswalk.filename:
        return None
    raw = crosswalk.file.read(MAX_CROSSWALK_BYTES + 1)
    if len(raw) > MAX_CROSSWALK_BYTES:
        raise InvalidInput("crosswalk: over 5 MB")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("crosswalk: not UTF-8 text") from None
    return parse_crosswalk(
        text,
        source=_safe_name(crosswalk.filename),
        csv_hint=_safe_name(crosswalk.filename).lower().endswith((".csv", ".tsv")),
    )


@router.post(
    "/inventories",
    summary="Import a detection inventory (a file or a .zip/.tar.gz of a rule folder)",
    status_code=201,
)
def upload_inventory(
    graph: GraphDep,
    file: Annotated[UploadFile, File(description="rule file, export, layer or archive")],
    format: Annotated[InventoryFormat, Form(description="inventory format")],
    name: Annotated[str, Form(min_length=1, max_length=100, description="inventory name")],
    exclude_status: Annotated[
        list[RuleStatus] | None, Form(description="statuses not imported (repeat)")
    ] = None,
    parent_coverage: Annotated[
        str, Form(description="sub-techniques of a tagged parent: " + "|".join(PARENT_MODES))
    ] = "partial",
    subtechnique_coverage: Annotated[
        str, Form(description="parent of a tagged sub-technique: " + "|".join(SUB_MODES))
    ] = "partial",
    replace: Annotated[bool, Form(description="replace an inventory of that name")] = True,
    crosswalk: Annotated[
        UploadFile | None, File(description="technique id crosswalk (YAML/JSON/CSV)")
    ] = None,
) -> ImportSummary:
    opts = ImportOptions(
        exclude_status=[s.value for s in exclude_status or []],
        parent_coverage=parent_coverage,
        subtechnique_coverage=subtechnique_coverage,
        replace=replace,
    )
    opts.check()
    cw = _read_crosswalk(crosswalk)
    filename = _safe_name(file.filename)
    with tempfile.TemporaryDirectory(prefix="ttpgraph-upload-") as tmp:
        saved = FsPath(tmp) / filename
        with saved.open("wb") as out:
            shutil.copyfileobj(file.file, out, 1024 * 1024)
        target = saved
        if is_archive(filename):
            target = FsPath(tmp) / "rules"
            target.mkdir()
            extract_archive(saved, target)
        result = import_inventory(
            graph,
            format.value,
            target,
            name=name,
            options=opts,
            crosswalk=cw,
            source_label=f"upload: {filename}",
        )
    return ImportSummary(**result.summary)


@router.get("/inventories", summary="The detection inventories imported, by name")
def list_inventories(
    graph: GraphDep,
    request: Request,
    response: Response,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: CursorQuery = None,
) -> list[C.InventoryRecord]:
    return paginate(C.list_inventories(graph, limit=10_000), key=lambda i: (i.name,), limit=limit,
                    cursor=cursor, request=request, response=response)  # fmt: skip


InventoryPath = Annotated[str, Path(max_length=100, description="inventory name")]
MAX_RULES_LISTED = 100_000  # an inventory's rules, read once and cut into pages


@router.get("/inventories/{name}", summary="One inventory: record and import summary")
def get_inventory(graph: GraphDep, name: InventoryPath) -> C.InventoryInfo:
    return C.inventory_info(graph, inventory=name)


@router.delete("/inventories/{name}", summary="Delete an inventory and its rules")
def remove_inventory(graph: GraphDep, name: InventoryPath) -> Deleted:
    return Deleted(deleted=name, rules=delete_inventory(graph, name))


@router.post(
    "/inventories/{name}/remap",
    summary="Re-resolve an inventory's rule tags against the loaded ATT&CK release",
)
def remap_inventory_route(
    graph: GraphDep,
    name: InventoryPath,
    crosswalk: Annotated[
        UploadFile | None,
        File(description="technique id crosswalk (old -> new): how to choose for split tags"),
    ] = None,
) -> dict[str, Any]:
    """Without re-import: the rules' kept tags resolved as an import would resolve them now;
    tags a split left ambiguous are listed (``ids_ambiguous``) until a crosswalk decides."""
    return remap_inventory(graph, name, crosswalk=_read_crosswalk(crosswalk)).as_dict()


@router.get("/inventories/{name}/rules", summary="An inventory's rules and what each covers")
def get_inventory_rules(
    graph: GraphDep,
    name: InventoryPath,
    request: Request,
    response: Response,
    status: Annotated[RuleStatus | None, Query()] = None,
    technique: Annotated[str | None, Query(pattern=r"^[Tt]\d{4}(\.\d{3})?$")] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 100,
    cursor: CursorQuery = None,
) -> list[C.InventoryRule]:
    """By file and rule id; the next page is in ``Link``."""
    rules = C.inventory_rules(
        graph,
        inventory=name,
        status=status.value if status else None,
        technique=technique,
        limit=MAX_RULES_LISTED,
    )
    return paginate(rules, key=lambda r: (r.file, r.rule_id), limit=limit, cursor=cursor,
                    request=request, response=response)  # fmt: skip


@router.get(
    "/inventories/{name}/coverage",
    summary="Every technique the inventory covers, with its rules",
    response_model=C.InventoryCoverage,
)
def get_inventory_coverage(
    graph: GraphDep,
    name: InventoryPath,
    domain: Annotated[str | None, Query(pattern="^(enterprise|mobile|ics)(-attack)?$")] = None,
) -> Response:
    return model_response(C.inventory_coverage(graph, inventory=name, domain=domain))


# ---------------------------------------------------------------- analyses


@router.get(
    "/gaps",
    summary="Gap analysis of a threat model against an inventory, ranked by priority",
    response_model=C.GapAnalysis,
)
def gaps(graph: GraphDep, tm: TM) -> Response:
    return data_response(C.gap_answer(graph, **tm.kwargs))


@router.get(
    "/telemetry",
    summary="Which telemetry to collect first (greedy marginal gain)",
    response_model=C.TelemetryPlan,
)
def telemetry(
    graph: GraphDep,
    tm: TM,
    level: Annotated[C.TelemetryLevel, Query()] = C.TelemetryLevel.log_source,
    collected: Annotated[
        list[str] | None, Query(description="sources already collected (repeat)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> Response:
    return model_response(
        C.prioritize_telemetry(graph, **tm.kwargs, level=level, collected=collected, limit=limit)
    )


@router.get(
    "/plan",
    summary="Remediation plan: gaps in 30/60/90-day tiers (JSON or YAML)",
    response_model=P.RemediationPlan,
    responses={200: {"content": {"application/yaml": {}}}},
)
def plan(
    graph: GraphDep,
    tm: TM,
    per_tier: Annotated[int, Query(ge=1, le=500)] = 10,
    format: Annotated[PlanFormat, Query()] = PlanFormat.json,
) -> Response:
    result = P.remediation_plan(graph, **tm.kwargs, per_tier=per_tier)
    if format == PlanFormat.yaml:
        return PlainTextResponse(P.plan_yaml(result), media_type="application/yaml")
    return model_response(result)


@router.get(
    "/emulation",
    summary="Atomic Red Team tests for the gaps (server's Atomic index)",
    response_model=P.EmulationPlan,
)
def emulation(
    graph: GraphDep,
    tm: TM,
    limit: Annotated[int | None, Query(ge=1, le=5000, description="gaps at most")] = None,
) -> Response:
    root = find_atomics_dir()
    if root is None:
        raise NotFound("no Atomic Red Team index on this server: set TTPGRAPH_ATOMICS_DIR")
    plan = P.emulation_plan(graph, **tm.kwargs, atomics=read_index(root), limit=limit)
    return model_response(plan)


@router.get(
    "/report",
    summary="The threat model assessment (text, Markdown or JSON)",
    response_model=P.AssessmentReport,
    responses={200: {"content": {"text/plain": {}, "text/markdown": {}}}},
)
def report(
    graph: GraphDep,
    tm: TM,
    format: Annotated[ReportFormat, Query()] = ReportFormat.text,
    top: Annotated[int, Query(ge=1, le=100)] = 10,
    level: Annotated[C.TelemetryLevel, Query()] = C.TelemetryLevel.log_source,
) -> Response:
    return report_response(P.assessment_report(graph, **tm.kwargs, top=top, level=level), format)


def report_response(result: P.AssessmentReport, format: ReportFormat) -> Response:
    """The assessment as text, Markdown or JSON."""
    if format == ReportFormat.markdown:
        return PlainTextResponse(P.render_markdown(result), media_type="text/markdown")
    if format == ReportFormat.text:
        return PlainTextResponse(P.render_text(result))
    return model_response(result)
