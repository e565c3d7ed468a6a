"""Splunk: Security Content detections (YAML) and Splunk ES saved-search exports (CSV, JSON)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from .files import check_input, dir_parts, read_text, walk_files
from .model import (
    ACTIVE,
    DEPRECATED,
    DISABLED,
    EXPERIMENTAL,
    TEST,
    UNKNOWN,
    ParsedInventory,
    ParseIssue,
    Rule,
    Skips,
    finish_inventory,
    new_inventory,
)
from .techniques import Techniques
from .values import one_line, scalar_str, truthy, type_name
from .yaml_docs import load_yaml

_SPLUNK_STATUS = {
    "production": ACTIVE,
    "experimental": EXPERIMENTAL,
    "validation": TEST,
    "deprecated": DEPRECATED,
    "removed": DEPRECATED,
}
_SPLUNK_NOT_DETECTIONS = {"baseline", "investigation"}
_SPLUNK_KEYS = frozenset({"name", "id", "status", "type", "search", "tags", "mitre_attack_id"})


def parse_splunk(root: Path) -> ParsedInventory:
    """Parse Splunk Security Content detections (YAML) from a folder, recursively, or one file.

    A detection is a mapping with ``name`` and ``search`` (types ``Baseline`` and
    ``Investigation`` are skipped, as are stories, macros, lookups...: listed in ``notes``).
    Techniques from ``tags.mitre_attack_id`` and, in the newer schema, a top-level
    ``mitre_attack_id``. Status: production -> active, experimental, validation -> test,
    deprecated/removed (or a ``deprecated/``/``removed/`` folder) -> deprecated.
    """
    root = check_input(root, file_only=False)
    inv = new_inventory("splunk", root)
    ignored: set[str] = set()
    skips = Skips()
    for path, rel in walk_files(root, (".yml", ".yaml"), inv.issues):
        text = read_text(path, rel, inv.issues)
        if text is None:
            continue
        docs = load_yaml(text, rel, inv.issues, _SPLUNK_KEYS)
        if docs is None:
            continue
        parts = dir_parts(root, rel)
        for i, doc in docs:
            name = scalar_str(doc.get("name"))
            if not name or "search" not in doc:
                skips.add("YAML documents that are not detections (no name/search)", rel)
                continue
            kind = (scalar_str(doc.get("type")) or "").strip()
            if kind.lower() in _SPLUNK_NOT_DETECTIONS:
                skips.add(f"{kind} searches (not detections)", rel)
                continue
            raw_status = (scalar_str(doc.get("status")) or "").strip()
            status = _SPLUNK_STATUS.get(raw_status.lower(), UNKNOWN)
            if parts & {"deprecated", "removed"}:
                status = DEPRECATED
            techniques = Techniques(ignored)
            tags = doc.get("tags")
            if isinstance(tags, dict):
                techniques.add_all(tags.get("mitre_attack_id"))
            techniques.add_all(doc.get("mitre_attack_id"))
            rule_id = (scalar_str(doc.get("id")) or "").strip()
            rule_id = rule_id or (rel if len(docs) == 1 else f"{rel}#{i}")
            inv.rules.append(
                Rule(
                    name=one_line(name, 500),
                    rule_id=rule_id,
                    file=rel,
                    status=status,
                    techniques=techniques.sorted(),
                    raw_tags=techniques.raw,
                    format="splunk",
                    raw_status=raw_status,
                )
            )
    return finish_inventory(inv, ignored, skips)


# --------------------------------------------------------------------------- Splunk ES

_ES_ENABLED = "action.correlationsearch.enabled"
_ES_ANNOTATIONS = "action.correlationsearch.annotations"
_ES_LABEL = "action.correlationsearch.label"


def parse_splunk_es(path: Path) -> ParsedInventory:
    """Parse a Splunk ES saved-search export (``| rest /services/saved/searches``).

    CSV (``outputcsv`` / "Export as CSV") or JSON: ``{"results": [...]}``, a plain list of rows,
    the REST API's ``{"entry": [{"name": ..., "content": {...}}]}`` or JSON lines of
    ``{"result": {...}}``. When the export has an ``action.correlationsearch.enabled`` column, only
    correlation searches are rules (the others are noted as skipped). Name: the correlation
    search label, else ``title``; id: ``title`` (rows repeated per search head are merged).
    Techniques: the ``mitre_attack`` list of the JSON in ``action.correlationsearch.annotations``.
    Status: ``disabled`` true -> disabled, else active.
    """
    path = check_input(path, file_only=True)
    inv = new_inventory("splunk-es", path)
    ignored: set[str] = set()
    rel = path.name
    text = read_text(path, rel, inv.issues)
    if text is None:
        return finish_inventory(inv, ignored)
    stripped = text.lstrip()
    if path.suffix.lower() in {".json", ".jsonl"} or stripped[:1] in {"{", "["}:
        rows = _es_json_rows(text, rel, inv.issues)
    else:
        rows = _csv_rows(text, rel, inv.issues)
    if rows is None:
        return finish_inventory(inv, ignored)
    has_cs_column = any(_ES_ENABLED in row for row in rows)
    skips = Skips()
    for n, row in enumerate(rows, 1):
        title = scalar_str(row.get("title")) or scalar_str(row.get("name"))
        if not title or not title.strip():
            inv.issues.append(ParseIssue(rel, f"row {n}: no title"))
            continue
        title = title.strip()
        if has_cs_column and not truthy(row.get(_ES_ENABLED)):
            skips.add("saved searches that are not correlation searches", one_line(title, 80))
            continue
        techniques = Techniques(ignored)
        annotations = row.get(_ES_ANNOTATIONS)
        if isinstance(annotations, str) and annotations.strip():
            try:
                annotations = json.loads(annotations)
            except (json.JSONDecodeError, RecursionError) as exc:
                inv.issues.append(
                    ParseIssue(rel, one_line(f"row {n} ({title}): annotations not JSON: {exc}"))
                )
                annotations = None
        if isinstance(annotations, dict):
            techniques.add_all(annotations.get("mitre_attack"))
        raw_disabled = scalar_str(row.get("disabled"))
        if isinstance(row.get("disabled"), bool):
            raw_disabled = str(row["disabled"]).lower()
        label = scalar_str(row.get(_ES_LABEL))
        inv.rules.append(
            Rule(
                name=one_line(label if label and label.strip() else title, 500),
                rule_id=title,
                file=rel,
                status=DISABLED if truthy(row.get("disabled")) else ACTIVE,
                techniques=techniques.sorted(),
                raw_tags=techniques.raw,
                format="splunk-es",
                raw_status=f"disabled={raw_disabled}" if raw_disabled is not None else "",
            )
        )
    _merge_by_id(inv, "rows")
    return finish_inventory(inv, ignored, skips)


def _es_json_rows(text: str, rel: str, issues: list[ParseIssue]) -> list[dict] | None:
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg != "Extra data":
            issues.append(ParseIssue(rel, one_line(f"invalid JSON: {exc}")))
            return None
        data = []  # JSON lines: one {"result": {...}} object per line
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                data.append(json.loads(line))
            except (json.JSONDecodeError, RecursionError) as line_exc:
                issues.append(ParseIssue(rel, one_line(f"invalid JSON on line {n}: {line_exc}")))
                return None
    except RecursionError:
        issues.append(ParseIssue(rel, "invalid JSON: nested too deeply"))
        return None
    if isinstance(data, dict):
        if isinstance(data.get("results"), list):
            data = data["results"]
        elif isinstance(data.get("entry"), list):
            data = [
                {
                    "title": e.get("name"),
                    **(e["content"] if isinstance(e.get("content"), dict) else {}),
                }
                for e in data["entry"]
                if isinstance(e, dict)
            ]
        elif isinstance(data.get("result"), dict):
            data = [data]
        else:
            issues.append(ParseIssue(rel, "JSON is not a saved-search export (no results/entry)"))
            return None
    if not isinstance(data, list):
        issues.append(ParseIssue(rel, f"JSON is a {type_name(data)}, not a list of searches"))
        return None
    rows = []
    for n, item in enumerate(data, 1):
        if isinstance(item, dict) and isinstance(item.get("result"), dict):
            item = item["result"]
        if isinstance(item, dict):
            rows.append(item)
        else:
            issues.append(ParseIssue(rel, f"item {n} is a {type_name(item)}, not an object"))
    return rows


def _csv_rows(text: str, rel: str, issues: list[ParseIssue]) -> list[dict] | None:
    """Rows of a CSV/TSV (delimiter guessed from the header line) as dicts."""
    header = text.lstrip().split("\n", 1)[0]
    delimiter = max(",;\t|", key=header.count)
    try:
        reader = csv.DictReader(io.StringIO(text.lstrip()), delimiter=delimiter)
        return [row for row in reader]
    except csv.Error as exc:
        issues.append(ParseIssue(rel, one_line(f"invalid CSV: {exc}")))
        return None


def _merge_by_id(inv: ParsedInventory, what: str) -> None:
    """Merge rules sharing a ``rule_id`` (union of techniques and raw tags, first name wins)."""
    merged: dict[str, Rule] = {}
    # Sets beside the lists: merging stays linear however many rules repeat an id.
    techniques: dict[str, set[str]] = {}
    tags: dict[str, set[str]] = {}
    dupes = 0
    for rule in inv.rules:
        first = merged.get(rule.rule_id)
        if first is None:
            merged[rule.rule_id] = rule
            continue
        if rule.rule_id not in tags:
            techniques[rule.rule_id] = set(first.techniques)
            tags[rule.rule_id] = set(first.raw_tags)
        dupes += 1
        techniques[rule.rule_id].update(rule.techniques)
        seen = tags[rule.rule_id]
        for t in rule.raw_tags:
            if t not in seen:
                seen.add(t)
                first.raw_tags.append(t)
    for rule_id, ids in techniques.items():
        merged[rule_id].techniques = sorted(ids)
    if dupes:
        inv.notes.append(f"merged {dupes} {what} repeating an earlier id")
    inv.rules = list(merged.values())
