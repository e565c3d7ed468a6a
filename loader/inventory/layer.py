"""ATT&CK Navigator layers as inventories: one claimed rule per covered technique."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .files import check_input, read_text
from .model import ACTIVE, ParsedInventory, ParseIssue, Rule, finish_inventory, new_inventory
from .techniques import normalize_technique_id
from .values import one_line, scalar_str


def _score(entry: dict) -> float | None:
    value = entry.get("score")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def parse_layer(path: Path) -> ParsedInventory:
    """Parse an ATT&CK Navigator layer (4.x; older layers with the same ``techniques`` list too).

    A technique entry counts as covered when it is not ``enabled: false`` and, if any entry of
    the layer has a numeric score, its score is > 0; if no entry has a score, when it has a
    ``color`` or a ``comment``. One ``active`` rule per covered technique (entries repeated
    across tactics merged), named ``"<layer name>: <id>"``, id the technique id.
    """
    path = check_input(path, file_only=True)
    inv = new_inventory("layer", path)
    ignored: set[str] = set()
    rel = path.name
    text = read_text(path, rel, inv.issues)
    if text is None:
        return finish_inventory(inv, ignored)
    try:
        data: Any = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        inv.issues.append(ParseIssue(rel, one_line(f"invalid JSON: {exc}")))
        return finish_inventory(inv, ignored)
    if not isinstance(data, dict) or not isinstance(data.get("techniques"), list):
        inv.issues.append(ParseIssue(rel, "not a Navigator layer: no 'techniques' list"))
        return finish_inventory(inv, ignored)
    layer_name = one_line(scalar_str(data.get("name")) or rel.rsplit(".", 1)[0], 200)
    entries = [e for e in data["techniques"] if isinstance(e, dict)]
    if len(entries) != len(data["techniques"]):
        inv.issues.append(ParseIssue(rel, "some technique entries are not objects: ignored"))
    scored = any(_score(e) is not None for e in entries)
    covered: dict[str, dict[str, None]] = {}  # id -> its tags (an ordered set)
    disabled = 0
    for entry in entries:
        raw = scalar_str(entry.get("techniqueID"))
        if raw is None or not raw.strip():
            continue
        if entry.get("enabled") is False:
            disabled += 1
            continue
        if scored:
            score = _score(entry)
            hit = score is not None and score > 0
        else:
            hit = bool(scalar_str(entry.get("color")) or scalar_str(entry.get("comment")))
        if not hit:
            continue
        tid = normalize_technique_id(raw)
        if tid is None:
            ignored.add(one_line(raw.strip(), 80))
            continue
        tags = covered.setdefault(tid, {})
        for tag in (raw.strip(), scalar_str(entry.get("tactic"))):
            if tag:
                tags.setdefault(tag)
    if disabled:
        inv.notes.append(f"{disabled} technique entries are disabled (enabled: false): not counted")
    for tid in sorted(covered):
        inv.rules.append(
            Rule(
                name=f"{layer_name}: {tid}",
                rule_id=tid,
                file=rel,
                status=ACTIVE,
                techniques=[tid],
                raw_tags=list(covered[tid]),
                format="layer",
            )
        )
    return finish_inventory(inv, ignored)
