"""CLI commands for saved threat models: save, list, show, delete, and the gap analysis of one
by name. A release diff (``ttpgraph diff``) says how each saved model's coverage changes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from queries.lazy import lazy_module

from .cli import FormatOpt, app, err, run
from .cli_coverage import (
    ActorsArg,
    DomainOpt,
    OutputOpt,
    PartialOpt,
    PlatformOpt,
    ReportFormat,
    SoftwareOpt,
    print_gaps,
    print_report,
)
from .output import Format, emit

if TYPE_CHECKING:
    from queries import coverage as C
    from queries import plans as P
    from queries import threat_models as TM
else:
    C = lazy_module("queries.coverage")
    P = lazy_module("queries.plans")
    TM = lazy_module("queries.threat_models")

tm_app = typer.Typer(
    help="Saved threat models: the actors you defend against, held against an inventory."
)
app.add_typer(tm_app, name="threat-model")

NameArg = Annotated[str, typer.Argument(help="Threat model name.")]


def _row(m: TM.ThreatModel) -> dict[str, object]:
    return {
        "name": m.name,
        "actors": [
            f"{a.name} ({a.group_id})" + (f" x{a.weight:g}" if a.weight != 1 else "")
            for a in m.actors
        ],  # fmt: skip
        "inventory": m.inventory or "",
        "platforms": m.platforms,
        "domain": m.domain or "",
        "software": m.include_software,
        "partial_covered": m.partial_counts_as_covered,
        "updated": m.updated,
    }


def _emit_one(m: TM.ThreatModel, fmt: Format, title: str) -> None:
    """One model: JSON, a CSV row, or a key/value table (readable at any terminal width)."""
    if fmt == Format.json:
        emit(m, fmt)
    elif fmt == Format.csv:
        emit(m, fmt, rows=[_row(m)])
    else:
        pairs = [{"key": k, "value": v} for k, v in _row(m).items()]
        if m.description:
            pairs.insert(1, {"key": "description", "value": m.description})
        emit(pairs, fmt, title=title)


@tm_app.command("save")
def save(
    name: NameArg,
    actors: ActorsArg,
    inventory: Annotated[
        str | None, typer.Option("--inventory", "-i", help="Inventory to hold it against.")
    ] = None,
    platform: PlatformOpt = None,
    domain: DomainOpt = None,
    software: SoftwareOpt = False,
    partial: PartialOpt = False,
    description: Annotated[str, typer.Option(help="What this model stands for.")] = "",
    fmt: FormatOpt = Format.table,
) -> None:
    """Create or replace a threat model (actors resolved now; the inventory must exist)."""
    m = run(
        lambda g: TM.save_threat_model(
            g,
            name=name,
            actors=C.parse_actor_args(actors),
            inventory=inventory,
            platforms=platform,
            domain=domain,
            include_software=software,
            partial_counts_as_covered=partial,
            description=description,
        )
    )
    _emit_one(m, fmt, "Threat model saved")


@tm_app.command("list")
def list_models(fmt: FormatOpt = Format.table) -> None:
    """The saved threat models."""
    models = run(TM.list_threat_models)
    if fmt == Format.json:
        emit(models, fmt)
        return
    if not models and fmt == Format.table:
        err.print("no threat model saved yet: ttpgraph threat-model save NAME ACTOR... -i INV")
    emit(models, fmt, rows=[_row(m) for m in models], title="Threat models")


@tm_app.command("show")
def show(name: NameArg, fmt: FormatOpt = Format.table) -> None:
    """One threat model."""
    _emit_one(run(lambda g: TM.get_threat_model(g, name)), fmt, f"Threat model {name}")


@tm_app.command("delete")
def delete(name: NameArg) -> None:
    """Delete a threat model (the inventory and the actors stay)."""
    run(lambda g: TM.delete_threat_model(g, name))
    err.print(f"threat model {name!r} deleted")


@tm_app.command("gaps")
def gaps(
    name: NameArg,
    limit: Annotated[int, typer.Option(help="Gaps to list at most.")] = 30,
    show_all: Annotated[bool, typer.Option("--all", help="List covered techniques too.")] = False,
    fmt: FormatOpt = Format.table,
) -> None:
    """Gap analysis of a saved threat model (as `ttpgraph gaps` with its actors and options)."""
    ga = run(lambda g: C.gap_analysis(g, **TM.get_threat_model(g, name).gap_args()))
    print_gaps(ga, fmt, limit=limit, show_all=show_all)


@tm_app.command("report")
def report(
    name: NameArg,
    top: Annotated[int, typer.Option(help="Priority gaps to show.")] = 10,
    fmt: Annotated[ReportFormat, typer.Option("--format", "-f", help="Output format.")] = (
        ReportFormat.text
    ),
    output: OutputOpt = None,
) -> None:
    """THREAT MODEL ASSESSMENT of a saved threat model (as `ttpgraph report` with its actors)."""
    result = run(
        lambda g: P.assessment_report(g, **TM.get_threat_model(g, name).gap_args(), top=top)
    )
    print_report(result, fmt, output)
