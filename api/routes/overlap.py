"""Actor overlap over HTTP: the network as JSON, its exports as downloads, the page at /ui/,
and the Neo4j Browser kit (style sheet and favorites) as downloads."""

from __future__ import annotations

from pathlib import Path as FilePath
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from queries import browser as browser_kit
from queries import overlap
from queries.errors import NotFound
from queries.overlap import ExportFormat, Metric

from ..deps import GraphDep
from ..problems import PROBLEM_RESPONSES

router = APIRouter(responses=PROBLEM_RESPONSES)

UI_DIR = FilePath(__file__).resolve().parent.parent / "static" / "ui"

Threshold = Annotated[
    float | None,
    Query(
        description=(
            "an edge needs at least this: Jaccard in (0, 1] (default "
            f"{overlap.DEFAULT_THRESHOLDS['jaccard']}) or a shared-technique count (default "
            f"{overlap.DEFAULT_THRESHOLDS['shared']:g})"
        ),
        gt=0,
    ),
]
MetricQ = Annotated[Metric, Query(description="jaccard or shared (technique count)")]
Actor = Annotated[
    str | None,
    Query(description="only this actor's neighbourhood: id, name or alias", max_length=200),
]
Depth = Annotated[int, Query(ge=1, le=overlap.MAX_DEPTH, description="hops from the actor")]
IncludeSoftware = Annotated[bool, Query(description="count techniques the groups' software uses")]
Domain = Annotated[
    str | None,
    Query(description="enterprise, mobile or ics", pattern="^(enterprise|mobile|ics)(-attack)?$"),
]
Seed = Annotated[int, Query(ge=0, le=2**31 - 1, description="Louvain seed")]
IncludeClusters = Annotated[
    bool, Query(description="the organisation's own clusters are actors too")
]


@router.get(
    "/api/v1/overlap",
    tags=["overlap"],
    summary="The actor-similarity network: groups, overlap edges, communities, centrality",
)
def get_overlap(
    graph: GraphDep,
    threshold: Threshold = None,
    metric: MetricQ = Metric.jaccard,
    actor: Actor = None,
    depth: Depth = 1,
    include_software: IncludeSoftware = False,
    domain: Domain = None,
    seed: Seed = overlap.DEFAULT_SEED,
    include_clusters: IncludeClusters = False,
) -> overlap.OverlapNetwork:
    return overlap.overlap_network(
        graph,
        threshold=threshold,
        metric=metric,
        actor=actor,
        depth=depth,
        include_software=include_software,
        domain=domain,
        seed=seed,
        include_clusters=include_clusters,
    )


@router.get(
    "/api/v1/overlap/export/{fmt}",
    tags=["overlap"],
    summary="The network as a file: GEXF, GraphML, Cytoscape.js JSON (cyjs), PNG or SVG",
    response_class=Response,
    responses={
        200: {"content": {t: {} for t in set(overlap.MEDIA_TYPES.values())}},
        501: {"description": "PNG/SVG asked for and matplotlib is not installed"},
    },
)
def export_overlap(
    graph: GraphDep,
    fmt: Annotated[ExportFormat, Path(description="gexf, graphml, cyjs, png or svg")],
    threshold: Threshold = None,
    metric: MetricQ = Metric.jaccard,
    actor: Actor = None,
    depth: Depth = 1,
    include_software: IncludeSoftware = False,
    domain: Domain = None,
    seed: Seed = overlap.DEFAULT_SEED,
    include_clusters: IncludeClusters = False,
) -> Response:
    net = overlap.overlap_network(
        graph,
        threshold=threshold,
        metric=metric,
        actor=actor,
        depth=depth,
        include_software=include_software,
        domain=domain,
        seed=seed,
        include_clusters=include_clusters,
    )
    body = overlap.export_network(net, fmt)
    suffix = "json" if fmt == ExportFormat.cyjs else fmt.value
    name = f"ttpgraph-overlap-{net.metric.value}-{net.threshold:g}"
    name += f"-{net.actor}" if net.actor else ""
    return Response(
        body,
        media_type=overlap.MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}.{suffix}"'},
    )


# ---------------------------------------------------------------- the Neo4j Browser kit

# Neo4j Browser (another origin, :7474) fetches `:style <url>` with fetch(): allow it to read.
_KIT_HEADERS = {"Access-Control-Allow-Origin": "*", "Cache-Control": "no-cache"}


@router.get(
    "/api/v1/browser-kit/ttpgraph.grass",
    tags=["browser kit"],
    summary="Neo4j Browser style sheet: a colour per label, captions = ATT&CK id + name",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
def browser_style() -> Response:
    return Response(
        browser_kit.grass_text(),
        media_type="text/plain; charset=utf-8",
        headers={**_KIT_HEADERS, "Content-Disposition": 'inline; filename="ttpgraph.grass"'},
    )


@router.get(
    "/api/v1/browser-kit/favorites.zip",
    tags=["browser kit"],
    summary="The query pack as Neo4j Browser favorites: drop the .zip onto Neo4j Browser",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}}},
)
def browser_favorites() -> Response:
    return Response(
        browser_kit.favorites_zip(),
        media_type="application/zip",
        headers={
            **_KIT_HEADERS,
            "Content-Disposition": 'attachment; filename="ttpgraph-favorites.zip"',
        },
    )


# ---------------------------------------------------------------- the page

_UI_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}


def _ui_files() -> dict[str, FilePath]:
    """Only the files shipped in api/static/ui are served (no path from the URL reaches disk)."""
    if not UI_DIR.is_dir():
        return {}
    return {
        p.relative_to(UI_DIR).as_posix(): p
        for p in UI_DIR.rglob("*")
        if p.is_file() and p.suffix in _UI_TYPES
    }


_UI_FILES = _ui_files()


@router.get("/ui", include_in_schema=False)
def ui_redirect() -> RedirectResponse:
    return RedirectResponse("/ui/", status_code=307)


@router.get("/ui/ttpgraph.grass", include_in_schema=False)
def ui_style() -> Response:
    """The style sheet beside the page: static, no data, so open like the page itself, and
    readable from Neo4j Browser's origin (`:style http://127.0.0.1:8000/ui/ttpgraph.grass`)."""
    return browser_style()


@router.options("/ui/ttpgraph.grass", include_in_schema=False)
def ui_style_preflight(request: Request) -> Response:
    """Neo4j Browser asks before it fetches (a CORS preflight): yes, from any origin, GET."""
    asked = request.headers.get("access-control-request-headers")
    headers = {
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Allow-Methods": "GET, OPTIONS",
        "Access-Control-Max-Age": "600",
        **({"Access-Control-Allow-Headers": asked} if asked else {}),
    }
    return Response(status_code=204, headers=headers)


@router.get("/ui/{path:path}", include_in_schema=False)
def ui_file(path: str) -> FileResponse:
    file = _UI_FILES.get(path or "index.html") or _UI_FILES.get(f"{path}.html")  # /ui/matrix
    if file is None:
        raise NotFound(f"no file {path!r} in the page's assets")
    headers = {"Cache-Control": "no-cache"} if file.suffix == ".html" else {}
    return FileResponse(file, media_type=_UI_TYPES[file.suffix], headers=headers)
