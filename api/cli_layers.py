"""CLI commands for ATT&CK Navigator layers: ``ttpgraph layer profile|compare|coverage|gaps|
telemetry|combine|import|render``.

Every command writes the layer with ``--output FILE`` (.json) and draws it with ``--svg FILE`` /
``--xlsx FILE`` (mitreattack-python); with none of them the layer JSON goes to stdout, so
``ttpgraph layer profile APT29 > apt29.json`` works too. When files are written a summary is
printed (``--format table|json|csv``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from queries.kinds import PathKind, TelemetryLevel
from queries.lazy import lazy_module

from .cli import FormatOpt, app, err, fail, graph, out, run, user_errors
from .output import Format, bold, emit, step, styled

if TYPE_CHECKING:
    from queries import coverage as C
    from queries import layers as L
    from queries.layers import actor_layers, detection_layers, input_layers, render_service
    from queries.layers.export import LayerExport
else:
    C = lazy_module("queries.coverage")
    L = lazy_module("queries.layers")
    actor_layers = lazy_module("queries.layers.actor_layers")
    detection_layers = lazy_module("queries.layers.detection_layers")
    input_layers = lazy_module("queries.layers.input_layers")
    render_service = lazy_module("queries.layers.render_service")

layer_app = typer.Typer(
    help="ATT&CK Navigator layers: every answer as a layer file (.json, .svg, .xlsx), and "
    "layers as input.",
    no_args_is_help=True,
)
app.add_typer(layer_app, name="layer")

OutputOpt = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="Write the layer JSON here (default: stdout)."),
]
SvgOpt = Annotated[
    Path | None, typer.Option("--svg", help="Also draw the layer as SVG (mitreattack-python).")
]
XlsxOpt = Annotated[
    Path | None, typer.Option("--xlsx", help="Also draw the layer as Excel (mitreattack-python).")
]
DomainOpt = Annotated[
    str | None,
    typer.Option(help="enterprise, mobile or ics (default: the domain of most of the answer)."),
]
ActorsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--actors",
        "-a",
        help="Actors: ids, names or aliases; comma-separated or repeated (APT29,FIN7).",
    ),
]
SoftwareOpt = Annotated[
    bool,
    typer.Option("--software/--no-software", help="Count techniques the actors' software uses."),
]
PlatformOpt = Annotated[
    list[str] | None, typer.Option("--platform", help="Platform filter (repeatable).")
]


@contextmanager
def writable() -> Iterator[None]:
    """A file that cannot be written is one line and exit 1, like every user error."""
    try:
        yield
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        raise fail(f"{where}{exc.strerror or exc}") from None


def deliver(
    export: LayerExport,
    output: Path | None,
    svg: Path | None,
    xlsx: Path | None,
    fmt: Format,
) -> None:
    """Write the layer and its drawings, then say what was written (or print the layer)."""
    if output is None and svg is None and xlsx is None:
        typer.echo(L.dump_layer(export.layer), nl=False)
        return
    files: list[dict[str, Any]] = []
    with user_errors(), writable():
        if svg is not None or xlsx is not None:
            render_service.require_renderer()  # before writing anything
        if output is not None:
            output.write_text(L.dump_layer(export.layer), encoding="utf-8")
            files.append({"file": str(output), "format": "json", "messages": []})
        for path, kind in ((svg, "svg"), (xlsx, "xlsx")):
            if path is None:
                continue
            with step(f"drawing {path.name} with mitreattack-python..."):
                report = render_service.render_layer(
                    graph(), layer=export.layer, fmt=kind, out_path=path
                )
            files.append({"file": str(path), "format": kind, "messages": report.messages})
    summary = export.model_dump(mode="json", exclude={"layer"})
    summary["files"] = files
    if fmt == Format.json:
        emit(summary, fmt)
        return
    rows = [
        {
            "file": f["file"],
            "layer": export.name,
            "domain": export.domain,
            "attack": export.attack_version,
            "techniques": export.techniques,
            "entries": export.entries,
            "left_out": len(export.left_out),
        }
        for f in files
    ]
    emit(summary, fmt, rows=rows, title="Layer written")
    if fmt == Format.table:
        for item in export.left_out[:20]:
            out.print(f"  left out {item.technique_id}: {item.reason}", highlight=False)
        if len(export.left_out) > 20:
            out.print(f"  ... and {len(export.left_out) - 20} more (--format json lists all)")
        for note in export.notes + [m for f in files for m in f["messages"]][:10]:
            out.print(f"  note: {note}", highlight=False)


@layer_app.command("profile")
def layer_profile(
    group: Annotated[str, typer.Argument(help="ATT&CK id, name or alias (G0016, APT29, ...).")],
    kind: Annotated[
        list[PathKind] | None, typer.Option(help="Path kinds to include (repeatable).")
    ] = None,
    platform: PlatformOpt = None,
    domain: DomainOpt = None,
    tactic: Annotated[str | None, typer.Option(help="Tactic shortname or name.")] = None,
    citations: Annotated[
        bool, typer.Option("--citations/--no-citations", help="Link the cited reports.")
    ] = True,
    output: OutputOpt = None,
    svg: SvgOpt = None,
    xlsx: XlsxOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """One actor's techniques: score 3 direct, 2 via software, 1 via campaign, with ATT&CK's
    procedure text in the comments."""
    export = run(
        lambda g: actor_layers.profile_layer_for(
            g,
            group=group,
            kinds=kind,
            platforms=platform,
            domain=domain,
            tactic=tactic,
            citations=citations,
        )
    )
    deliver(export, output, svg, xlsx, fmt)


@layer_app.command("compare")
def layer_compare(
    actors: ActorsOpt = None,
    weight: Annotated[
        list[str] | None, typer.Option(help="ACTOR=NUMBER, repeatable (default 1 each).")
    ] = None,
    layer: Annotated[
        list[Path] | None,
        typer.Option("--layer", help="A layer file someone made, compared as one more actor."),
    ] = None,
    software: SoftwareOpt = False,
    domain: DomainOpt = None,
    output: OutputOpt = None,
    svg: SvgOpt = None,
    xlsx: XlsxOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """N actors as one heat layer: score = how many use each technique (or their summed
    weight); techniques common to all highlighted."""
    extra = {p.stem: p for p in layer or []}
    export = run(
        lambda g: actor_layers.compare_layer_for(
            g,
            groups=C.split_values(actors),
            weights=C.parse_weights(weight, label="--weight"),
            include_software=software,
            domain=domain,
            layers=extra or None,
        )
    )
    deliver(export, output, svg, xlsx, fmt)


InventoryOpt = Annotated[
    str, typer.Option("--inventory", "-i", help="Name of an imported inventory.")
]


@layer_app.command("coverage")
def layer_coverage(
    inventory: InventoryOpt,
    domain: DomainOpt = None,
    platform: PlatformOpt = None,
    partial: Annotated[
        bool,
        typer.Option("--partial/--no-partial", help="Show partially covered techniques."),
    ] = True,
    output: OutputOpt = None,
    svg: SvgOpt = None,
    xlsx: XlsxOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """What an imported inventory covers: score = number of rules, comment = their names."""
    export = run(
        lambda g: detection_layers.coverage_layer_for(
            g, inventory=inventory, domain=domain, platforms=platform, include_partial=partial
        )
    )
    deliver(export, output, svg, xlsx, fmt)


@layer_app.command("gaps")
def layer_gaps(
    inventory: InventoryOpt,
    actors: ActorsOpt = None,
    weight: Annotated[
        list[str] | None, typer.Option(help="ACTOR=NUMBER, repeatable (default 1 each).")
    ] = None,
    platform: PlatformOpt = None,
    domain: DomainOpt = None,
    software: SoftwareOpt = False,
    partial_covered: Annotated[
        bool, typer.Option("--partial-covered", help="Count partial coverage as covered.")
    ] = False,
    output: OutputOpt = None,
    svg: SvgOpt = None,
    xlsx: XlsxOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """The actors' techniques the inventory misses, scored by priority (reasons in the
    comments). E.g. ttpgraph layer gaps --actors "APT29,FIN7" --inventory soc -o gaps.json
    --svg gaps.svg"""
    export = run(
        lambda g: detection_layers.gaps_layer_for(
            g,
            actors=C.actors_with_weights(actors, weight, label="--weight"),
            inventory=inventory,
            platforms=platform,
            domain=domain,
            include_software=software,
            partial_counts_as_covered=partial_covered,
        )
    )
    deliver(export, output, svg, xlsx, fmt)


@layer_app.command("telemetry")
def layer_telemetry(
    source: Annotated[
        list[str] | None,
        typer.Option(
            "--source",
            "-s",
            help="Data component (name or DC id) or log source name; comma-separated or repeated.",
        ),
    ] = None,
    level: Annotated[
        TelemetryLevel, typer.Option(help="What the sources are.")
    ] = TelemetryLevel.data_component,
    actors: ActorsOpt = None,
    inventory: Annotated[
        str | None,
        typer.Option(
            help="With --actors and no --source: the coverage service's collection plan as a layer."
        ),
    ] = None,
    software: SoftwareOpt = False,
    domain: DomainOpt = None,
    platform: PlatformOpt = None,
    output: OutputOpt = None,
    svg: SvgOpt = None,
    xlsx: XlsxOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Techniques a chosen set of data components or log sources would let you detect; or,
    with --actors and --inventory and no --source, the collection plan for the gaps (step 1 of
    N scores N)."""
    plan = inventory is not None and not source
    export = run(
        lambda g: detection_layers.telemetry_layer_for(
            g,
            sources=C.split_values(source),
            level=level,
            actors=(C.actors_with_weights(actors, None) if plan else C.split_values(actors))
            or None,
            inventory=inventory,
            include_software=software,
            domain=domain,
            platforms=platform,
        )
    )
    deliver(export, output, svg, xlsx, fmt)


@layer_app.command("combine")
def layer_combine(
    files: Annotated[
        list[Path], typer.Argument(help="Layer files (any 4.x), bound to a, b, c... in order.")
    ],
    expression: Annotated[
        str, typer.Option("--expression", "-e", help="e.g. 'a + b', 'a - b', 'min(a, b)'.")
    ],
    name: Annotated[str | None, typer.Option(help="Name of the new layer.")] = None,
    keep_zero: Annotated[
        bool, typer.Option("--keep-zero/--drop-zero", help="Keep techniques whose result is 0.")
    ] = True,
    comments_from: Annotated[str | None, typer.Option(help="Copy comments from a, b...")] = None,
    colors_from: Annotated[str | None, typer.Option(help="Copy colours from a, b...")] = None,
    filters_from: Annotated[str | None, typer.Option(help="Copy platforms from a, b...")] = None,
    legend_from: Annotated[str | None, typer.Option(help="Copy the legend from a, b...")] = None,
    gradient_from: Annotated[str | None, typer.Option(help="Copy the gradient from...")] = None,
    output: OutputOpt = None,
    svg: SvgOpt = None,
    xlsx: XlsxOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Combine layers by a score expression, like the Navigator's multi-layer feature."""
    if len(files) > 26:
        raise fail("combine takes at most 26 layers (a to z)")
    bound = {chr(ord("a") + i): p for i, p in enumerate(files)}
    export = run(
        lambda g: input_layers.combine_layers_for(
            g,
            layers=bound,
            expression=expression,
            name=name,
            keep_zero=keep_zero,
            comments_from=comments_from,
            colors_from=colors_from,
            filters_from=filters_from,
            legend_from=legend_from,
            gradient_from=gradient_from,
        )
    )
    deliver(export, output, svg, xlsx, fmt)


@layer_app.command("import")
def layer_import(
    file: Annotated[Path, typer.Argument(help="A layer someone made (any 4.x).")],
    min_score: Annotated[
        float | None, typer.Option(help="Count entries scored at least this (default: > 0).")
    ] = None,
    similar: Annotated[int, typer.Option(help="How many similar groups to list.")] = 10,
    software: SoftwareOpt = False,
    fmt: FormatOpt = Format.table,
) -> None:
    """Read a layer as an actor-like technique set: what it holds, and which groups it is like."""
    found = run(
        lambda g: input_layers.import_layer_as_actor_set(
            g, layer=file, min_score=min_score, similar=similar, include_software=software
        )
    )
    for warning in found.warnings:
        err.print(f"warning: {warning}", markup=False, highlight=False)
    if fmt == Format.json:
        emit(found, fmt)
        return
    if fmt == Format.table:
        out.print(
            styled(
                bold(found.name),
                f" ({found.domain}, made for ATT&CK "
                f"{found.layer_attack_version or '?'}; loaded {found.attack_version}): "
                f"{len(found.technique_ids)} techniques from {found.entries_counted} of "
                f"{found.entries_read} entries ({found.rule})",
            )
        )
        for old, new in found.remapped.items():
            out.print(f"  {old} is revoked: read as {new}", highlight=False)
        for item in found.left_out:
            out.print(f"  left out {item.technique_id}: {item.reason}", highlight=False)
    emit(
        found,
        fmt,
        rows=[s.model_dump() for s in found.similar],
        columns=["group_id", "name", "jaccard", "shared", "technique_count"],
        title="Most similar groups",
    )


@layer_app.command("render")
def layer_render(
    file: Annotated[Path, typer.Argument(help="A layer file (any 4.x).")],
    svg: SvgOpt = None,
    xlsx: XlsxOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Draw a layer file as SVG and/or Excel on the loaded release's matrix."""
    if svg is None and xlsx is None:
        raise fail("give --svg FILE and/or --xlsx FILE")
    rows = []
    with user_errors(), writable():
        data = L.read_layer(file).raw
        for path, kind in ((svg, "svg"), (xlsx, "xlsx")):
            if path is None:
                continue
            with step(f"drawing {path.name} with mitreattack-python..."):
                report = render_service.render_layer(graph(), layer=data, fmt=kind, out_path=path)
            rows.append(
                {
                    "file": str(path),
                    "seconds": round(report.seconds, 2),
                    "messages": report.messages,
                }
            )
    emit(rows, fmt, columns=["file", "seconds", "messages"], title="Drawn")
