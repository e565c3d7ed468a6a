"""Technique ids as an inventory import reads them: the current technique an id is, or was
revoked into, or what a crosswalk maps it to. Shared by the import (against the loaded release)
and the release diff (against each release's snapshot), so both resolve a rule's tags the same
way."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .catalog import Q
from .graph import Graph

_MAX_REVOKED_HOPS = 5


@dataclass(frozen=True)
class CrosswalkEntry:
    src: str
    dst: str
    dst_name: str | None = None


@dataclass
class Crosswalk:
    """Pairs of technique ids that name the same behaviour in two ATT&CK numberings."""

    source: str
    entries: list[CrosswalkEntry]

    def candidates(self, tid: str) -> list[tuple[str, str | None]]:
        """Ids ``tid`` may stand for, both directions, with the name the crosswalk gives the
        id ``tid`` is (used to choose among several)."""
        out: list[tuple[str, str | None]] = []
        for e in self.entries:
            if e.dst == tid:
                out.append((e.src, e.dst_name))
            elif e.src == tid:
                out.append((e.dst, None))
        return out

    def forward(self, tid: str) -> list[str]:
        """Ids ``tid`` maps to (source numbering -> target numbering)."""
        return [e.dst for e in self.entries if e.src == tid]


@dataclass
class _Tech:
    attack_id: str
    stix_id: str
    name: str
    current: bool
    revoked: bool
    is_subtechnique: bool
    parent_id: str | None
    replaced_by: str | None


@dataclass
class Resolution:
    kind: str  # current | revoked | crosswalk | ambiguous | retired | unknown
    targets: list[str] = field(default_factory=list)
    # ambiguous: the current techniques a split revoked the id into, for the user to choose
    candidates: list[str] = field(default_factory=list)


class TechniqueIndex:
    """The loaded release's techniques, for resolving inventory ids (one read query)."""

    def __init__(self, rows: Iterable[dict[str, Any]]) -> None:
        self.by_id: dict[str, _Tech] = {}
        self.children: dict[str, list[str]] = defaultdict(list)
        # a technique revoked by several (a split): one old id, several new ones
        self.splits: dict[str, list[str]] = defaultdict(list)
        for r in rows:
            tid = r["attack_id"]
            if not tid:
                continue
            if r["revoked"] and r["replaced_by"] and r["replaced_by"] not in self.splits[tid]:
                self.splits[tid].append(r["replaced_by"])
            current = not r["revoked"] and not r["deprecated"] and r.get("in_release", True)
            t = _Tech(tid, r["stix_id"], r["name"] or "", bool(current), bool(r["revoked"]),
                      bool(r["is_subtechnique"]), r["parent_id"], r["replaced_by"])  # fmt: skip
            prev = self.by_id.get(tid)
            if prev is None or (t.current and not prev.current):
                self.by_id[tid] = t
        for t in self.by_id.values():
            if t.current and t.parent_id:
                self.children[t.parent_id].append(t.attack_id)
        self.splits = defaultdict(list, {k: v for k, v in self.splits.items() if len(v) > 1})

    @classmethod
    def from_graph(cls, graph: Graph) -> TechniqueIndex:
        return cls(graph.read(Q.inventory_technique_index, domains=[]))

    def _follow(self, tid: str) -> str | None:
        """The current technique ``tid`` is, or was revoked into (a few hops at most)."""
        seen = 0
        t = self.by_id.get(tid)
        while t is not None and not t.current and seen < _MAX_REVOKED_HOPS:
            if not t.revoked or not t.replaced_by:
                return None
            t = self.by_id.get(t.replaced_by)
            seen += 1
        return t.attack_id if t is not None and t.current else None

    def resolve(self, tid: str, crosswalk: Crosswalk | None) -> Resolution:
        t = self.by_id.get(tid)
        if t is not None and t.current:
            return Resolution("current", [tid])
        split = sorted(
            {x for x in (self._follow(c) for c in self.splits.get(tid, [])) if x is not None}
        )
        if t is not None and t.revoked and len(split) < 2:
            target = self._follow(tid)
            if target:
                return Resolution("revoked", [target])
        if crosswalk is not None:
            found: list[tuple[str, str | None]] = []
            for cand, name in crosswalk.candidates(tid):
                target = self._follow(cand)
                if target and target not in [f for f, _ in found]:
                    found.append((target, name))
            if len(found) > 1:
                # Several old ids became this one: keep those whose name is the crosswalk's.
                named = [
                    f
                    for f, name in found
                    if name and self.by_id[f].name.strip().lower() == name.strip().lower()
                ]
                if named:
                    return Resolution("crosswalk", named)
            if found:
                return Resolution("crosswalk", [f for f, _ in found])
        if len(split) > 1:
            # revoked into several: which one a rule meant is the user's to say (a crosswalk)
            return Resolution("ambiguous", [], split)
        if t is not None:
            return Resolution("retired", [])
        return Resolution("unknown", [])
