"""CLI commands: ``ttpgraph overlap`` (the actor-similarity network) and ``ttpgraph browser-kit``
(the Neo4j Browser style sheet and query pack)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from queries.errors import InvalidInput
from queries.kinds import DEFAULT_SEED, DEFAULT_THRESHOLDS, Metric
from queries.lazy import lazy_module

from .cli import FormatOpt, app, err, out, run, user_errors
from .output import Format, bold, emit, styled

if TYPE_CHECKING:
    from queries import browser as browser_kit
    from queries import overlap
else:
    browser_kit = lazy_module("queries.browser")
    overlap = lazy_module("queries.overlap")


@app.command("overlap")
def overlap_command(
    threshold: Annotated[
        float | None,
        typer.Option(
            help=(
                "An edge needs at least this: Jaccard in (0, 1] (default "
                f"{DEFAULT_THRESHOLDS['jaccard']}) or, with --metric shared, a "
                f"shared-technique count (default {DEFAULT_THRESHOLDS['shared']:g})."
            )
        ),
    ] = None,
    metric: Annotated[Metric, typer.Option(help="Edge weight: jaccard or shared.")] = (
        Metric.jaccard
    ),
    actor: Annotated[
        str | None, typer.Option(help="Only this actor's neighbourhood (id, name or alias).")
    ] = None,
    depth: Annotated[int, typer.Option(help="Hops from --actor (1 to 3).")] = 1,
    software: Annotated[
        bool,
        typer.Option(
            "--software/--no-software", help="Count techniques the groups' software uses."
        ),
    ] = False,
    domain: Annotated[str | None, typer.Option(help="enterprise, mobile or ics.")] = None,
    clusters: Annotated[
        bool,
        typer.Option(
            "--clusters/--no-clusters", help="The organisation's clusters are actors too."
        ),
    ] = False,
    seed: Annotated[int, typer.Option(help="Louvain seed (same seed, same communities).")] = (
        DEFAULT_SEED
    ),
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write the network to FILE: .gexf, .graphml, .json (Cytoscape.js), .png or .svg.",
        ),
    ] = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """The actor-similarity network: groups joined by technique overlap, with Louvain
    communities and centrality. Prints the groups, or writes a file for Gephi, Cytoscape or a
    report with --output."""
    with user_errors():
        export = overlap.export_format_for(str(output)) if output is not None else None
    net = run(
        lambda g: overlap.overlap_network(
            g, threshold=threshold, metric=metric, actor=actor, depth=depth,
            include_software=software, domain=domain, seed=seed, include_clusters=clusters,
        )
    )  # fmt: skip
    if output is not None and export is not None:
        with user_errors():
            body = overlap.export_network(net, export)
            try:
                output.write_bytes(body)
            except OSError as exc:
                raise InvalidInput(f"output {str(output)!r}: {exc.strerror}") from None
        err.print(
            f"{output}: {export.value}, {net.node_count} groups, {net.edge_count} links, "
            f"{len(net.communities)} communities ({len(body):,} bytes)",
            highlight=False,
        )
        return
    if fmt == Format.json:
        emit(net, fmt)
        return
    rows = [
        n.model_dump(include={"group_id", "name", "technique_count", "community", "degree"})
        | {"strength": n.strength, "betweenness": round(n.betweenness, 4)}
        for n in sorted(net.nodes, key=lambda n: (n.community is None, n.community, -n.degree))
    ]
    if fmt == Format.table:
        about = f" around {net.actor}" if net.actor else ""
        out.print(
            styled(
                bold(f"{net.metric.value} >= {net.threshold:g}{about}"),
                f": {net.node_count} of {net.groups_considered} groups, {net.edge_count} links, "
                f"{len(net.communities)} communities (modularity {net.modularity:.3f})",
            )
        )
    emit(
        net,
        fmt,
        rows=rows,
        columns=["group_id", "name", "technique_count", "community", "degree", "strength",
                 "betweenness"],
        title="Groups",
    )  # fmt: skip


@app.command("browser-kit")
def browser_kit_command(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Folder to write the kit into.")
    ] = Path("ttpgraph-browser-kit"),
    fmt: FormatOpt = Format.table,
) -> None:
    """Write the Neo4j Browser kit: ttpgraph.grass (drop it onto Browser), the query pack as
    favorites (ttpgraph-favorites.zip, drop it onto Browser) and one .cypher file per query."""
    with user_errors():
        try:
            paths = browser_kit.write_kit(output)
        except OSError as exc:
            raise InvalidInput(f"output {str(output)!r}: {exc.strerror}") from None
    emit(
        [{"file": str(p), "bytes": p.stat().st_size} for p in paths],
        fmt,
        title=f"Neo4j Browser kit in {output}",
    )
