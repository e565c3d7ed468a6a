"""Elastic detection rules (``[rule]`` TOML) and hunting queries (``[hunt]`` TOML)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from .files import check_input, dir_parts, read_text, walk_files
from .model import (
    ACTIVE,
    BUILDING_BLOCK,
    DEPRECATED,
    EXPERIMENTAL,
    HUNTING,
    UNKNOWN,
    ParsedInventory,
    ParseIssue,
    Rule,
    finish_inventory,
    new_inventory,
)
from .techniques import Techniques
from .values import as_list, id_or, one_line, scalar_str

_ELASTIC_MATURITY = {
    "production": ACTIVE,
    "development": EXPERIMENTAL,
    "deprecated": DEPRECATED,
}


def _toml_reason(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return one_line(str(exc) or type(exc).__name__)


def parse_elastic(root: Path) -> ParsedInventory:
    """Parse Elastic detection rules (TOML) from a folder, recursively, or one file.

    ``[rule]`` files: id ``rule.rule_id``, name ``rule.name``; techniques from every
    ``[[rule.threat]]`` block's ``technique[].id`` and ``technique[].subtechnique[].id``
    (repeated across per-tactic blocks: de-duplicated). Status: ``rules/_deprecated/`` or
    maturity ``deprecated`` -> deprecated; ``building_block_type`` or ``rules_building_block/``
    -> building_block; else maturity (production -> active, development -> experimental).

    ``[hunt]`` files (the ``hunting/`` queries): id ``hunt.uuid``, techniques from the flat
    ``hunt.mitre`` list (ATLAS ids there go to ``ignored_ids``), status ``hunting``.
    """
    root = check_input(root, file_only=False)
    inv = new_inventory("elastic", root)
    ignored: set[str] = set()
    for path, rel in walk_files(root, (".toml",), inv.issues):
        text = read_text(path, rel, inv.issues)
        if text is None:
            continue
        try:
            data = tomllib.loads(text)
        except (tomllib.TOMLDecodeError, RecursionError) as exc:
            inv.issues.append(ParseIssue(rel, f"invalid TOML: {_toml_reason(exc)}"))
            continue
        if isinstance(data.get("rule"), dict):
            rule = _elastic_rule(data, root, rel, ignored, inv.issues)
        elif isinstance(data.get("hunt"), dict):
            rule = _elastic_hunt(data["hunt"], rel, ignored, inv.issues)
        else:
            inv.issues.append(ParseIssue(rel, "not an Elastic rule: no [rule] or [hunt] table"))
            continue
        if rule is not None:
            inv.rules.append(rule)
    return finish_inventory(inv, ignored)


def _elastic_rule(
    data: dict, root: Path, rel: str, ignored: set[str], issues: list[ParseIssue]
) -> Rule | None:
    rule: dict = data["rule"]
    meta: dict = data["metadata"] if isinstance(data.get("metadata"), dict) else {}
    name = scalar_str(rule.get("name"))
    if not name:
        issues.append(ParseIssue(rel, "Elastic rule without rule.name"))
        return None
    raw_status = (scalar_str(meta.get("maturity")) or "").strip()
    status = _ELASTIC_MATURITY.get(raw_status.lower(), UNKNOWN)
    parts = dir_parts(root, rel)
    if "_deprecated" in parts or status == DEPRECATED:
        status = DEPRECATED
    elif rule.get("building_block_type") or "rules_building_block" in parts:
        status = BUILDING_BLOCK
    techniques = Techniques(ignored)
    raw: dict[str, None] = {}  # an ordered set
    for threat in as_list(rule.get("threat")):
        if not isinstance(threat, dict):
            continue
        tactic = threat.get("tactic")
        tid = scalar_str(tactic.get("id")) if isinstance(tactic, dict) else None
        if tid:
            raw.setdefault(tid)
        for tech in as_list(threat.get("technique")):
            if not isinstance(tech, dict):
                continue
            techniques.add(tech.get("id"))
            for sub in as_list(tech.get("subtechnique")):
                if isinstance(sub, dict):
                    techniques.add(sub.get("id"))
    raw.update(dict.fromkeys(techniques.raw))
    return Rule(
        name=one_line(name, 500),
        rule_id=id_or(rule.get("rule_id"), rel),
        file=rel,
        status=status,
        techniques=techniques.sorted(),
        raw_tags=list(raw),
        format="elastic",
        raw_status=raw_status,
    )


def _elastic_hunt(hunt: dict, rel: str, ignored: set[str], issues: list[ParseIssue]) -> Rule | None:
    name = scalar_str(hunt.get("name"))
    if not name:
        issues.append(ParseIssue(rel, "Elastic hunting query without hunt.name"))
        return None
    techniques = Techniques(ignored)
    techniques.add_all(hunt.get("mitre"))
    return Rule(
        name=one_line(name, 500),
        rule_id=id_or(hunt.get("uuid"), rel),
        file=rel,
        status=HUNTING,
        techniques=techniques.sorted(),
        raw_tags=techniques.raw,
        format="elastic",
    )
