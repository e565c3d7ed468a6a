"""Microsoft Sentinel analytic rules: YAML, or an ARM JSON export."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from .files import check_input, dir_parts, read_text, walk_files
from .model import (
    ACTIVE,
    DEPRECATED,
    DISABLED,
    UNKNOWN,
    UNSUPPORTED,
    ParsedInventory,
    ParseIssue,
    Rule,
    Skips,
    finish_inventory,
    new_inventory,
)
from .techniques import Techniques
from .values import as_list, falsy, id_or, one_line, scalar_str, truthy, type_name
from .yaml_docs import load_yaml

_SENTINEL_STATUS = {
    "available": ACTIVE,
    "installed": ACTIVE,
    "enabled": ACTIVE,
    "notavailable": UNSUPPORTED,
    "deprecated": DEPRECATED,
    "disabled": DISABLED,
}
_SENTINEL_RULE_KEYS = ("query", "relevantTechniques", "tactics", "kind", "queryFrequency")
_SENTINEL_KEYS = frozenset(
    {"id", "name", "status", "enabled", "techniques", "subTechniques", *_SENTINEL_RULE_KEYS}
)
_GUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)


def parse_sentinel(root: Path) -> ParsedInventory:
    """Parse Microsoft Sentinel analytic rules from a folder, recursively, or one file.

    YAML (the Azure-Sentinel repository format): a mapping with ``name`` and one of ``query``,
    ``relevantTechniques``, ``tactics``, ``kind``; id ``id``; techniques from
    ``relevantTechniques`` (and ``techniques``/``subTechniques`` if present). JSON: an ARM
    export whose ``resources`` include ``.../alertRules`` (or a single rule object with
    ``properties``); name ``properties.displayName``, techniques from ``properties.techniques``
    and ``properties.subTechniques``. Status: ``status`` Available/Installed -> active,
    NotAvailable -> unsupported; ``enabled: false`` -> disabled; a name starting
    ``[Deprecated]`` or a ``deprecated/`` folder -> deprecated.
    """
    root = check_input(root, file_only=False)
    inv = new_inventory("sentinel", root)
    ignored: set[str] = set()
    skips = Skips()
    for path, rel in walk_files(root, (".yml", ".yaml", ".json"), inv.issues):
        text = read_text(path, rel, inv.issues)
        if text is None:
            continue
        if rel.lower().endswith(".json"):
            items = _sentinel_arm_items(text, rel, inv.issues)
        else:
            docs = load_yaml(text, rel, inv.issues, _SENTINEL_KEYS)
            items = None if docs is None else [(f"{rel}#{i}", d) for i, d in docs]
        if items is None:
            continue
        if not items:
            skips.add("files without analytic rules", rel)
            continue
        parts = dir_parts(root, rel)
        for fallback_id, item in items:
            rule = _sentinel_rule(item, rel, fallback_id, parts, ignored)
            if rule is None:
                skips.add("documents that are not analytic rules", rel)
            else:
                inv.rules.append(rule)
    return finish_inventory(inv, ignored, skips)


def _sentinel_arm_items(text: str, rel: str, issues: list[ParseIssue]) -> list | None:
    try:
        data: Any = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        issues.append(ParseIssue(rel, one_line(f"invalid JSON: {exc}")))
        return None
    if isinstance(data, dict) and isinstance(data.get("resources"), list):
        resources = data["resources"]
    elif isinstance(data, dict) and isinstance(data.get("value"), list):
        resources = data["value"]  # REST list response
    elif isinstance(data, list):
        resources = data
    elif isinstance(data, dict):
        resources = [data]
    else:
        issues.append(ParseIssue(rel, f"JSON is a {type_name(data)}, not an ARM export"))
        return None
    items = []
    for n, res in enumerate(resources, 1):
        if not isinstance(res, dict) or not isinstance(res.get("properties"), dict):
            continue
        rtype = scalar_str(res.get("type")) or ""
        if rtype and "alertrules" not in rtype.lower():
            continue
        props = dict(res["properties"])
        name_field = scalar_str(res.get("name")) or ""
        guid = _GUID_RE.findall(name_field)
        props["id"] = guid[-1] if guid else name_field or f"{rel}#{n}"
        props["name"] = props.get("displayName")
        props.setdefault("kind", res.get("kind"))
        items.append((f"{rel}#{n}", props))
    return items


def _sentinel_rule(
    doc: dict, rel: str, fallback_id: str, parts: set[str], ignored: set[str]
) -> Rule | None:
    name = scalar_str(doc.get("name"))
    if not name or not name.strip() or not any(k in doc for k in _SENTINEL_RULE_KEYS):
        return None
    raw_status = (scalar_str(doc.get("status")) or "").strip()
    status = _SENTINEL_STATUS.get(raw_status.lower().replace(" ", ""), UNKNOWN)
    if falsy(doc.get("enabled")):
        status = DISABLED
    elif status == UNKNOWN and truthy(doc.get("enabled")):
        status = ACTIVE
    if name.strip().lower().startswith("[deprecated]") or "deprecated" in parts:
        status = DEPRECATED
    techniques = Techniques(ignored)
    for key in ("relevantTechniques", "techniques", "subTechniques"):
        techniques.add_all(doc.get(key))
    tactics = [t for t in (scalar_str(x) for x in as_list(doc.get("tactics"))) if t]
    return Rule(
        name=one_line(name, 500),
        rule_id=id_or(doc.get("id"), fallback_id),
        file=rel,
        status=status,
        techniques=techniques.sorted(),
        raw_tags=list(dict.fromkeys([*techniques.raw, *tactics])),
        format="sentinel",
        raw_status=raw_status,
    )
