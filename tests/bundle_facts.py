"""Facts computed straight from the bundle JSON, independently of the loader, for assertions."""

from __future__ import annotations

import json
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any

TYPE_LABEL = {
    "x-mitre-tactic": "Tactic",
    "attack-pattern": "Technique",
    "intrusion-set": "Group",
    "malware": "Malware",
    "tool": "Tool",
    "campaign": "Campaign",
    "course-of-action": "Mitigation",
    "x-mitre-data-source": "DataSource",
    "x-mitre-data-component": "DataComponent",
    "x-mitre-detection-strategy": "DetectionStrategy",
    "x-mitre-analytic": "Analytic",
    "x-mitre-asset": "Asset",
    "x-mitre-matrix": "Matrix",
}
REL_TYPE = {
    "uses": "USES",
    "subtechnique-of": "SUBTECHNIQUE_OF",
    "attributed-to": "ATTRIBUTED_TO",
    "mitigates": "MITIGATES",
    "detects": "DETECTS",
    "revoked-by": "REVOKED_BY",
    "targets": "TARGETS",
}


@lru_cache(maxsize=8)
def objects(path: Path) -> tuple[dict[str, Any], ...]:
    return tuple(json.loads(Path(path).read_text(encoding="utf-8"))["objects"])


def ext_id(obj: dict[str, Any]) -> str | None:
    for ref in obj.get("external_references", []):
        if ref.get("source_name") in ("mitre-attack", "mitre-mobile-attack", "mitre-ics-attack"):
            return ref.get("external_id")
    return None


def expected_counts(path: Path) -> dict[str, int]:
    """Node and relationship counts the graph should hold for one bundle."""
    objs = objects(path)
    c: Counter[str] = Counter()
    log_sources = set()
    for o in objs:
        if o["type"] in TYPE_LABEL:
            c[TYPE_LABEL[o["type"]]] += 1
        if o["type"] == "relationship" and o["relationship_type"] in REL_TYPE:
            c[REL_TYPE[o["relationship_type"]]] += 1
        if o["type"] == "attack-pattern":
            c["IN_TACTIC"] += sum(
                1
                for p in o.get("kill_chain_phases", [])
                if p["kill_chain_name"].startswith("mitre-")
            )
        if o["type"] == "x-mitre-matrix":
            c["HAS_TACTIC"] += len(o.get("tactic_refs", []))
        if o["type"] == "x-mitre-detection-strategy":
            c["HAS_ANALYTIC"] += len(o.get("x_mitre_analytic_refs", []))
        if o["type"] == "x-mitre-data-component" and o.get("x_mitre_data_source_ref"):
            c["PART_OF"] += 1
        if o["type"] == "x-mitre-analytic":
            refs = o.get("x_mitre_log_source_references", [])
            c["USES_LOG_SOURCE"] += len(refs)
            for r in refs:
                log_sources.add((r["x_mitre_data_component_ref"], r["name"], r["channel"]))
        if o["type"] == "x-mitre-data-component":
            for r in o.get("x_mitre_log_sources", []):
                log_sources.add((o["id"], r["name"], r["channel"]))
    c["LogSource"] = len(log_sources)
    c["OF_DATA_COMPONENT"] = len(log_sources)
    return dict(c)


def union_counts(paths: list[Path]) -> dict[str, int]:
    """Distinct nodes per label and STIX relationships per type across several bundles."""
    seen_nodes: dict[str, set[str]] = {}
    seen_rels: dict[str, set[str]] = {}
    for p in paths:
        for o in objects(p):
            if o["type"] in TYPE_LABEL:
                seen_nodes.setdefault(TYPE_LABEL[o["type"]], set()).add(o["id"])
            elif o["type"] == "relationship" and o["relationship_type"] in REL_TYPE:
                seen_rels.setdefault(REL_TYPE[o["relationship_type"]], set()).add(o["id"])
    out = {k: len(v) for k, v in seen_nodes.items()}
    out.update({k: len(v) for k, v in seen_rels.items()})
    return out


def group_direct_techniques(path: Path, group_attack_id: str) -> set[str]:
    """ATT&CK ids of the techniques a group USES directly (relationship not revoked/deprecated,
    technique not revoked/deprecated)."""
    objs = objects(path)
    by_id = {o["id"]: o for o in objs}
    gid = next(
        o["id"] for o in objs if o["type"] == "intrusion-set" and ext_id(o) == group_attack_id
    )
    out = set()
    for o in objs:
        if (
            o["type"] == "relationship"
            and o["relationship_type"] == "uses"
            and o["source_ref"] == gid
            and o["target_ref"].startswith("attack-pattern--")
            and not o.get("revoked")
            and not o.get("x_mitre_deprecated")
        ):
            t = by_id[o["target_ref"]]
            if not t.get("revoked") and not t.get("x_mitre_deprecated"):
                out.add(ext_id(t))
    return out
