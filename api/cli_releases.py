"""CLI commands for ATT&CK releases over time: diff, release-impact, sync."""

from __future__ import annotations

import re
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from loader import sources
from queries.errors import InvalidInput, Unavailable
from queries.lazy import lazy_module

from .cli import FormatOpt, app, err, graph, out, rich_progress, run, user_errors
from .output import Format, bold, emit, styled

if TYPE_CHECKING:
    from loader import diff as release_diff
    from loader import sync as taxii_sync
    from queries import layers, releases
    from queries import threat_models as TM
    from queries.releases import ReleaseDiff
else:
    release_diff = lazy_module("loader.diff")
    taxii_sync = lazy_module("loader.sync")
    layers = lazy_module("queries.layers")
    releases = lazy_module("queries.releases")
    TM = lazy_module("queries.threat_models")


class DiffFormat(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"


@app.command()
def diff(
    bundles: Annotated[
        list[str],
        typer.Argument(
            help="[OLD] NEW: one bundle (file or URL) compares the loaded release with it; two "
            "compare OLD with NEW.",
            metavar="[OLD] NEW",
        ),
    ],
    fmt: Annotated[
        DiffFormat, typer.Option("--format", "-f", help="Output format.")
    ] = DiffFormat.table,
    layer: Annotated[
        Path | None, typer.Option(help="Also write the diff as a Navigator layer to this file.")
    ] = None,
    domain: Annotated[
        str | None, typer.Option(help="enterprise, mobile or ics (default: the bundle's).")
    ] = None,
    impact: Annotated[
        bool, typer.Option("--impact/--no-impact", help="Judge each inventory's rules.")
    ] = True,
    threat_model: Annotated[
        list[str] | None,
        typer.Option(
            "--threat-model",
            "-m",
            help="Saved threat model whose coverage change to show (repeatable; default: all).",
        ),
    ] = None,
    actor: Annotated[
        list[str] | None,
        typer.Option(
            "--actor", "-a", help="An ad-hoc threat model's actor (repeatable; NAME=WEIGHT)."
        ),
    ] = None,
    inventory: Annotated[
        str | None, typer.Option("--inventory", "-i", help="The ad-hoc threat model's inventory.")
    ] = None,
    software: Annotated[
        bool,
        typer.Option("--software/--no-software", help="Ad-hoc model: add software techniques."),
    ] = False,
    models: Annotated[
        bool,
        typer.Option("--threat-models/--no-threat-models", help="Compare threat models' coverage."),
    ] = True,
    model_layers: Annotated[
        Path | None,
        typer.Option(
            help="Also write each threat model's change as a Navigator layer into this folder."
        ),
    ] = None,
) -> None:
    """What changes between two ATT&CK releases, and which inventory rules it breaks.

    Tactics added, removed, renamed, split or merged (with where their techniques went);
    techniques added, removed, revoked (with replacement), deprecated, renamed and moved between
    tactics; groups whose technique sets changed, through each path kind (direct, campaign,
    software); the detection model (v17 data components ->
    v18 detection strategies); rules pointing at revoked, deprecated or unknown techniques.
    """
    if not 1 <= len(bundles) <= 2:
        raise typer.BadParameter("give NEW, or OLD and NEW", param_hint="[OLD] NEW")
    old, new = (None, bundles[0]) if len(bundles) == 1 else (bundles[0], bundles[1])
    with user_errors():
        try:
            g = graph()
            if old is not None:
                g.ping()
        except Unavailable:
            if old is None:
                raise
            g = None  # two bundles: the diff works without the graph (no impact)
        chosen = None
        if threat_model or actor:
            if g is None:
                raise Unavailable("threat models need the graph: start it (ttpgraph neo4j start)")
            chosen = [TM.get_threat_model(g, n) for n in threat_model or []]
            if actor:
                chosen.append(TM.adhoc_model(g, actor, inventory, software))
        elif inventory:
            raise typer.BadParameter("--inventory goes with --actor", param_hint="--inventory")
        result = release_diff.diff_releases(
            g, new=new, old=old, domain=domain, impact=impact, threat_models=models, models=chosen
        )
    if layer is not None:
        layer.write_text(layers.dump_layer(releases.diff_layer(result)), encoding="utf-8")
        err.print(f"layer written to {layer}")
    if model_layers is not None:
        with user_errors():
            try:
                model_layers.mkdir(parents=True, exist_ok=True)
                for m in result.threat_models or []:
                    path = model_layers / f"{_file_name(m.name)}.json"
                    change = releases.model_change_layer(m)
                    path.write_text(layers.dump_layer(change), encoding="utf-8")
                    err.print(f"layer of threat model {m.name!r} written to {path}")
            except OSError as exc:
                raise InvalidInput(
                    f"cannot write to {model_layers}: {exc.strerror or exc}"
                ) from None
    if fmt == DiffFormat.json:
        emit(result, Format.json)
    elif fmt == DiffFormat.markdown:
        sys.stdout.write(releases.diff_markdown(result))
    else:
        _print_table(result)


def _file_name(name: str) -> str:
    """A threat model's name as a file name (letters, digits, '-', '_', '.')."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "threat-model"


def _print_table(d: ReleaseDiff) -> None:
    out.print(bold(f"ATT&CK {d.domain}: {d.old_version or '?'} -> {d.new_version or '?'}"))
    emit(d, Format.table, rows=[{"change": k.replace("_", " "), "count": v}
                                for k, v in d.summary.items()], title="Summary")  # fmt: skip
    rows = (
        [{"change": "added", "technique": c.technique_id, "name": c.name, "detail": c.tactics}
         for c in d.added]
        + [{"change": "removed", "technique": c.technique_id, "name": c.name, "detail": ""}
           for c in d.removed]
        + [{"change": "revoked", "technique": c.technique_id, "name": c.name,
            "detail": f"-> {c.replaced_by} {c.replaced_by_name or ''}".strip()
            if c.replaced_by else "no replacement"} for c in d.revoked]
        + [{"change": "deprecated", "technique": c.technique_id, "name": c.name, "detail": ""}
           for c in d.deprecated]
        + [{"change": "renamed", "technique": c.technique_id, "name": c.name,
            "detail": f"was '{c.old_name}'"} for c in d.renamed]
        + [{"change": "moved", "technique": c.technique_id, "name": c.name,
            "detail": f"{', '.join(c.old_tactics)} -> {', '.join(c.tactics)}"} for c in d.moved]
    )  # fmt: skip
    tactic_rows = releases.tactic_rows(d)
    if tactic_rows:
        emit(tactic_rows, Format.table, title="Tactics")
    if rows:
        emit(rows, Format.table, title="Techniques")
    if d.groups:
        cols = ["group_id", "name", "status", "through", "old_count", "new_count", "gained", "lost"]
        emit([{**g.model_dump(), "through": releases.group_kinds(g)} for g in d.groups],
             Format.table, title="Groups (through every path kind)", columns=cols)  # fmt: skip
    out.print(styled(bold("Detection model"), f": {d.detection.note}"))
    if d.detection.components:
        emit([{**c.model_dump(), "gained": len(c.gained), "lost": len(c.lost)}
              for c in d.detection.components], Format.table, title="Data components",
             columns=["data_component_id", "name", "old_techniques", "new_techniques",
                      "old_model", "new_model", "kept", "gained", "lost"])  # fmt: skip
    for inv in d.impact or []:
        emit([i.model_dump() for i in inv.items], Format.table,
             title=f"Inventory {inv.inventory}: {inv.affected_rules} of {inv.rules} rules affected",
             columns=["rule_name", "technique_id", "problem", "replacement", "note"])  # fmt: skip
    for m in d.threat_models or []:
        out.print(styled(bold(f"Threat model {m.name}"), f": {releases.model_headline(m)}"))
        if m.tactics:
            emit([t.model_dump() for t in m.tactics], Format.table, title="Tactics that change",
                 columns=["tactic", "old_covered", "old_total", "new_covered",
                          "new_total"])  # fmt: skip
        if m.techniques:
            emit([{**c.model_dump(), "old": c.old or "-", "new": c.new or "-"}
                  for c in m.techniques], Format.table, title="Techniques that change",
                 columns=["technique_id", "name", "old", "new", "note"])  # fmt: skip
        for n in m.notes:
            err.print(f"note: {m.name}: {n}")
    for note in d.notes:
        err.print(f"note: {note}")


@app.command("release-impact")
def release_impact(
    domain: Annotated[str, typer.Option(help="enterprise, mobile or ics.")] = "enterprise",
    fmt: FormatOpt = Format.table,
) -> None:
    """Inventory rules tagged with techniques the loaded release revoked, deprecated or does
    not know, with the technique to retag to."""
    result = run(lambda g: releases.release_impact(g, domain=domain))
    if fmt == Format.json:
        emit(result, fmt)
        return
    rows = [i.model_dump() for inv in result for i in inv.items]
    emit(result, fmt, rows=rows, title="Rules to review",
         columns=["inventory", "rule_name", "rule_id", "technique_id", "problem", "replacement",
                  "note"])  # fmt: skip


@app.command("sync")
def sync_command(
    domain: Annotated[
        list[str] | None,
        typer.Option("--domain", "-d", help="enterprise, mobile or ics (repeatable; default all)."),
    ] = None,
    taxii_url: Annotated[str, typer.Option(help="TAXII 2.1 API root.")] = sources.MITRE_TAXII_URL,
    user: Annotated[str | None, typer.Option(help="TAXII user (basic auth).")] = None,
    password: Annotated[
        str | None, typer.Option(envvar="TTPGRAPH_TAXII_PASSWORD", help="TAXII password.")
    ] = None,
    lock_file: Annotated[
        Path | None, typer.Option(help="Lock file (default: ~/.cache/ttpgraph/sync.lock).")
    ] = None,
    per_request: Annotated[int, typer.Option(help="Objects per TAXII page.")] = 1000,
    fmt: FormatOpt = Format.table,
) -> None:
    """Fetch from TAXII only what was added since the last load, apply it, report what changed.

    Safe from cron: a second sync while one runs writes nothing and reports 'locked'; a sync
    with nothing new writes nothing.
    """
    with user_errors():
        reports = taxii_sync.sync(
            graph(),
            domains=domain or [],
            taxii_url=taxii_url,
            user=user,
            password=password,
            lock_path=lock_file,
            per_request=per_request,
            progress=rich_progress(),
            on_step=lambda m: err.print(m),
        )
    emit(reports, fmt, rows=taxii_sync.summarize(reports), title="Sync")
