"""Re-resolve an inventory's rules against the ATT&CK release loaded now, without re-import.

A rule keeps the technique ids it was tagged with (``DetectionRule.techniques``, as written in
the rule file), so when a new release is loaded the ``COVERS`` edges can be computed again from
them, exactly as an import computes them (:class:`queries.technique_index.TechniqueIndex`,
with the inventory's stored crosswalk pairs): a tag the new release revoked now covers its
replacement, a tag it does not know anymore covers nothing and is listed. A tag a split revoked
into several techniques (one old id, several new ones) is **ambiguous**: it covers nothing and
is listed with the candidates until a crosswalk (the inventory's, or one given here) says which.

The resolution is planned here (:func:`plan_remap`: what changes, for the answer) and written
by the storage's own re-resolution (:func:`loader.inventory.importer.reresolve_inventory`: the
rules' COVERS edges and the per-technique coverage, staged and switched in).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from queries.catalog import Q
from queries.errors import NotFound
from queries.graph import Graph
from queries.technique_index import Crosswalk, CrosswalkEntry, Resolution, TechniqueIndex

from .inventory.importer import reresolve_inventory

BATCH = 1000
_RULE_COVERS = (
    "MATCH (:Inventory {name: $name})-[:HAS_RULE]->(r:DetectionRule) "
    "OPTIONAL MATCH (r)-[c:COVERS]->(t) "
    "RETURN r.key AS key, r.techniques AS techniques, r.digest AS digest, "
    "collect(CASE WHEN t IS NULL THEN null ELSE [t.stix_id, c.tag, c.via] END) AS covers"
)


@dataclass
class RemapResult:
    inventory: str
    releases_before: dict[str, Any]
    releases: dict[str, Any]
    rules: int
    rules_changed: int
    techniques_covered_before: int
    techniques_covered: int
    ids_remapped: list[dict[str, Any]] = field(default_factory=list)
    ids_unknown: list[dict[str, Any]] = field(default_factory=list)
    ids_retired: list[dict[str, Any]] = field(default_factory=list)
    ids_ambiguous: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _crosswalk(pairs_json: Any, extra: Crosswalk | None) -> Crosswalk | None:
    try:
        pairs = json.loads(pairs_json or "[]")
    except (TypeError, ValueError):
        pairs = []
    entries = [
        CrosswalkEntry(p[0], p[1], p[2] if len(p) > 2 else None)
        for p in pairs
        if isinstance(p, list) and len(p) >= 2 and all(isinstance(x, str) for x in p[:2])
    ]
    if extra is not None:
        given = {e.src for e in extra.entries}
        entries = list(extra.entries) + [e for e in entries if e.src not in given]
    return Crosswalk("inventory", entries) if entries else None


def plan_remap(
    rules: list[dict[str, Any]], index: TechniqueIndex, crosswalk: Crosswalk | None
) -> tuple[list[dict[str, Any]], dict[str, Resolution], Counter[str], set[str], int]:
    """(rows of the rules whose COVERS change, every tag's resolution, rules per tag, techniques
    covered directly, rules mapped) — pure."""
    resolutions: dict[str, Resolution] = {}
    per_tag: Counter[str] = Counter()
    covered: set[str] = set()
    mapped = 0
    changed = []
    for rule in rules:
        direct: dict[str, tuple[str, str]] = {}
        unknown: list[str] = []
        remapped: list[str] = []
        for tid in rule["techniques"] or []:
            per_tag[tid] += 1
            res = resolutions.get(tid)
            if res is None:
                res = resolutions[tid] = index.resolve(tid, crosswalk)
            if not res.targets:
                unknown.append(tid)
                continue
            via = "tag" if res.kind == "current" else res.kind
            if via != "tag":
                remapped.append(f"{tid}->{','.join(res.targets)}")
            for target in res.targets:
                prev = direct.get(target)
                if prev is None or (prev[1] != "tag" and via == "tag"):
                    direct[target] = (tid, via)
        covered.update(direct)
        mapped += bool(direct)
        covers = [
            {"stix_id": index.by_id[t].stix_id, "tag": tag, "via": via}
            for t, (tag, via) in sorted(direct.items())
        ]
        before = sorted(tuple(c) for c in rule["covers"] if c)
        after = sorted((c["stix_id"], c["tag"], c["via"]) for c in covers)
        if before != after:
            digest = hashlib.blake2b(
                json.dumps([rule["key"], rule["techniques"], covers], sort_keys=True).encode(),
                digest_size=16,
            ).hexdigest()
            changed.append(
                {
                    "key": rule["key"],
                    "covers": covers,
                    "unknown_ids": unknown,
                    "remapped": remapped,
                    "digest": digest,
                }
            )
    return changed, resolutions, per_tag, covered, mapped


def _listing(
    resolutions: dict[str, Resolution], per_tag: Counter[str], kinds: tuple[str, ...]
) -> list[dict[str, Any]]:
    out = []
    for tid, res in sorted(resolutions.items()):
        if res.kind not in kinds:
            continue
        item: dict[str, Any] = {"id": tid, "rules": per_tag[tid]}
        if res.targets:
            item.update(to=res.targets, via=res.kind)
        if res.candidates:
            item["choose_from"] = res.candidates
        out.append(item)
    return out


def remap_inventory(graph: Graph, name: str, *, crosswalk: Crosswalk | None = None) -> RemapResult:
    """Re-resolve inventory ``name``'s rule tags against the loaded release and rewrite the
    COVERS edges that change, in one transaction. ``crosswalk`` (pairs old id -> new id) is
    added to the inventory's own and kept with it: the way to choose for an ambiguous tag."""
    rows = graph.read(Q.inventory_info, inventory=name)
    if not rows:
        raise NotFound(f"no inventory named {name!r}")
    info = rows[0]
    releases = {r["domain"]: r["version"] for r in graph.read(Q.releases, limit=100)}
    index = TechniqueIndex.from_graph(graph)
    cw = _crosswalk(info["crosswalk"], crosswalk)
    rules = graph.read(_RULE_COVERS, name=name)
    changed, resolutions, per_tag, covered, mapped = plan_remap(rules, index, cw)
    try:
        before = json.loads(info["releases"] or "{}")
    except (TypeError, ValueError):
        before = {}
    result = RemapResult(
        inventory=name,
        releases_before=before,
        releases=releases,
        rules=len(rules),
        rules_changed=len(changed),
        techniques_covered_before=int(info["techniques_covered"] or 0),
        techniques_covered=len(covered),
        ids_remapped=_listing(resolutions, per_tag, ("revoked", "crosswalk")),
        ids_unknown=_listing(resolutions, per_tag, ("unknown",)),
        ids_retired=_listing(resolutions, per_tag, ("retired",)),
        ids_ambiguous=_listing(resolutions, per_tag, ("ambiguous",)),
    )
    # Written as the storage writes any import: the rules' COVERS edges and the per-technique
    # coverage anew from the kept tags, staged and switched in (readers never see half of it).
    reresolve_inventory(graph, name, crosswalk=cw)
    return result


def remap_inventories(
    graph: Graph, *, domain: str | None = None, every: bool = False
) -> list[RemapResult]:
    """Re-resolve every inventory mapped against another release than the one loaded (of
    ``domain`` when given), as a load does after it writes a new release; ``every``: all of
    them (a sync changes a release without changing its version)."""
    releases = {r["domain"]: r["version"] for r in graph.read(Q.releases, limit=100)}
    out = []
    for inv in graph.read(Q.inventory_list, limit=100_000):
        try:
            mapped = json.loads(inv["releases"] or "{}")
        except (TypeError, ValueError):
            mapped = {}
        doms = [domain] if domain else list(releases)
        if every or any(mapped.get(d) != releases.get(d) for d in doms if d in releases):
            out.append(remap_inventory(graph, inv["name"]))
    return out
