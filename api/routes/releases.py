"""ATT&CK releases over time over HTTP: diff a bundle against the loaded release (or two
bundles), as JSON, Markdown or a Navigator layer; each inventory's rules the loaded release
breaks."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Path, Query, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse

from loader import sources
from loader.diff import diff_with, snapshot_from_fetched
from loader.stix import BundleError
from queries import releases
from queries.errors import InvalidInput, NotFound
from queries.releases import InventoryImpact, ReleaseDiff
from queries.threat_models import get_threat_model

from ..auth import READ_ONLY
from ..deps import GraphDep
from ..problems import PROBLEM_RESPONSES

router = APIRouter(prefix="/api/v1/releases", tags=["releases"], responses=PROBLEM_RESPONSES)

NewBundle = Annotated[
    UploadFile, File(description="NEW: an ATT&CK STIX bundle (.json or .json.gz, 2.0 or 2.1)")
]
OldBundle = Annotated[
    UploadFile | None,
    File(description="OLD: a bundle to compare with NEW (default: the loaded release)"),
]
ModelsQuery = Annotated[
    list[str] | None,
    Query(
        description="saved threat models whose coverage change to show (repeat; default: all)",
        max_length=50,
    ),
]
Domain = Annotated[
    str,
    Path(description="enterprise, mobile or ics", pattern="^(enterprise|mobile|ics)(-attack)?$"),
]


async def _read(upload: UploadFile) -> sources.FetchedBundle:
    name = upload.filename or "upload.json"
    chunks, total = [], 0
    while chunk := await upload.read(1 << 20):
        total += len(chunk)
        if total > sources.MAX_BUNDLE_BYTES:
            raise InvalidInput(f"{name}: larger than the bundle size limit")
        chunks.append(chunk)
    try:
        return sources.from_bytes(b"".join(chunks), source=name, name_hint=name)
    except BundleError as exc:
        raise InvalidInput(str(exc)) from None


def _compare(
    graph: Any,
    fetched_new: sources.FetchedBundle,
    fetched_old: sources.FetchedBundle | None,
    models: list[str] | None = None,
) -> ReleaseDiff:
    try:
        new_snap = snapshot_from_fetched(fetched_new)
        old_snap = (
            snapshot_from_fetched(fetched_old, domain=new_snap.domain) if fetched_old else None
        )
    except BundleError as exc:
        raise InvalidInput(str(exc)) from None
    chosen = [get_threat_model(graph, m) for m in models] if models else None
    return diff_with(graph, new_snap, old_snap, models=chosen)


async def _diff(
    graph: Any, new: UploadFile, old: UploadFile | None, models: list[str] | None = None
) -> ReleaseDiff:
    fetched_new = await _read(new)
    fetched_old = await _read(old) if old is not None else None
    # Parsing and validating a release takes seconds: off the event loop.
    return await run_in_threadpool(_compare, graph, fetched_new, fetched_old, models)


@router.post(
    "/diff", openapi_extra=READ_ONLY, summary="What changes from the loaded release (or OLD) to NEW"
)
async def diff(
    graph: GraphDep, new: NewBundle, old: OldBundle = None, threat_model: ModelsQuery = None
) -> ReleaseDiff:
    """Techniques added, removed, revoked (with replacement), deprecated, renamed, moved between
    tactics; groups whose technique sets changed; the detection model change; each inventory's
    rules that NEW breaks; and how each saved threat model's coverage changes."""
    return await _diff(graph, new, old, threat_model)


@router.post(
    "/diff/layer",
    openapi_extra=READ_ONLY,
    summary="The diff as an ATT&CK Navigator layer (format 4.5)",
)
async def diff_layer(graph: GraphDep, new: NewBundle, old: OldBundle = None) -> dict[str, Any]:
    return releases.diff_layer(await _diff(graph, new, old))


@router.post(
    "/diff/threat-models/{name}/layer",
    openapi_extra=READ_ONLY,
    summary="A saved threat model in NEW as a Navigator layer, what the release changed scored 1",
)
async def diff_model_layer(
    graph: GraphDep,
    name: Annotated[str, Path(min_length=1, max_length=100, description="threat model name")],
    new: NewBundle,
    old: OldBundle = None,
) -> dict[str, Any]:
    """The model's techniques coloured by coverage in NEW (covered green, partial yellow, gap
    red); techniques that entered, left or changed status score 1, with why in the comment."""
    result = await _diff(graph, new, old, [name])
    if not result.threat_models:
        raise NotFound(f"threat model {name!r} was not compared: {'; '.join(result.notes)}")
    return releases.model_change_layer(result.threat_models[0])


@router.post(
    "/diff/markdown",
    openapi_extra=READ_ONLY,
    summary="The diff as Markdown",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/markdown": {}}}},
)
async def diff_markdown(
    graph: GraphDep, new: NewBundle, old: OldBundle = None, threat_model: ModelsQuery = None
) -> PlainTextResponse:
    text = releases.diff_markdown(await _diff(graph, new, old, threat_model))
    return PlainTextResponse(text, media_type="text/markdown; charset=utf-8")


@router.get(
    "/{domain}/impact",
    summary="Inventory rules the loaded release breaks (revoked, deprecated, unknown techniques)",
)
def impact(graph: GraphDep, domain: Domain) -> list[InventoryImpact]:
    return releases.release_impact(graph, domain=domain)
