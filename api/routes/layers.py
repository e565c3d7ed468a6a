"""ATT&CK Navigator layers over HTTP: every answer as a layer download, and layers as input.

Each ``GET`` answers with the layer as an ``application/json`` download (``Content-Disposition:
attachment; filename="profile-g0016-apt29.json"``); ``?format=svg`` or ``?format=xlsx`` draws it
instead (mitreattack-python, 501 problem+json when it is not installed). The headers
``X-Ttpgraph-Techniques`` and ``X-Ttpgraph-Left-Out`` say how many techniques the layer holds and
how many of the answer's were left out (not in the loaded release).
"""

from __future__ import annotations

import tempfile
from enum import StrEnum
from pathlib import Path as FsPath
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Path, Query, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from queries import coverage as C
from queries import layers as L
from queries.actors import PathKind
from queries.errors import InvalidInput
from queries.layers.actor_layers import compare_layer_for, profile_layer_for
from queries.layers.detection_layers import (
    TelemetryLevel,
    coverage_layer_for,
    gaps_layer_for,
    telemetry_layer_for,
)
from queries.layers.export import LayerExport
from queries.layers.input_layers import LayerActorSet, combine_layers_for, import_layer_as_actor_set
from queries.layers.render_service import render_layer

from ..auth import READ_ONLY
from ..deps import ActorList, GraphDep, OptionalActorList
from ..problems import PROBLEM, PROBLEM_RESPONSES, Problem

router = APIRouter(prefix="/api/v1/layers", tags=["layers"], responses=PROBLEM_RESPONSES)

MAX_LAYER_BYTES = 10 * 1024 * 1024
MAX_LAYERS = 10
VARIABLES = "abcdefghij"


class LayerFormat(StrEnum):
    json = "json"
    svg = "svg"
    xlsx = "xlsx"


MEDIA = {
    LayerFormat.json: "application/json",
    LayerFormat.svg: "image/svg+xml",
    LayerFormat.xlsx: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


class NavigatorLayer(BaseModel):
    """An ATT&CK Navigator layer, format 4.5 (documented here; the body is the layer itself)."""

    model_config = ConfigDict(extra="allow")

    name: str
    versions: dict[str, str] = Field(description="attack (the loaded release), navigator, layer")
    domain: str = Field(description="enterprise-attack, mobile-attack or ics-attack")
    description: str | None = None
    filters: dict[str, list[str]] | None = Field(None, description="platforms, from the data")
    techniques: list[dict[str, Any]] = Field(
        description="one entry per technique and tactic: techniqueID, tactic, score, color, "
        "comment, metadata, links, showSubtechniques"
    )
    gradient: dict[str, Any]
    legendItems: list[dict[str, str]] | None = None  # noqa: N815 - the format's name
    metadata: list[dict[str, Any]] | None = None


DOWNLOAD: dict[int | str, dict[str, Any]] = {
    200: {
        "model": NavigatorLayer,
        "description": "The layer, as a download (or SVG / Excel with ?format=)",
        "content": {MEDIA[LayerFormat.svg]: {}, MEDIA[LayerFormat.xlsx]: {}},
    },
    501: {
        "model": Problem,
        "content": {PROBLEM: {}},
        "description": "SVG / Excel asked for, but mitreattack-python is not installed",
    },
}

Domain = Annotated[
    str | None,
    Query(
        description="enterprise, mobile or ics (default: the domain of most of the answer)",
        pattern="^(enterprise|mobile|ics)(-attack)?$",
    ),
]
Format = Annotated[
    LayerFormat, Query(description="json (the layer), svg or xlsx (drawn with mitreattack-python)")
]
IncludeSoftware = Annotated[bool, Query(description="count techniques the actors' software uses")]
Platforms = Annotated[list[str] | None, Query(description="platform filter, e.g. Windows")]


def download(graph: Any, export: LayerExport, fmt: LayerFormat) -> Response:
    """The layer as a file: JSON as built, or drawn as SVG / Excel."""
    headers = {
        "X-Ttpgraph-Techniques": str(export.techniques),
        "X-Ttpgraph-Left-Out": str(len(export.left_out)),
    }
    stem = export.filename.removesuffix(".json")
    if fmt == LayerFormat.json:
        body = L.dump_layer(export.layer).encode("utf-8")
        name = export.filename
    else:
        with tempfile.TemporaryDirectory(prefix="ttpgraph-layer-") as folder:
            out = FsPath(folder) / f"{stem}.{fmt.value}"
            render_layer(graph, layer=export.layer, fmt=fmt.value, out_path=out)
            body = out.read_bytes()
        name = f"{stem}.{fmt.value}"
    headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return Response(content=body, media_type=MEDIA[fmt], headers=headers)


@router.get("/profile/{group}", summary="An actor's techniques as a layer", responses=DOWNLOAD)
def profile_layer(
    graph: GraphDep,
    group: Annotated[
        str, Path(description="ATT&CK id (G0016), name or alias, case-insensitive", max_length=200)
    ],
    kind: Annotated[
        list[PathKind] | None, Query(description="path kinds to include (default: all)")
    ] = None,
    platform: Platforms = None,
    domain: Domain = None,
    tactic: Annotated[str | None, Query(description="shortname or name", max_length=80)] = None,
    citations: Annotated[bool, Query(description="link the cited reports")] = True,
    format: Format = LayerFormat.json,
) -> Response:
    """Score 3 used directly, 2 via software, 1 via campaign (colours and legend to match);
    ATT&CK's procedure text in each comment, links to attack.mitre.org."""
    export = profile_layer_for(
        graph,
        group=group,
        kinds=kind,
        platforms=platform,
        domain=domain,
        tactic=tactic,
        citations=citations,
    )
    return download(graph, export, format)


@router.get("/compare", summary="N actors as one heat layer", responses=DOWNLOAD)
def compare_layer(
    graph: GraphDep,
    actor: ActorList,
    weight: Annotated[
        list[str] | None, Query(description="ACTOR=NUMBER, repeatable (default 1 each)")
    ] = None,
    include_software: IncludeSoftware = False,
    domain: Domain = None,
    format: Format = LayerFormat.json,
) -> Response:
    """Score = how many of the actors (or their summed weight) use each technique; techniques
    common to all get their own colour; actor names in the metadata."""
    export = compare_layer_for(
        graph,
        groups=actor,
        weights=C.parse_weights(weight),
        include_software=include_software,
        domain=domain,
    )
    return download(graph, export, format)


Inventory = Annotated[
    str, Query(min_length=1, max_length=100, description="name of an imported inventory")
]
Weights = Annotated[
    list[str] | None, Query(description="ACTOR=NUMBER, repeatable (default 1 each)")
]


@router.get("/coverage", summary="What an inventory covers, as a layer", responses=DOWNLOAD)
def coverage_layer(
    graph: GraphDep,
    inventory: Inventory,
    domain: Domain = None,
    platform: Platforms = None,
    include_partial: Annotated[
        bool, Query(description="show techniques only partially covered (own colour)")
    ] = True,
    format: Format = LayerFormat.json,
) -> Response:
    """Score = number of rules per technique, comment = their names; partial coverage (rules on
    the parent or sub-techniques only) in its own colour."""
    export = coverage_layer_for(
        graph,
        inventory=inventory,
        domain=domain,
        platforms=platform,
        include_partial=include_partial,
    )
    return download(graph, export, format)


@router.get("/gaps", summary="The actors' techniques an inventory misses", responses=DOWNLOAD)
def gaps_layer(
    graph: GraphDep,
    actor: ActorList,
    inventory: Inventory,
    weight: Weights = None,
    platform: Platforms = None,
    domain: Domain = None,
    include_software: IncludeSoftware = False,
    partial_counts_as_covered: Annotated[
        bool, Query(description="count partial coverage as covered")
    ] = False,
    format: Format = LayerFormat.json,
) -> Response:
    """Actor techniques minus coverage, scored by priority (the gap analysis's reasons in the
    comments), highest first."""
    export = gaps_layer_for(
        graph,
        actors=C.actors_with_weights(actor, weight),
        inventory=inventory,
        platforms=platform,
        domain=domain,
        include_software=include_software,
        partial_counts_as_covered=partial_counts_as_covered,
    )
    return download(graph, export, format)


@router.get("/telemetry", summary="What chosen telemetry would let you detect", responses=DOWNLOAD)
def telemetry_layer(
    graph: GraphDep,
    actor: OptionalActorList,
    source: Annotated[
        list[str] | None,
        Query(description="data component (name or DC id) or log source name; repeatable"),
    ] = None,
    level: Annotated[
        TelemetryLevel, Query(description="what the sources are")
    ] = TelemetryLevel.data_component,
    inventory: Annotated[
        str | None,
        Query(description="with actors and no source: the coverage service's collection plan"),
    ] = None,
    include_software: IncludeSoftware = False,
    domain: Domain = None,
    platform: Platforms = None,
    format: Format = LayerFormat.json,
) -> Response:
    """Score = how many chosen sources can show the technique (ATT&CK v18 detection strategies
    -> analytics -> log sources -> data components; v17 data components that DETECT it).
    Without ``source``, with ``actor`` and ``inventory``: the collection plan, each gap scored
    by how early the telemetry that shows it comes (step 1 of N scores N)."""
    chosen = C.actors_with_weights(actor, None) if actor else None
    export = telemetry_layer_for(
        graph,
        sources=C.split_values(source),
        level=level,
        actors=chosen if inventory and not source else actor or None,
        inventory=inventory,
        include_software=include_software,
        domain=domain,
        platforms=platform,
    )
    return download(graph, export, format)


def _read_upload(upload: UploadFile, what: str) -> bytes:
    data = upload.file.read(MAX_LAYER_BYTES + 1)
    if len(data) > MAX_LAYER_BYTES:
        raise InvalidInput(f"{what}: larger than {MAX_LAYER_BYTES // (1024 * 1024)} MB")
    return data


@router.post(
    "/combine",
    summary="Combine layers by a score expression",
    responses=DOWNLOAD,
    openapi_extra=READ_ONLY,
)
def combine_layers(
    graph: GraphDep,
    layers: Annotated[
        list[UploadFile],
        File(description=f"2 to {MAX_LAYERS} layer files (any 4.x), bound to a, b, c... in order"),
    ],
    expression: Annotated[
        str,
        Form(description="e.g. a + b, a - b, min(a, b), max(a, b, c), (a + b) / 2", max_length=500),
    ],
    name: Annotated[str | None, Form(max_length=200)] = None,
    description: Annotated[str | None, Form(max_length=2000)] = None,
    keep_zero: Annotated[bool, Form(description="keep techniques whose result is 0")] = True,
    comments_from: Annotated[str | None, Form(description="copy comments from a layer")] = None,
    colors_from: Annotated[str | None, Form()] = None,
    enabled_from: Annotated[str | None, Form()] = None,
    links_from: Annotated[str | None, Form()] = None,
    metadata_from: Annotated[str | None, Form()] = None,
    filters_from: Annotated[str | None, Form()] = None,
    legend_from: Annotated[str | None, Form()] = None,
    gradient_from: Annotated[str | None, Form()] = None,
    format: Annotated[LayerFormat, Form(description="json, svg or xlsx")] = LayerFormat.json,
) -> Response:
    """The Navigator's "create layer from other layers", server-side: missing or unscored
    counts as 0; entries for techniques the loaded release does not hold are left out."""
    if not layers or len(layers) > MAX_LAYERS:
        raise InvalidInput(f"layers: give 1 to {MAX_LAYERS} layer files")
    bound = {
        VARIABLES[i]: _read_upload(f, f"layers[{i}] ({f.filename})") for i, f in enumerate(layers)
    }
    export = combine_layers_for(
        graph,
        layers=bound,
        expression=expression,
        name=name,
        description=description,
        keep_zero=keep_zero,
        comments_from=comments_from,
        colors_from=colors_from,
        enabled_from=enabled_from,
        links_from=links_from,
        metadata_from=metadata_from,
        filters_from=filters_from,
        legend_from=legend_from,
        gradient_from=gradient_from,
    )
    return download(graph, export, format)


@router.post(
    "/import",
    summary="Read a layer a person made as an actor-like technique set",
    openapi_extra=READ_ONLY,
)
def import_layer(
    graph: GraphDep,
    layer: Annotated[UploadFile, File(description="a Navigator layer (any 4.x)")],
    min_score: Annotated[
        float | None, Form(description="count entries scored at least this (default: > 0)")
    ] = None,
    similar: Annotated[int, Form(ge=0, le=100, description="how many similar groups")] = 10,
    include_software: Annotated[bool, Form()] = False,
) -> LayerActorSet:
    """Which techniques the layer holds (revoked ids read as their replacements, unknown ones
    listed), and the known groups most like it (Jaccard)."""
    data = _read_upload(layer, f"layer ({layer.filename})")
    return import_layer_as_actor_set(
        graph, layer=data, min_score=min_score, similar=similar, include_software=include_software
    )
