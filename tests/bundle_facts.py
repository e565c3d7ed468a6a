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


# ---------------------------------------------------------------- actor facts (test_actors.py)


def is_current(obj: dict[str, Any]) -> bool:
    """Neither revoked nor deprecated."""
    return not obj.get("revoked") and not obj.get("x_mitre_deprecated")


@lru_cache(maxsize=8)
def by_stix_id(path: Path) -> dict[str, dict[str, Any]]:
    return {o["id"]: o for o in objects(path) if o["type"] != "relationship"}


@lru_cache(maxsize=8)
def current_relationships(path: Path) -> tuple[dict[str, Any], ...]:
    """Relationships that are current and whose two ends are current objects."""
    objs = by_stix_id(path)
    return tuple(
        o
        for o in objects(path)
        if o["type"] == "relationship"
        and is_current(o)
        and o["source_ref"] in objs
        and o["target_ref"] in objs
        and is_current(objs[o["source_ref"]])
        and is_current(objs[o["target_ref"]])
    )


def stix_id_for(path: Path, stix_type: str, attack_id: str) -> str | None:
    return next(
        (o["id"] for o in objects(path) if o["type"] == stix_type and ext_id(o) == attack_id),
        None,
    )


@lru_cache(maxsize=8)
def _adjacency(path: Path) -> dict[tuple[str, str], frozenset[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    for r in current_relationships(path):
        out.setdefault((r["source_ref"], r["relationship_type"]), set()).add(r["target_ref"])
    return {k: frozenset(v) for k, v in out.items()}


def related_ids(path: Path, source: str, rel: str, target_types: tuple[str, ...]) -> set[str]:
    """STIX ids of current objects of ``target_types`` that ``source`` points to by a current
    ``rel`` relationship."""
    return {
        t
        for t in _adjacency(path).get((source, rel), frozenset())
        if t.split("--")[0] in target_types
    }


SOFTWARE_TYPES = ("malware", "tool")


def group_technique_paths(
    paths: list[Path], group_attack_id: str
) -> dict[str, dict[str, set[str]]]:
    """How a group reaches each technique, straight from the bundles (current objects and
    relationships only): path kind -> technique ATT&CK id -> ATT&CK ids it comes through.

    Kinds: ``direct`` (the group uses the technique; via is empty), ``campaign`` (a campaign
    attributed to the group uses it; via = campaign ids), ``software`` (software the group uses,
    uses it; via = software ids), ``campaign_software`` (software used by a campaign attributed
    to the group uses it; via = software ids)."""
    out: dict[str, dict[str, set[str]]] = {
        k: {} for k in ("direct", "campaign", "software", "campaign_software")
    }
    pattern = ("attack-pattern",)
    for path in paths:
        objs = by_stix_id(path)
        gid = stix_id_for(path, "intrusion-set", group_attack_id)
        if gid is None or not is_current(objs[gid]):
            continue
        campaigns = {
            r["source_ref"]
            for r in current_relationships(path)
            if r["relationship_type"] == "attributed-to"
            and r["target_ref"] == gid
            and r["source_ref"].startswith("campaign--")
        }
        hits: list[tuple[str, str, str | None]] = []  # (kind, technique, via) STIX ids
        hits += [("direct", t, None) for t in related_ids(path, gid, "uses", pattern)]
        for c in campaigns:
            hits += [("campaign", t, c) for t in related_ids(path, c, "uses", pattern)]
            for s in related_ids(path, c, "uses", SOFTWARE_TYPES):
                hits += [("campaign_software", t, s) for t in related_ids(path, s, "uses", pattern)]
        for s in related_ids(path, gid, "uses", SOFTWARE_TYPES):
            hits += [("software", t, s) for t in related_ids(path, s, "uses", pattern)]
        for kind, tech, via in hits:
            vias = out[kind].setdefault(ext_id(objs[tech]) or tech, set())
            if via is not None:
                vias.add(ext_id(objs[via]) or via)
    return out


def technique_facts(paths: list[Path]) -> dict[str, dict[str, Any]]:
    """Technique ATT&CK id -> tactics (phase names), platforms, parent id, revoked, deprecated."""
    out: dict[str, dict[str, Any]] = {}
    for path in paths:
        objs = by_stix_id(path)
        parent = {
            r["source_ref"]: r["target_ref"]
            for r in objects(path)
            if r["type"] == "relationship" and r["relationship_type"] == "subtechnique-of"
        }
        for o in objs.values():
            if o["type"] != "attack-pattern":
                continue
            out[ext_id(o) or o["id"]] = {
                "tactics": [p["phase_name"] for p in o.get("kill_chain_phases", [])],
                "platforms": o.get("x_mitre_platforms", []),
                "parent": ext_id(objs[parent[o["id"]]]) if o["id"] in parent else None,
                "revoked": bool(o.get("revoked")),
                "deprecated": bool(o.get("x_mitre_deprecated")),
            }
    return out


def mitigations_by_technique(paths: list[Path]) -> dict[str, set[str]]:
    """Technique ATT&CK id -> ATT&CK ids of the current mitigations that mitigate it."""
    out: dict[str, set[str]] = {}
    for path in paths:
        objs = by_stix_id(path)
        for r in current_relationships(path):
            if r["relationship_type"] == "mitigates" and r["source_ref"].startswith(
                "course-of-action--"
            ):
                t, m = ext_id(objs[r["target_ref"]]), ext_id(objs[r["source_ref"]])
                if t and m:
                    out.setdefault(t, set()).add(m)
    return out
