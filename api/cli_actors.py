"""CLI commands for actor intelligence: groups search, profile, compare, similar."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from queries.kinds import PathKind
from queries.lazy import lazy_module

from .cli import FormatOpt, app, out, run
from .output import Format, bold, emit, styled

if TYPE_CHECKING:
    from queries import actors
else:
    actors = lazy_module("queries.actors")

groups_app = typer.Typer(help="Find groups.")
app.add_typer(groups_app, name="groups")

DomainOpt = Annotated[str | None, typer.Option(help="enterprise, mobile or ics.")]
SoftwareOpt = Annotated[
    bool,
    typer.Option("--software/--no-software", help="Count techniques the actors' software uses."),
]


@groups_app.command("search")
def groups_search(
    text: Annotated[str, typer.Argument(help="Words to find in names, aliases, descriptions.")],
    limit: Annotated[int, typer.Option(help="Most hits to show.")] = 20,
    fmt: FormatOpt = Format.table,
) -> None:
    """Groups ranked by a full-text match (e.g. sectors: financial, energy; countries)."""
    hits = run(lambda g: actors.search_groups(g, text=text, limit=limit))
    emit(hits, fmt, columns=["group_id", "name", "score", "aliases"], title=f"Groups: {text}")


@app.command()
def profile(
    group: Annotated[str, typer.Argument(help="ATT&CK id, name or alias (G0016, APT29, ...).")],
    kind: Annotated[
        list[PathKind] | None, typer.Option(help="Path kinds to include (repeatable).")
    ] = None,
    platform: Annotated[
        list[str] | None, typer.Option(help="Platform filter (repeatable).")
    ] = None,
    domain: DomainOpt = None,
    tactic: Annotated[str | None, typer.Option(help="Tactic shortname or name.")] = None,
    rollup: Annotated[bool, typer.Option(help="Merge sub-techniques into parents.")] = False,
    show_all: Annotated[
        bool, typer.Option("--all", help="A table lists every technique (default with --tactic).")
    ] = False,
    fmt: FormatOpt = Format.table,
) -> None:
    """Every technique a group is tied to and how we know (direct, software, campaign).

    As a table: a summary per tactic unless --all or --tactic; json and csv hold everything."""
    p = run(
        lambda g: actors.profile_group(
            g, group=group, kinds=kind, platforms=platform, domain=domain, tactic=tactic,
            rollup=rollup,
        )
    )  # fmt: skip
    if fmt == Format.json:
        emit(p, fmt)
        return
    rows = [
        {
            "technique_id": t.technique_id,
            "name": t.name if not t.parent_name else f"{t.parent_name}: {t.name}",
            "tactics": t.tactics,
            "how": sorted(
                {
                    e.kind.value if e.kind == PathKind.direct else f"{e.kind.value}:{e.via_id}"
                    for e in t.evidence
                }
            ),
        }
        for t in p.techniques
    ]
    if fmt == Format.table:
        note = f"  ({p.resolved_note})" if p.resolved_note else ""
        out.print(
            styled(bold(f"{p.group_id} {p.name}"), f"{note}  aliases: {', '.join(p.aliases)}")
        )
        out.print(
            f"{p.technique_count} techniques, {len(p.software)} software, "
            f"{len(p.campaigns)} campaigns"
        )
    if fmt == Format.table and not show_all and not tactic:
        emit(p, fmt, rows=by_tactic(p), title="Techniques by tactic (--all lists each)")
    else:
        emit(p, fmt, rows=rows, title="Techniques")
    if fmt == Format.table:
        emit(p, fmt, rows=[m.model_dump() for m in p.mitigations[:10]],
             columns=["mitigation_id", "name", "count"], title="Top mitigations")  # fmt: skip


def by_tactic(p: actors.GroupProfile) -> list[dict[str, object]]:
    """Per tactic (matrix order): how many techniques, by which kind of evidence, a few ids."""
    found: dict[str, list[actors.ProfileTechnique]] = {}
    for t in p.techniques:
        for tactic in t.tactics:
            found.setdefault(tactic, []).append(t)
    rows: list[dict[str, object]] = []
    for tactic, used in found.items():
        kinds = [set(t.kinds) for t in used]
        rows.append(
            {
                "tactic": tactic,
                "techniques": len(used),
                "direct": sum(PathKind.direct in k for k in kinds),
                "software": sum(PathKind.software in k for k in kinds),
                "campaign": sum(PathKind.campaign in k for k in kinds),
                "e.g.": ", ".join(t.technique_id for t in used[:4]),
            }
        )
    return rows


@app.command()
def compare(
    groups: Annotated[list[str], typer.Argument(help="2 to 50 actors: ids, names or aliases.")],
    software: SoftwareOpt = False,
    domain: DomainOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Techniques common to all, unique to each, k of N, and pairwise Jaccard.

    --format csv: the techniques (a column per actor, "APT29 (G0016)"), a blank line, then the
    Jaccard matrix."""
    c = run(
        lambda g: actors.compare_groups(g, groups=groups, include_software=software, domain=domain)
    )
    if fmt == Format.json:
        emit(c, fmt)
        return
    ids = [a.group_id for a in c.actors]
    # Columns named "APT29 (G0016)": ids alone say little in a spreadsheet.
    label = {a.group_id: f"{a.name} ({a.group_id})" for a in c.actors}
    rows = [
        {"technique_id": t.technique_id, "name": t.name, "k_of_n": f"{t.count}/{t.of}",
         **{label[g]: ",".join(k.value for k in t.actors.get(g, [])) for g in ids}}
        for t in c.techniques
    ]  # fmt: skip
    if fmt == Format.table:
        names = ", ".join(
            f"{a.group_id} {a.name} ({c.technique_counts[a.group_id]})" for a in c.actors
        )
        out.print(bold(names))
        out.print(f"common to all: {len(c.common)}; unique: " + ", ".join(
            f"{g} {len(u)}" for g, u in c.unique.items()))  # fmt: skip
    emit(c, fmt, rows=rows, title="Techniques", columns=["technique_id", "name", "k_of_n",
                                                          *label.values()])  # fmt: skip
    # The table shows ids (narrow); a CSV, after a blank line, the matrix with names.
    head = label if fmt == Format.csv else {g: g for g in ids}
    matrix = [{"jaccard": head[a], **{head[b]: c.jaccard_matrix[i][j] for j, b in enumerate(ids)}}
              for i, a in enumerate(ids)]  # fmt: skip
    if fmt == Format.csv:
        out.file.write("\n")
    emit(c, fmt, rows=matrix, title="Jaccard")


@app.command()
def similar(
    group: Annotated[str, typer.Argument(help="ATT&CK id, name or alias.")],
    software: SoftwareOpt = False,
    domain: DomainOpt = None,
    limit: Annotated[int, typer.Option(help="How many to show.")] = 10,
    fmt: FormatOpt = Format.table,
) -> None:
    """Groups most similar to one group, over every group in the graph (Jaccard)."""
    s = run(
        lambda g: actors.similar_groups(
            g, group=group, include_software=software, domain=domain, limit=limit
        )
    )
    if fmt == Format.json:
        emit(s, fmt)
        return
    if fmt == Format.table:
        out.print(styled(bold(f"{s.group_id} {s.name}"), f": {s.technique_count} techniques, "
                         f"compared with {s.compared_with} groups"))  # fmt: skip
    emit(s, fmt, rows=[x.model_dump() for x in s.similar],
         columns=["group_id", "name", "jaccard", "shared", "technique_count"])  # fmt: skip
