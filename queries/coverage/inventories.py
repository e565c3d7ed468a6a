"""The inventories imported: listed, one's record and summary, its rules, what it covers, and
whether it was mapped against the ATT&CK release loaded now."""

from __future__ import annotations

from typing import Any

from ..cache import ATTACK, cached_answer
from ..catalog import Q
from ..errors import InvalidInput, NotFound
from ..graph import Graph
from .common import check_domain, gap_scopes
from .models import (
    CoveredTechnique,
    InventoryCoverage,
    InventoryInfo,
    InventoryRecord,
    InventoryRule,
    RuleCovers,
)


def _releases(graph: Graph) -> dict[str, Any]:
    return {r["domain"]: r["version"] for r in graph.read(Q.releases, limit=100)}


def _parse_json(text: Any) -> dict[str, Any]:
    import json

    if isinstance(text, dict):
        return text
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def check_inventory(graph: Graph, inventory: str) -> dict[str, Any]:
    if not isinstance(inventory, str) or not inventory.strip():
        raise InvalidInput("inventory: give the name of an imported inventory")
    rows = graph.read(Q.inventory_info, inventory=inventory.strip())
    if not rows:
        names = [r["name"] for r in graph.read(Q.inventory_list, limit=1000)]
        import difflib

        raise NotFound(
            f"no inventory named {inventory!r}",
            suggestions=difflib.get_close_matches(inventory, names, n=5, cutoff=0.5) or names[:5],
        )
    return rows[0]


def mapping_warnings(
    info: dict[str, Any], releases: dict[str, Any], domain: str | None = None
) -> tuple[dict[str, Any], list[str]]:
    """(the releases an inventory was mapped against, a warning when that is not the loaded
    release of ``domain`` or, without a domain, of a domain it was mapped against)."""
    mapped = _parse_json(info.get("releases"))
    doms = [domain] if domain else sorted(mapped)
    off = [d for d in doms if d in releases and d in mapped and mapped[d] != releases[d]]
    if not off:
        return mapped, []
    what = ", ".join(f"{d} {mapped[d]}" for d in off)
    now = ", ".join(f"{d} {releases[d]}" for d in off)
    return mapped, [
        f"inventory {info['name']!r} was mapped against {what}; the graph holds {now}: its "
        f"rules' tags may name techniques this release revoked or moved. Re-resolve it: "
        f"ttpgraph inventory remap {info['name']}"
    ]


def _record(row: dict[str, Any], releases: dict[str, Any]) -> dict[str, Any]:
    rel = _parse_json(row.get("releases"))
    return {
        **{k: row[k] for k in ("name", "format", "source", "imported_at")},
        "rules": row["rules"] or 0,
        "mapped": row["mapped"] or 0,
        "techniques_covered": row["techniques_covered"] or 0,
        "releases": rel,
        "stale": bool(rel) and rel != releases,
    }


def list_inventories(graph: Graph, *, limit: int = 1000) -> list[InventoryRecord]:
    """The inventories imported, with counts; ``stale`` when ATT&CK was reloaded since."""
    releases = _releases(graph)
    return [
        InventoryRecord(**_record(r, releases)) for r in graph.read(Q.inventory_list, limit=limit)
    ]


def inventory_info(graph: Graph, *, inventory: str) -> InventoryInfo:
    """One inventory's record and its import summary."""
    row = check_inventory(graph, inventory)
    return InventoryInfo(
        **_record(row, _releases(graph)),
        options=_parse_json(row.get("options")),
        summary=_parse_json(row.get("summary")),
        crosswalk=_crosswalk_pairs(row.get("crosswalk")),
    )


def _crosswalk_pairs(text: Any) -> list[tuple[str, str, str | None]]:
    import json

    try:
        data = json.loads(text) if text else []
    except ValueError:
        return []
    return [
        (str(x[0]), str(x[1]), x[2] if len(x) > 2 else None)
        for x in data
        if isinstance(x, list) and len(x) >= 2
    ]


def inventory_rules(
    graph: Graph,
    *,
    inventory: str,
    status: str | None = None,
    technique: str | None = None,
    skip: int = 0,
    limit: int = 100,
) -> list[InventoryRule]:
    """An inventory's rules with what each covers (optionally one status or technique)."""
    check_inventory(graph, inventory)
    tid = technique.strip().upper() if technique else None
    rows = graph.read(
        Q.inventory_rules,
        inventory=inventory.strip(),
        status=status,
        technique_id=tid,
        skip=max(0, skip),
        limit=limit,
    )
    return [
        InventoryRule(
            **{k: r[k] for k in ("name", "rule_id", "file", "status")},
            techniques=r["techniques"] or [],
            unknown_ids=r["unknown_ids"] or [],
            covers=[RuleCovers(**c) for c in r["covers"]],
        )
        for r in rows
    ]


@cached_answer(scopes=lambda kw: (ATTACK, gap_scopes(kw)[-1]))
def inventory_coverage(
    graph: Graph,
    *,
    inventory: str,
    domain: str | None = None,
    limit: int = 100_000,
) -> InventoryCoverage:
    """Every current technique the inventory covers: its rules, tactics, and whether only
    partially (rules on its parent or sub-techniques only)."""
    info = check_inventory(graph, inventory)
    dom = check_domain(domain)
    mapped, warnings = mapping_warnings(info, _releases(graph), dom)
    rows = graph.read(Q.inventory_coverage, inventory=inventory.strip(), domain=dom, limit=limit)
    techniques = [
        CoveredTechnique(
            technique_id=r["technique_id"],
            name=r["name"],
            tactics=r["tactics"] or [],
            platforms=r["platforms"] or [],
            domains=r["domains"] or [],
            rules=r["rules"] if r["rules"] else [],
            rule_count=r["rule_count"] or 0,
            partial_rules=r["partial_rules"] or [],
            partial_rule_count=r["partial_rule_count"] or 0,
            partial=bool(r["partial"]),
            via=sorted(r["via"] or []),
        )
        for r in rows
    ]
    return InventoryCoverage(
        inventory=inventory.strip(),
        domain=dom,
        covered=sum(1 for t in techniques if not t.partial),
        partial=sum(1 for t in techniques if t.partial),
        techniques=techniques,
        inventory_releases=mapped,
        warnings=warnings,
    )
