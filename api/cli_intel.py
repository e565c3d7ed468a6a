"""CLI commands for the organisation's own intelligence: ``intel import|sources|delete|link``,
``incident create|list``, ``attribute``, ``ioc`` and ``expect``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from queries.lazy import lazy_module

from .cli import FormatOpt, app, err, out, run
from .output import Format, bold, emit, step, styled

if TYPE_CHECKING:
    from loader import intel as intel_loader
    from queries import intel
else:
    intel_loader = lazy_module("loader.intel")
    intel = lazy_module("queries.intel")

intel_app = typer.Typer(
    help="Import the organisation's intelligence (OpenCTI, ATT&CK Workbench, MISP) and manage it."
)
app.add_typer(intel_app, name="intel")
incident_app = typer.Typer(help="Incidents: a named set of observed techniques (and IOCs).")
app.add_typer(incident_app, name="incident")

TechniquesOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--techniques",
        "-t",
        help="Observed technique ids or names, comma-separated or repeated (T1059.001,T1566.001).",
    ),
]
IncidentOpt = Annotated[
    str | None,
    typer.Option("--incident", "-i", help="An incident or report by name or STIX id."),
]
SoftwareOpt = Annotated[
    bool,
    typer.Option("--software/--no-software", help="Count techniques the actors' software uses."),
]
DomainOpt = Annotated[
    str | None,
    typer.Option(help="enterprise, mobile or ics (default: the observed techniques' domain)."),
]


def _warn(lines: list[str]) -> None:
    for line in lines:
        err.print(styled(("warning:", "yellow"), f" {line}"), soft_wrap=True)


# ---------------------------------------------------------------- intel


@intel_app.command("import")
def intel_import(
    file: Annotated[
        Path,
        typer.Argument(
            help="A STIX 2.1 bundle (OpenCTI, ATT&CK Workbench, MISP export) or MISP event JSON "
            "(.json or .json.gz)."
        ),
    ],
    source: Annotated[
        str | None,
        typer.Option(
            "--source",
            "-s",
            help="Label recorded on every node (default '<flavour>-export <file name>'); "
            "importing the same label again replaces it.",
        ),
    ] = None,
    link_attack_ids: Annotated[
        bool,
        typer.Option(
            "--link-attack-ids",
            help="Link clusters, software and campaigns that carry an ATT&CK id to ATT&CK's "
            "object (SAME_AS).",
        ),
    ] = False,
    fmt: FormatOpt = Format.table,
) -> None:
    """Import an export: validated whole (STIX objects with stix2), written in one transaction."""
    with step(f"importing {file.name}..."):
        res = run(
            lambda g: intel_loader.import_intel_file(
                g, file, source=source, link_attack_ids=link_attack_ids
            )
        )
    if fmt == Format.json:
        emit(res, fmt)
        return
    rows = [{"what": "node", "type": k, "count": v} for k, v in res.nodes.items()]
    rows += [{"what": "relationship", "type": k, "count": v} for k, v in res.relationships.items()]
    rows += [{"what": "skipped", "type": k, "count": v} for k, v in res.skipped.items()]
    if fmt == Format.table:
        verb = "replaced" if res.replaced else "imported"
        out.print(styled(bold(res.source), f" {verb} ({res.flavour}, {res.seconds:.2f} s)"))
    emit(res, fmt, rows=rows, columns=["what", "type", "count"], title="Imported")
    _warn(res.warnings)


@intel_app.command("sources")
def intel_sources(fmt: FormatOpt = Format.table) -> None:
    """The imported sources (exports, MISP events, incidents), newest first."""
    found = run(lambda g: intel.list_sources(g))
    emit(found, fmt, columns=["source", "flavour", "imported_at", "nodes", "relationships", "file"],
         title="Intelligence sources")  # fmt: skip


@intel_app.command("delete")
def intel_delete(
    source: Annotated[str, typer.Argument(help="The source label (see 'ttpgraph intel sources').")],
    fmt: FormatOpt = Format.table,
) -> None:
    """Remove everything one source imported (ATT&CK's own objects are never touched)."""
    n = run(lambda g: intel_loader.delete_source(g, source))
    emit({"source": source, "deleted_nodes": n}, fmt, rows=[{"source": source, "deleted_nodes": n}])


@intel_app.command("link")
def intel_link(
    cluster: Annotated[str, typer.Argument(help="The organisation's cluster: name, alias or id.")],
    group: Annotated[str, typer.Argument(help="The ATT&CK group: id, name or alias (G0016).")],
    remove: Annotated[bool, typer.Option("--remove", help="Remove the link instead.")] = False,
    fmt: FormatOpt = Format.table,
) -> None:
    """Record that a cluster of the organisation and an ATT&CK group are the same actor
    (SAME_AS), or remove that link."""
    res = run(lambda g: intel_loader.link_same_as(g, cluster=cluster, group=group, remove=remove))
    emit(res, fmt, rows=[res])


# ---------------------------------------------------------------- incidents


@incident_app.command("create")
def incident_create(
    name: Annotated[str, typer.Argument(help="The incident's name.")],
    techniques: TechniquesOpt = None,
    ioc: Annotated[
        list[str] | None,
        typer.Option("--ioc", help="An IOC seen (IP, domain, URL, hash, e-mail; repeatable)."),
    ] = None,
    description: Annotated[str | None, typer.Option(help="Free text.")] = None,
    first_seen: Annotated[str | None, typer.Option(help="When it started (ISO date).")] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace an incident of the same name.")
    ] = False,
    fmt: FormatOpt = Format.table,
) -> None:
    """A named set of observed techniques (+ IOCs), kept as the organisation's Incident."""
    res = run(
        lambda g: intel_loader.create_incident(
            g,
            name=name,
            techniques=intel.split_ids(techniques),
            iocs=intel.split_ids(ioc),
            description=description,
            first_seen=first_seen,
            replace=replace,
        )
    )
    if fmt == Format.json:
        emit(res, fmt)
        return
    rows = [{"type": k, "count": v} for k, v in {**res.nodes, **res.relationships}.items()]
    if fmt == Format.table:
        out.print(styled(bold(res.source), " replaced" if res.replaced else " created"))
    emit(res, fmt, rows=rows, columns=["type", "count"])
    _warn(res.warnings)


@incident_app.command("list")
def incident_list(fmt: FormatOpt = Format.table) -> None:
    """Incidents and reports (MISP events, STIX reports), newest first."""
    found = run(lambda g: intel.list_incidents(g))
    emit(found, fmt, columns=["name", "kind", "techniques", "iocs", "date", "source"],
         title="Incidents and reports")  # fmt: skip


# ---------------------------------------------------------------- questions


@app.command()
def attribute(
    techniques: TechniquesOpt = None,
    incident: IncidentOpt = None,
    software: SoftwareOpt = False,
    org: Annotated[
        bool, typer.Option("--org/--no-org", help="Rank the organisation's clusters too.")
    ] = True,
    domain: DomainOpt = None,
    rollup: Annotated[bool, typer.Option(help="Compare at the parent-technique level.")] = False,
    limit: Annotated[int, typer.Option(help="How many actors to show.")] = 10,
    fmt: FormatOpt = Format.table,
) -> None:
    """Who fits the observed techniques: ATT&CK groups and the organisation's clusters ranked by
    rarity-weighted similarity, with the shared and missing techniques."""
    a = run(
        lambda g: intel.attribute(
            g, techniques=intel.split_ids(techniques) or None, incident=incident,
            include_software=software, include_org=org, domain=domain, rollup=rollup, limit=limit,
        )
    )  # fmt: skip
    if fmt == Format.json:
        emit(a, fmt)
        return
    rows = [
        {
            "rank": c.rank,
            "actor": c.actor_id,
            "name": c.name,
            "kind": c.kind,
            "score": c.score,
            "similarity": c.similarity,
            "coverage": c.coverage,
            "shared": f"{c.shared}/{len(a.observed)}",
            "missing": c.missing_techniques,
            "unobserved": c.unobserved,
        }
        for c in a.candidates
    ]
    if fmt == Format.table:
        what = f"incident {a.incident!r}" if a.incident else "observed"
        scope = f", {a.actors_compared} actors compared ({a.domain or 'all domains'})"
        out.print(styled(bold(f"{len(a.observed)} techniques {what}"), scope))
        _warn(a.notes + ([f"no compared actor uses {', '.join(a.unused)}"] if a.unused else []))
    emit(a, fmt, rows=rows, title="Who fits")
    if fmt == Format.table and a.candidates:
        best = a.candidates[0]
        ev = [
            {"technique": f"{t.technique_id} {t.name}", "weight": t.weight, "how": _how(t.evidence),
             "procedure": next((e.procedure for e in t.evidence if e.procedure), "")[:160]}
            for t in best.shared_techniques
        ]  # fmt: skip
        emit(a, fmt, rows=ev, title=f"Evidence for {best.name}")
        out.print(a.method, style="dim")


def _how(evidence: list[Any]) -> list[str]:
    out_: list[str] = []
    for e in evidence:
        text = e.kind if e.kind == "direct" else f"{e.kind}:{e.via_name or e.via_id}"
        if text not in out_:
            out_.append(text)
    return out_


@app.command()
def ioc(
    value: Annotated[str, typer.Argument(help="An IP, domain, URL, hash, e-mail, file name...")],
    limit: Annotated[int, typer.Option(help="Most paths to follow.")] = 500,
    fmt: FormatOpt = Format.table,
) -> None:
    """What an IOC tells: the techniques, software, campaigns, groups and clusters it is linked
    to, with the shortest path to each."""
    a = run(lambda g: intel.ioc_lookup(g, value=value, limit=limit))
    if fmt == Format.json:
        emit(a, fmt)
        return
    rows = [
        {"kind": kind, "id": x.id, "name": x.name, "hops": x.hops, "via": x.via}
        for kind in ("techniques", "software", "campaigns", "actors", "reports", "sightings")
        for x in getattr(a, kind)
    ]
    if fmt == Format.table:
        out.print(styled(bold(value), ": " + ", ".join(
            f"{m.label} {m.stix_type or ''} ({m.source})" for m in a.matches)))  # fmt: skip
    emit(a, fmt, rows=rows, columns=["kind", "id", "name", "hops", "via"], title="Linked to")


@app.command()
def expect(
    actor: Annotated[str, typer.Argument(help="ATT&CK group (id, name, alias) or a cluster.")],
    techniques: TechniquesOpt = None,
    incident: IncidentOpt = None,
    software: SoftwareOpt = False,
    domain: Annotated[str | None, typer.Option(help="enterprise, mobile or ics.")] = None,
    inventory: Annotated[
        list[str] | None,
        typer.Option(help="Detection inventory to check (repeatable; default: all imported)."),
    ] = None,
    top: Annotated[int, typer.Option(help="Techniques a table shows (matrix order).")] = 25,
    show_all: Annotated[bool, typer.Option("--all", help="Show every technique.")] = False,
    fmt: FormatOpt = Format.table,
) -> None:
    """What to expect next from an actor: its techniques not observed yet, in matrix order,
    with whether the organisation's detection inventories cover them."""
    e = run(
        lambda g: intel.expect_next(
            g, actor=actor, techniques=intel.split_ids(techniques) or None, incident=incident,
            include_software=software, domain=domain, inventories=inventory,
        )
    )  # fmt: skip
    if fmt == Format.json:
        emit(e, fmt)
        return
    rows = [
        {
            "tactic": ", ".join(x.tactic_names),
            "technique": x.technique_id,
            "name": x.name,
            "how": x.kinds,
            "detectable": "?" if x.detectable is None else
            ("partial" if x.partial else ("yes" if x.detectable else "NO")),
            "rules": x.rules[:3],
        }
        for x in e.expected
    ]  # fmt: skip
    if fmt == Format.table:
        note = f" ({e.resolved_note})" if e.resolved_note else ""
        out.print(
            styled(
                bold(f"{e.actor_id} {e.name}"),
                f"{note}: {len(e.expected)} techniques not observed yet; "
                f"{len(e.observed_used)} of {len(e.observed)} observed are its",
            )
        )
        out.print(e.detection, style="dim")
        if not show_all and len(rows) > top:
            emit(e, fmt, rows=rows[:top], title=f"Expect next: the first {top} of {len(rows)}")
            out.print(f"... {len(rows) - top} more: --all lists every one", style="dim")
            return
    emit(e, fmt, rows=rows, title="Expect next")
