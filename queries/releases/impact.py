"""What a release means for the organisation's detection rules: the rules tagged with
techniques that the release has revoked or deprecated or does not know."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, Field

from ..catalog import Q
from ..graph import Graph
from .snapshots import ALL_ROWS, ReleaseSnapshot, TechniqueState, snapshot_from_graph


class RuleImpact(BaseModel):
    inventory: str
    rule_id: str
    rule_name: str
    file: str = ""
    technique_id: str
    problem: Literal["revoked", "deprecated", "unknown"]
    replacement: str | None = Field(
        default=None, description="the technique to retag to (revoked ones)"
    )
    replacement_name: str | None = None
    note: str


class InventoryImpact(BaseModel):
    inventory: str
    rules: int = Field(description="rules in the inventory")
    affected_rules: int
    items: list[RuleImpact]


class TaggedRule(BaseModel):
    inventory: str
    rule_id: str
    rule_name: str
    file: str = ""
    status: str = ""
    tagged: list[str]


def inventory_rules(graph: Graph, *, limit: int = ALL_ROWS) -> list[TaggedRule]:
    """Every rule of every inventory with the technique ids it is tagged with."""
    return [TaggedRule(**r) for r in graph.read(Q.release_inventory_rules, limit=limit)]


def technique_domains(graph: Graph, ids: Iterable[str]) -> dict[str, list[str]]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = graph.read(Q.release_technique_domains, technique_ids=wanted, limit=len(wanted))
    return {r["technique_id"]: r["domains"] for r in rows}


def rule_impact(
    rules: list[TaggedRule],
    release: ReleaseSnapshot,
    *,
    other_domains: dict[str, list[str]] | None = None,
    also_domain: Iterable[str] = (),
) -> list[InventoryImpact]:
    """Rules tagged with techniques that ``release`` has revoked or deprecated or does not know.

    ``other_domains`` (technique id -> domains holding it in the graph) keeps an id of another
    domain (an ICS technique in an Enterprise diff) from counting as unknown; ``also_domain``
    are ids known to belong to this domain (the old release's), judged even if other domains
    hold an id of the same name.
    """
    by_id: dict[str, TechniqueState] = {}
    for tech in release.techniques:
        if tech.attack_id and (tech.attack_id not in by_id or tech.current):
            by_id[tech.attack_id] = tech
    mine = set(also_domain) | set(by_id)
    elsewhere = other_domains or {}
    by_inventory: dict[str, list[TaggedRule]] = {}
    for rule in rules:
        by_inventory.setdefault(rule.inventory, []).append(rule)
    out = []
    for inventory, inv_rules in sorted(by_inventory.items()):
        items: list[RuleImpact] = []
        for rule in inv_rules:
            for tid in sorted(set(rule.tagged)):
                t = by_id.get(tid)
                base = {
                    "inventory": inventory,
                    "rule_id": rule.rule_id,
                    "rule_name": rule.rule_name,
                    "file": rule.file,
                    "technique_id": tid,
                }
                if t is None:
                    others = [d for d in elsewhere.get(tid, []) if d != release.domain]
                    if others and tid not in mine:
                        continue  # another domain's technique
                    items.append(
                        RuleImpact(
                            **base,
                            problem="unknown",
                            note=f"{tid} is not a technique of {release.domain} "
                            f"{release.version or ''}".rstrip(),
                        )
                    )
                elif t.revoked:
                    note = f"{tid} was revoked" + (
                        f": retag to {t.replaced_by} ({t.replaced_by_name})"
                        if t.replaced_by
                        else " without a replacement"
                    )
                    items.append(
                        RuleImpact(
                            **base,
                            problem="revoked",
                            replacement=t.replaced_by,
                            replacement_name=t.replaced_by_name,
                            note=note,
                        )
                    )
                elif t.deprecated:
                    items.append(
                        RuleImpact(
                            **base,
                            problem="deprecated",
                            note=f"{tid} ({t.name}) is deprecated: no replacement; review the rule",
                        )
                    )
        out.append(
            InventoryImpact(
                inventory=inventory,
                rules=len(inv_rules),
                affected_rules=len({(i.rule_id, i.file) for i in items}),
                items=items,
            )
        )
    return out


def release_impact(graph: Graph, *, domain: str) -> list[InventoryImpact]:
    """Each inventory's rules tagged with techniques the loaded ``domain`` release has revoked or
    deprecated or does not know, with the replacement to retag to."""
    snap = snapshot_from_graph(graph, domain=domain)
    rules = inventory_rules(graph)
    ids = {t for r in rules for t in r.tagged}
    return rule_impact(rules, snap, other_domains=technique_domains(graph, ids))
