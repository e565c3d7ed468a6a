"""A release diff and a threat model's change as Navigator layers and Markdown."""

from __future__ import annotations

from .diff import GroupChange, ReleaseDiff, TacticFlow, TacticRef, TechniqueChange
from .model_change import ThreatModelChange

ADDED_COLOR = "#8ec843"
CHANGED_COLOR = "#ffe766"
RETIRED_COLOR = "#ff6666"


def diff_layer(diff: ReleaseDiff) -> dict[str, object]:
    """The diff as an ATT&CK Navigator layer (format 4.5) for the new release: added techniques
    green, renamed or moved ones yellow, revoked, deprecated or removed ones red, each with a
    comment saying what changed."""
    from ..layers import build_layer

    entries: dict[str, dict[str, object]] = {}
    severity = {ADDED_COLOR: 0, CHANGED_COLOR: 1, RETIRED_COLOR: 2}

    def add(c: TechniqueChange, color: str, text: str) -> None:
        e = entries.setdefault(
            c.technique_id,
            {"technique_id": c.technique_id, "tactics": c.tactics, "color": color, "notes": []},
        )
        if severity[color] > severity[str(e["color"])]:
            e["color"] = color
        notes = e["notes"]
        assert isinstance(notes, list)
        notes.append(text)

    for c in diff.added:
        add(c, ADDED_COLOR, f"added in {diff.new_version}")
    for r in diff.renamed:
        add(r, CHANGED_COLOR, f"renamed from '{r.old_name}'")
    for m in diff.moved:
        add(m, CHANGED_COLOR, f"tactics were {', '.join(m.old_tactics) or 'none'}")
    for v in diff.revoked:
        add(v, RETIRED_COLOR, "revoked" + (f": use {v.replaced_by}" if v.replaced_by else ""))
    for c in diff.deprecated:
        add(c, RETIRED_COLOR, "deprecated")
    for c in diff.removed:
        add(c, RETIRED_COLOR, f"not in {diff.new_version}")
    techniques = [
        {
            "technique_id": e["technique_id"],
            "tactics": e["tactics"],
            "color": e["color"],
            "comment": "; ".join(e["notes"]),  # type: ignore[arg-type]
        }
        for e in entries.values()
    ]
    version = diff.new_version if diff.new_version and diff.new_version[0].isdigit() else None
    return build_layer(
        techniques,
        name=f"ATT&CK {diff.old_version or '?'} -> {diff.new_version or '?'} ({diff.domain})",
        attack_version=version,
        domain=diff.domain,
        description=", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in diff.summary.items()),
        legend=[
            ("added", ADDED_COLOR),
            ("renamed or moved", CHANGED_COLOR),
            ("revoked, deprecated or removed", RETIRED_COLOR),
        ],
    )


COVERED_COLOR = "#8ec843"
PARTIAL_COLOR = "#ffe766"
GAP_COLOR = "#ff6666"


def model_change_layer(change: ThreatModelChange) -> dict[str, object]:
    """A threat model in the new release as a Navigator layer: its techniques coloured by
    coverage (covered green, partial yellow, gap red); the techniques whose status or actors
    changed score 1 (the others 0) and say why in their comment, so that the Navigator's score
    filter shows only what the release changed."""
    from ..layers import build_layer

    why = {c.technique_id: c for c in change.techniques}
    colors = {"covered": COVERED_COLOR, "partial": PARTIAL_COLOR, "gap": GAP_COLOR}
    rows = []
    for tid, tactics, status in change._new:
        c = why.get(tid)
        text = status if c is None else f"{c.old or 'not in the model'} -> {status}: {c.note}"
        rows.append(
            {
                "technique_id": tid,
                "tactics": tactics,
                "color": colors[status] if change.inventory else None,
                "score": 1 if c is not None else 0,
                "comment": text,
            }
        )
    version = change.new.version if change.new else None
    return build_layer(
        rows,
        name=f"{change.name}: threat model in ATT&CK {version or 'the new release'}",
        attack_version=version if version and version[0].isdigit() else None,
        domain=change._domain,
        description=model_headline(change),
        gradient={"colors": ["#ffffff", "#66b1ff"], "minValue": 0, "maxValue": 1},
        legend=[
            ("covered", COVERED_COLOR),
            ("partially covered", PARTIAL_COLOR),
            ("gap", GAP_COLOR),
        ]
        if change.inventory
        else [],  # fmt: skip
    )


def _md_table(headers: list[str], rows: list[list[object]]) -> list[str]:
    def cell(v: object) -> str:
        if isinstance(v, list):
            v = ", ".join(str(x) for x in v)
        return str("" if v is None else v).replace("|", "\\|").replace("\n", " ")

    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return out + [""]


def _tactic(t: TacticRef) -> str:
    return f"{t.shortname} ({t.tactic_id})"


def _went(flows: list[TacticFlow]) -> str:
    parts = []
    for f in flows:
        text = f"{_tactic(f)}: {len(f.techniques)}"
        if f.replaced:
            text += f" + {len(f.replaced)} revoked into it"
        parts.append(text)
    return "; ".join(parts)


def tactic_rows(diff: ReleaseDiff) -> list[dict[str, str]]:
    """The tactics section as rows (change, tactic, detail), for the table and Markdown."""
    t = diff.tactics
    rows = [{"change": "added", "tactic": _tactic(x), "detail": x.name} for x in t.added]
    rows += [{"change": "removed", "tactic": _tactic(x), "detail": x.name} for x in t.removed]
    rows += [
        {
            "change": "renamed",
            "tactic": _tactic(x),
            "detail": f"was {x.old_shortname} ({x.old_name}); now {x.name}",
        }
        for x in t.renamed
    ]
    split = {x.tactic_id for x in t.split}
    for x in t.flows:
        change = "split" if x.tactic_id in split else "techniques left"
        detail = f"its techniques went to {_went(x.went_to)}"
        if x.retired:
            detail += f"; {len(x.retired)} retired"
        rows.append({"change": change, "tactic": _tactic(x), "detail": detail})
    rows += [
        {"change": "merged", "tactic": _tactic(x), "detail": f"took from {_went(x.came_from)}"}
        for x in t.merged
    ]
    return rows


def group_kinds(g: GroupChange) -> str:
    """How a group's change splits over the path kinds: 'direct +1/-1, software +3/-2'."""
    return ", ".join(f"{k} +{len(c.gained)}/-{len(c.lost)}" for k, c in g.by_kind.items())


def diff_markdown(diff: ReleaseDiff) -> str:
    """The diff as Markdown: a summary, then one table per kind of change."""
    lines = [
        f"# ATT&CK {diff.domain}: {diff.old_version or '?'} -> {diff.new_version or '?'}",
        "",
        f"Old: {diff.old_source}  ",
        f"New: {diff.new_source}",
        "",
    ]
    lines += _md_table(
        ["change", "count"], [[k.replace("_", " "), v] for k, v in diff.summary.items()]
    )
    sections: list[tuple[str, list[str], list[list[object]]]] = [
        ("Tactics", ["change", "tactic", "detail"],
         [[r["change"], r["tactic"], r["detail"]] for r in tactic_rows(diff)]),
        ("Techniques added", ["id", "name", "tactics"],
         [[c.technique_id, c.name, c.tactics] for c in diff.added]),
        ("Techniques removed", ["id", "name", "tactics"],
         [[c.technique_id, c.name, c.tactics] for c in diff.removed]),
        ("Techniques revoked", ["id", "name", "replaced by"],
         [[c.technique_id, c.name, f"{c.replaced_by or ''} {c.replaced_by_name or ''}".strip()]
          for c in diff.revoked]),
        ("Techniques deprecated", ["id", "name"],
         [[c.technique_id, c.name] for c in diff.deprecated]),
        ("Techniques renamed", ["id", "old name", "new name"],
         [[c.technique_id, c.old_name, c.name] for c in diff.renamed]),
        ("Techniques moved between tactics", ["id", "name", "old tactics", "new tactics"],
         [[c.technique_id, c.name, c.old_tactics, c.tactics] for c in diff.moved]),
        ("Groups whose techniques changed (through every path kind)",
         ["id", "name", "status", "through", "before", "after", "gained", "lost"],
         [[g.group_id, g.name, g.status, group_kinds(g), g.old_count, g.new_count, g.gained,
           g.lost] for g in diff.groups]),
    ]  # fmt: skip
    for title, headers, rows in sections:
        if rows:
            lines += [f"## {title} ({len(rows)})", ""] + _md_table(headers, rows)
    d = diff.detection
    lines += ["## Detection model", "", d.note, ""]
    lines += _md_table(
        ["", "model", "component DETECTS", "strategies", "analytics", "log sources",
         "techniques (components)", "techniques (strategies)"],
        [[name, s.model, s.component_detects, s.strategies, s.analytics, s.log_sources,
          s.component_techniques, s.strategy_techniques]
         for name, s in (("old", d.old), ("new", d.new))],
    )  # fmt: skip
    if d.components:
        lines += [f"### Data components ({len(d.components)} changed)", ""]
        lines += _md_table(
            ["id", "name", "old", "new", "how (old -> new)", "kept", "gained", "lost"],
            [[c.data_component_id, c.name, c.old_techniques, c.new_techniques,
              f"{c.old_model} -> {c.new_model}", c.kept, len(c.gained), len(c.lost)]
             for c in d.components],
        )  # fmt: skip
    if diff.impact is not None:
        lines += ["## Impact on inventories", ""]
        for inv in diff.impact:
            lines += [
                f"### {inv.inventory}: {inv.affected_rules} of {inv.rules} rules affected",
                "",
            ]
            if inv.items:
                lines += _md_table(
                    ["rule", "technique", "problem", "retag to", "note"],
                    [[i.rule_name or i.rule_id, i.technique_id, i.problem, i.replacement, i.note]
                     for i in inv.items],
                )  # fmt: skip
    if diff.threat_models:
        lines += ["## Threat models", ""]
        for m in diff.threat_models:
            lines += [f"### {m.name}", "", model_headline(m), ""]
            if m.tactics:
                lines += _md_table(
                    ["tactic", "old covered", "new covered"],
                    [[t.tactic, f"{t.old_covered}/{t.old_total}", f"{t.new_covered}/{t.new_total}"]
                     for t in m.tactics],
                )  # fmt: skip
            if m.techniques:
                lines += _md_table(
                    ["technique", "name", "old", "new", "why"],
                    [[c.technique_id, c.name, c.old or "not in model", c.new or "not in model",
                      c.note] for c in m.techniques],
                )  # fmt: skip
            lines += [f"- {n}" for n in m.notes] + ([""] if m.notes else [])
    for note in diff.notes:
        lines.append(f"- {note}")
    return "\n".join(lines).rstrip() + "\n"


def model_headline(m: ThreatModelChange) -> str:
    """One line: the model's actors and inventory, and its coverage before and after."""
    who = ", ".join(m.actors)
    if m.old is None or m.new is None:
        return f"{who}: no inventory; {len(m.techniques)} technique(s) enter, leave or change"
    return (
        f"{who} against {m.inventory}: {m.old.covered}/{m.old.techniques} covered "
        f"({m.old.coverage_pct:g}%) in {m.old.version or 'old'} -> {m.new.covered}/"
        f"{m.new.techniques} ({m.new.coverage_pct:g}%) in {m.new.version or 'new'} "
        f"({m.change_pct:+g} points)"
    )
