"""CLI commands for detection coverage: inventories, gaps, telemetry, plan, emulation, report.

Actors are arguments (ATT&CK id, name or alias; ``APT29=2`` gives a weight); the inventory is
``--inventory/-i NAME`` (imported with ``ttpgraph inventory import``).
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loader.inventory import PARENT_MODES, PARSERS, STATUSES, SUB_MODES
from queries.errors import InvalidInput
from queries.kinds import TelemetryLevel
from queries.lazy import lazy_module

from .cli import FormatOpt, app, err, inventory_remap_line, out, run, user_errors
from .output import Format, bold, emit, step, styled, to_jsonable

if TYPE_CHECKING:
    from loader import atomic
    from loader.inventory import crosswalk as CW
    from loader.inventory import importer as inv
    from loader.inventory import planner
    from queries import coverage as C
    from queries import plans as P
else:
    atomic = lazy_module("loader.atomic")
    inv = lazy_module("loader.inventory.importer")
    planner = lazy_module("loader.inventory.planner")
    CW = lazy_module("loader.inventory.crosswalk")
    C = lazy_module("queries.coverage")
    P = lazy_module("queries.plans")

inventory_app = typer.Typer(help="Detection-rule inventories: import, list, show, remap, delete.")
app.add_typer(inventory_app, name="inventory")

InventoryFormat = StrEnum("InventoryFormat", {k: k for k in PARSERS})  # type: ignore[misc]
ParentMode = StrEnum("ParentMode", {k: k for k in PARENT_MODES})  # type: ignore[misc]
SubMode = StrEnum("SubMode", {k: k for k in SUB_MODES})  # type: ignore[misc]


class PlanFormat(StrEnum):
    yaml = "yaml"
    json = "json"


class ReportFormat(StrEnum):
    text = "text"
    markdown = "markdown"
    json = "json"


class EmulationFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    script = "script"


ActorsArg = Annotated[
    list[str], typer.Argument(help="Actors: ATT&CK ids, names or aliases; NAME=WEIGHT weighs.")
]
InventoryOpt = Annotated[str, typer.Option("--inventory", "-i", help="Inventory name.")]
PlatformOpt = Annotated[
    list[str] | None, typer.Option("--platform", "-p", help="Platform filter (repeatable).")
]
DomainOpt = Annotated[str | None, typer.Option(help="enterprise, mobile or ics.")]
SoftwareOpt = Annotated[
    bool, typer.Option("--software/--no-software", help="Add the actors' software techniques.")
]
PartialOpt = Annotated[
    bool,
    typer.Option(
        "--partial-covered/--partial-gap",
        help="Count coverage through a parent or sub-technique as covered.",
    ),
]
OutputOpt = Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file.")]


def _tm(
    actors: list[str],
    inventory: str,
    platform: list[str] | None,
    domain: str | None,
    software: bool,
    partial: bool,
) -> dict[str, Any]:
    return {
        "actors": C.parse_actor_args(actors),
        "inventory": inventory,
        "platforms": platform,
        "domain": domain,
        "include_software": software,
        "partial_counts_as_covered": partial,
    }


def _write(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return
    with user_errors():
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"cannot write {output}: {exc.strerror or exc}") from None
    err.print(f"wrote {output}")


# ---------------------------------------------------------------- inventories


@inventory_app.command("import")
def inventory_import(
    kind: Annotated[InventoryFormat, typer.Argument(metavar="FORMAT", help="Inventory format.")],
    path: Annotated[Path, typer.Argument(help="Rule folder or file (export, list, layer).")],
    name: Annotated[str, typer.Option("--name", "-n", help="Inventory name.")],
    exclude_status: Annotated[
        list[str] | None,
        typer.Option(help=f"Status not imported (repeatable): {', '.join(STATUSES)}."),
    ] = None,
    crosswalk: Annotated[
        Path | None,
        typer.Option(help="Technique id crosswalk (e.g. Elastic's attack_v18_to_v19.yaml)."),
    ] = None,
    parent_coverage: Annotated[
        ParentMode, typer.Option(help="Sub-techniques of a tagged parent count as ...")
    ] = ParentMode.partial,  # type: ignore[attr-defined]
    subtechnique_coverage: Annotated[
        SubMode, typer.Option(help="The parent of a tagged sub-technique counts as ...")
    ] = SubMode.partial,  # type: ignore[attr-defined]
    replace: Annotated[
        bool, typer.Option("--replace/--no-replace", help="Replace an inventory of that name.")
    ] = True,
    fmt: FormatOpt = Format.table,
) -> None:
    """Import a rule set as a named inventory; a re-import replaces it once it is whole."""
    opts = planner.ImportOptions(
        exclude_status=list(exclude_status or []),
        parent_coverage=parent_coverage.value,
        subtechnique_coverage=subtechnique_coverage.value,
        replace=replace,
    )
    with step(f"importing {kind.value} rules from {path}...") as update:
        result = run(
            lambda g: inv.import_inventory(
                g,
                kind.value,
                path,
                name=name,
                options=opts,
                crosswalk=crosswalk,
                progress=update,
            )
        )
    s = result.summary
    if fmt == Format.json:
        emit(s, fmt)
        return
    rows = [
        {"what": "rules read", "value": s["rules_read"]},
        {"what": "excluded by status", "value": sum(s["excluded"].values())},
        {"what": "rules imported", "value": s["rules"]},
        {"what": "rules unchanged since the last import", "value": s.get("rules_unchanged", 0)},
        {"what": "mapped (cover a current technique)", "value": s["mapped"]},
        {"what": "unmapped (no technique)", "value": s["unmapped"]},
        {"what": "unresolved (only unknown or retired ids)", "value": s["unresolved"]},
        {"what": "technique ids", "value": s["ids"]},
        {"what": "ids remapped", "value": _ids(s["ids_remapped"], arrow=True)},
        {"what": "ids unknown to the loaded ATT&CK", "value": _ids(s["ids_unknown"])},
        {"what": "ids deprecated/revoked without replacement", "value": _ids(s["ids_retired"])},
        {"what": "techniques covered", "value": s["techniques_covered"]},
        {"what": "techniques partially covered", "value": s["techniques_partial"]},
        {"what": "by status", "value": s["by_status"]},
        {"what": "files not read", "value": s["parse_issues"]},
        {"what": "seconds", "value": s.get("seconds")},
    ]
    emit(s, fmt, rows=rows, columns=["what", "value"], title=f"Inventory {s['name']}")
    if fmt == Format.table:
        for issue in s["issues"][:10]:
            err.print(styled(("not read:", "yellow"), f" {issue['file']}: {issue['message']}"))


def _ids(items: list[dict[str, Any]], *, arrow: bool = False) -> str:
    if not items:
        return "0"
    parts = [
        f"{i['id']}->{','.join(i['to'])} ({i['via']})" if arrow else i["id"] for i in items[:20]
    ]
    return f"{len(items)}: " + ", ".join(parts) + (", ..." if len(items) > 20 else "")


@inventory_app.command("list")
def inventory_list(fmt: FormatOpt = Format.table) -> None:
    """The inventories imported, with rule and technique counts."""
    records = run(C.list_inventories)
    emit(
        records,
        fmt,
        columns=["name", "format", "rules", "mapped", "techniques_covered", "imported_at",
                 "stale", "source"],
        title="Inventories",
    )  # fmt: skip


@inventory_app.command("show")
def inventory_show(
    name: Annotated[str, typer.Argument(help="Inventory name.")],
    rules: Annotated[bool, typer.Option("--rules", help="List the rules.")] = False,
    status: Annotated[str | None, typer.Option(help="Only rules with this status.")] = None,
    technique: Annotated[str | None, typer.Option(help="Only rules covering this id.")] = None,
    limit: Annotated[int, typer.Option(help="Rules to list at most.")] = 100,
    fmt: FormatOpt = Format.table,
) -> None:
    """An inventory's import summary, or its rules (--rules) and what each covers."""
    if rules or status or technique:
        found = run(
            lambda g: C.inventory_rules(
                g, inventory=name, status=status, technique=technique, limit=limit
            )
        )
        rows = [
            {
                "name": r.name,
                "status": r.status,
                "file": r.file,
                "covers": [c.technique_id + ("" if c.via == "tag" else "*") for c in r.covers],
                "unknown": r.unknown_ids,
            }
            for r in found
        ]
        emit(found, fmt, rows=rows, title=f"Rules of {name} (* via a revoked id or the crosswalk)")
        return
    info = run(lambda g: C.inventory_info(g, inventory=name))
    if fmt == Format.json:
        emit(info, fmt)
        return
    s = info.summary
    rows = [{"what": k, "value": v} for k, v in s.items() if k not in ("issues", "notes")]
    emit(info, fmt, rows=rows, columns=["what", "value"], title=f"Inventory {name}")
    if info.stale and fmt == Format.table:
        err.print(
            f"ATT&CK was reloaded since this inventory was mapped: ttpgraph inventory remap {name}",
            style="yellow",
        )


@inventory_app.command("remap")
def inventory_remap(
    name: Annotated[
        str | None, typer.Argument(help="Inventory name (default: every inventory).")
    ] = None,
    crosswalk: Annotated[
        Path | None,
        typer.Option(
            help="Technique id crosswalk (old -> new) added to the inventory's own: how to "
            "choose for a tag a split left ambiguous."
        ),
    ] = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Re-resolve rule tags against the loaded ATT&CK release, without re-import (a load does
    it by itself for the inventories mapped against another release)."""
    from loader.inventory_remap import remap_inventory

    with user_errors():
        cw = CW.load_crosswalk(crosswalk) if crosswalk is not None else None
    names = [name] if name else [r.name for r in run(C.list_inventories)]
    results = run(lambda g: [remap_inventory(g, n, crosswalk=cw) for n in names])
    if fmt == Format.json:
        emit([r.as_dict() for r in results], fmt)
        return
    for r in results:
        err.print(inventory_remap_line(r.as_dict()), markup=False, highlight=False)
    emit(
        [r.as_dict() for r in results],
        fmt,
        rows=[
            {
                "inventory": r.inventory,
                "releases": ", ".join(f"{d} {v}" for d, v in sorted(r.releases.items())),
                "covered": f"{r.techniques_covered_before} -> {r.techniques_covered}",
                "rules_changed": r.rules_changed,
                "ambiguous": [a["id"] for a in r.ids_ambiguous],
            }
            for r in results
        ],
        title="Inventories re-resolved",
    )


@inventory_app.command("delete")
def inventory_delete(
    name: Annotated[str, typer.Argument(help="Inventory name.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Delete an inventory and its rules."""
    if not yes and sys.stdin.isatty():
        typer.confirm(f"Delete inventory {name!r}?", abort=True)
    n = run(lambda g: inv.delete_inventory(g, name))
    out.print(f"deleted inventory {name} ({n} rules)")


@inventory_app.command("coverage")
def inventory_coverage(
    name: Annotated[str, typer.Argument(help="Inventory name.")],
    domain: DomainOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Every technique the inventory covers, with its rules (partial: parent/sub rules only)."""
    cov = run(lambda g: C.inventory_coverage(g, inventory=name, domain=domain))
    if fmt == Format.json:
        emit(cov, fmt)
        return
    rows = [
        {
            "technique_id": t.technique_id,
            "name": t.name,
            "tactics": t.tactics,
            "rules": len(t.rules),
            "partial": t.partial,
        }
        for t in cov.techniques
    ]
    if fmt == Format.table:
        out.print(
            styled(bold(name), f": {cov.covered} techniques covered, {cov.partial} partially")
        )
    emit(cov, fmt, rows=rows, title="Coverage")


# ---------------------------------------------------------------- analyses


@app.command()
def gaps(
    actors: ActorsArg,
    inventory: InventoryOpt,
    platform: PlatformOpt = None,
    domain: DomainOpt = None,
    software: SoftwareOpt = False,
    partial: PartialOpt = False,
    limit: Annotated[int, typer.Option(help="Gaps to list at most.")] = 30,
    show_all: Annotated[bool, typer.Option("--all", help="List covered techniques too.")] = False,
    fmt: FormatOpt = Format.table,
) -> None:
    """Gap analysis: the actors' techniques against an inventory, gaps ranked by priority."""
    ga = run(lambda g: C.gap_analysis(g, **_tm(actors, inventory, platform, domain, software,
                                                partial)))  # fmt: skip
    print_gaps(ga, fmt, limit=limit, show_all=show_all)


def print_gaps(ga: C.GapAnalysis, fmt: Format, *, limit: int, show_all: bool) -> None:
    """A gap analysis as JSON, CSV or tables with per-tactic bars and the top gaps' reasons."""
    for warning in ga.warnings:
        err.print(f"warning: {warning}", markup=False, highlight=False)
    if fmt == Format.json:
        emit(ga, fmt)
        return
    chosen = ga.techniques if show_all else ga.gap_techniques()
    rows = [
        {
            "rank": i + 1,
            "technique_id": t.technique_id,
            "name": t.name if not t.parent_name else f"{t.parent_name}: {t.name}",
            "tactics": t.tactics,
            "priority": t.priority,
            "status": "covered" if t.covered else "partial" if t.partial else "gap",
            "actors": t.actors,
            **({} if fmt == Format.table else {"why": "; ".join(t.reasons)}),
        }
        for i, t in enumerate(chosen[:limit])
    ]
    if fmt == Format.table:
        names = ", ".join(P.actor_label(a) for a in ga.actors)  # with weights
        out.print(styled(bold(names), " against inventory ", bold(ga.inventory)))
        out.print(
            f"{ga.total} techniques: {ga.covered} covered ({ga.coverage_pct:g}%), "
            f"{ga.gaps} gaps, {ga.partial} partially covered"
        )
        multi = len({t.domain for t in ga.tactics if t.total}) > 1
        shown = [t for t in ga.tactics if t.total or not multi]
        out.print("\n".join(C.tactic_bar_lines(shown, with_domain=multi)))
    emit(ga, fmt, rows=rows, title="Gaps by priority" if not show_all else "Techniques")
    if fmt == Format.table:
        for t in chosen[: min(limit, 5)]:
            out.print(styled(bold(f"{t.technique_id} {t.name}"), f" (priority {t.priority:g})"))
            out.print("\n".join(f"  - {r}" for r in t.reasons))


@app.command()
def telemetry(
    actors: ActorsArg,
    inventory: InventoryOpt,
    platform: PlatformOpt = None,
    domain: DomainOpt = None,
    software: SoftwareOpt = False,
    partial: PartialOpt = False,
    level: Annotated[
        TelemetryLevel, typer.Option(help="log_source or data_component.")
    ] = TelemetryLevel.log_source,
    collected: Annotated[
        list[str] | None, typer.Option(help="A source already collected (repeatable).")
    ] = None,
    limit: Annotated[int, typer.Option(help="Steps at most.")] = 10,
    fmt: FormatOpt = Format.table,
) -> None:
    """Which telemetry to collect first: greedy marginal gain over the gaps."""
    plan = run(
        lambda g: C.prioritize_telemetry(
            g, **_tm(actors, inventory, platform, domain, software, partial),
            level=level, collected=collected, limit=limit,
        )
    )  # fmt: skip
    for warning in plan.warnings:
        err.print(f"warning: {warning}", markup=False, highlight=False)
    if fmt == Format.json:
        emit(plan, fmt)
        return
    rows = [
        {
            "rank": s.rank,
            "source": s.source,
            "gain": f"+{s.gain}",
            "coverage": f"{s.coverage_before:.1f}% -> {s.coverage_after:.1f}%",
            "techniques": s.techniques_gained,
            "analytics": sorted({a.analytic_id for a in s.analytics}),
        }
        for s in plan.steps
    ]
    if fmt == Format.table:
        # One decimal, as `plan` prints its figures; and say what the figure counts: the
        # gaps this telemetry can show (the plan's target also counts gaps without telemetry).
        out.print(
            f"{plan.gaps} gaps; {plan.reachable} can be seen by some ATT&CK telemetry. Coverage "
            f"{plan.coverage_pct:.1f}% now, {plan.final_coverage_pct:.1f}% once rules use the "
            "telemetry below"
        )
    emit(plan, fmt, rows=rows, title=f"Collect first ({plan.level.value})")
    if fmt == Format.table and plan.unreachable:
        out.print(
            f"no ATT&CK telemetry known for {len(plan.unreachable)} gaps (not counted above; "
            "`plan` lists them too): " + ", ".join(plan.unreachable)
        )


@app.command()
def plan(
    actors: ActorsArg,
    inventory: InventoryOpt,
    platform: PlatformOpt = None,
    domain: DomainOpt = None,
    software: SoftwareOpt = False,
    partial: PartialOpt = False,
    per_tier: Annotated[int, typer.Option(help="Gaps per 30-day tier.")] = 10,
    fmt: Annotated[PlanFormat, typer.Option("--format", "-f", help="Output format.")] = (
        PlanFormat.yaml
    ),
    output: OutputOpt = None,
) -> None:
    """Remediation plan: priority_1/2/3 gaps (30/60/90 days) with sources, approach, effort."""
    result = run(
        lambda g: P.remediation_plan(
            g, **_tm(actors, inventory, platform, domain, software, partial), per_tier=per_tier
        )
    )
    if fmt == PlanFormat.json:
        _write(json.dumps(to_jsonable(result), indent=2), output)
    else:
        _write(P.plan_yaml(result), output)


@app.command()
def emulation(
    actors: ActorsArg,
    inventory: InventoryOpt,
    platform: PlatformOpt = None,
    domain: DomainOpt = None,
    software: SoftwareOpt = False,
    partial: PartialOpt = False,
    atomics: Annotated[
        Path | None,
        typer.Option(
            help="Atomic Red Team checkout (default: $TTPGRAPH_ATOMICS_DIR or ../shared)."
        ),
    ] = None,
    crosswalk: Annotated[
        Path | None,
        typer.Option(help="Id crosswalk old -> new (default: the inventory's own)."),
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Gaps at most, by priority.")] = None,
    fmt: Annotated[
        EmulationFormat, typer.Option("--format", "-f", help="table, json, csv or script.")
    ] = EmulationFormat.table,
) -> None:
    """Atomic Red Team tests for the gaps, as Invoke-AtomicTest lines (by number and GUID)."""
    with user_errors():
        root = atomics or atomic.find_atomics_dir()
        if root is None:
            raise InvalidInput("no Atomic Red Team index found: pass --atomics DIR")
        index = atomic.read_index(root)
        pairs = None
        if crosswalk is not None:
            pairs = [(e.src, e.dst) for e in CW.load_crosswalk(crosswalk).entries]
    result = run(
        lambda g: P.emulation_plan(
            g, **_tm(actors, inventory, platform, domain, software, partial),
            atomics=index, crosswalk=pairs, limit=limit,
        )
    )  # fmt: skip
    if fmt == EmulationFormat.json:
        emit(result, Format.json)
        return
    if fmt == EmulationFormat.script:
        lines = [f"# {t.technique_id} {t.name} (priority {t.priority:g})\n" + "\n".join(t.invoke)
                 for t in result.techniques]  # fmt: skip
        sys.stdout.write("\n".join(lines) + "\n")
        return
    rows = [
        {
            "technique_id": t.technique_id,
            "atomic_id": x.atomic_technique,
            "test": x.test_number,
            "name": x.name,
            "platforms": x.platforms,
            "guid": x.guid,
            "invoke": x.invoke,
        }
        for t in result.techniques
        for x in t.tests
    ]
    emit(result, Format(fmt.value), rows=rows, title="Atomic tests for the gaps")
    if fmt == EmulationFormat.table:
        out.print(
            f"{result.with_tests} of {result.gaps} gaps have Atomic tests ({result.tests} tests)"
        )
        if result.without_tests:
            out.print("no Atomic test for: " + ", ".join(result.without_tests))


@app.command()
def report(
    actors: ActorsArg,
    inventory: InventoryOpt,
    platform: PlatformOpt = None,
    domain: DomainOpt = None,
    software: SoftwareOpt = False,
    partial: PartialOpt = False,
    top: Annotated[int, typer.Option(help="Priority gaps to show.")] = 10,
    fmt: Annotated[ReportFormat, typer.Option("--format", "-f", help="Output format.")] = (
        ReportFormat.text
    ),
    output: OutputOpt = None,
) -> None:
    """THREAT MODEL ASSESSMENT: coverage, tactic breakdown, top gaps, recommendation."""
    result = run(
        lambda g: P.assessment_report(
            g, **_tm(actors, inventory, platform, domain, software, partial), top=top
        )
    )
    print_report(result, fmt, output)


def print_report(result: P.AssessmentReport, fmt: ReportFormat, output: Path | None) -> None:
    """The assessment as JSON, Markdown or text, to ``output`` or stdout."""
    if fmt == ReportFormat.json:
        _write(json.dumps(to_jsonable(result), indent=2), output)
    elif fmt == ReportFormat.markdown:
        _write(P.render_markdown(result), output)
    else:
        _write(P.render_text(result), output)
