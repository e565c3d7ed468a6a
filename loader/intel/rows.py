"""An import on its way to the graph: its nodes and relationships as rows, checked against the
allow-lists and written in batches of :data:`BATCH` to a staged import (:mod:`loader.intel.store`).
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from .common import ALL_LABELS, ALL_REL_TYPES, OBSERVABLE, utc_now
from .store import BULK_LABELS, StagedIntel

MAX_WARNINGS = 200
BATCH = 5000


@dataclass
class IntelRows:
    """One import, validated, on its way to the graph: rows are held in batches of
    :data:`BATCH` and written to :attr:`store` (a staged import) as each fills, nodes before the
    relationships that need them; :meth:`flush` writes the rest."""

    source: str
    flavour: str
    file: str | None = None
    sha256: str | None = None
    # label -> rows not written yet
    nodes: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    # (relationship type, source is a small node, "small" | "bulk" | "attack") -> rows
    # {src: org key, dst: org key or ATT&CK stix id, props} not written yet
    edges: dict[tuple[str, bool, str], list[dict[str, Any]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    same_as: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    link_attack_ids: bool = False
    imported_at: str = field(default_factory=utc_now)
    """When the import began: every node it writes carries it (``imported_at``)."""
    store: StagedIntel | None = None
    node_counter: Counter[str] = field(default_factory=Counter)
    edge_counter: Counter[str] = field(default_factory=Counter)
    _small_keys: set[str] = field(default_factory=set)
    _edge_seen: set[bytes] = field(default_factory=set)

    def warn(self, text: str) -> None:
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(text)
        elif len(self.warnings) == MAX_WARNINGS:
            self.warnings.append("... more warnings left out")

    def add_node(self, label: str, props: dict[str, Any]) -> None:
        if label not in ALL_LABELS:  # the allow-list is the only source of labels
            raise ValueError(f"label {label!r} not allowed")
        if label not in BULK_LABELS:
            self._small_keys.add(props["key"])
        self.node_counter[label] += 1
        group = self.nodes[label]
        group.append(props)
        if self.store is not None and len(group) >= BATCH:
            self._write_nodes(label)

    def add_edge(self, rtype: str, src: str, dst: Endpoint, props: dict[str, Any]) -> None:
        if rtype not in ALL_REL_TYPES:
            raise ValueError(f"relationship type {rtype!r} not allowed")
        seen = hashlib.blake2b(
            "\0".join((rtype, src, dst.ref, props.get("stix_id") or "")).encode(),
            digest_size=16,
        ).digest()
        if seen in self._edge_seen:
            return
        self._edge_seen.add(seen)
        full: dict[str, Any] = {"revoked": False, "deprecated": False, **props}
        full.update(source=self.source, org=True)
        row = {"src": src, "dst": dst.ref, "props": full}
        if dst.kind == "attack":
            where = "attack"
        else:
            where = "bulk" if dst.label in BULK_LABELS else "small"
        group_key = (rtype, src in self._small_keys, where)
        self.edge_counter[rtype] += 1
        group = self.edges[group_key]
        group.append(row)
        if self.store is not None and len(group) >= BATCH:
            self._write_all_nodes()
            self._write_edges(group_key)

    def _write_nodes(self, label: str) -> None:
        assert self.store is not None
        rows = self.nodes.pop(label, [])
        if rows:
            self.store.write_nodes(label, [ioc_keys(label, r) for r in rows])

    def _write_all_nodes(self) -> None:
        for label in list(self.nodes):
            self._write_nodes(label)

    def _write_edges(self, key: tuple[str, bool, str]) -> None:
        assert self.store is not None
        rows = self.edges.pop(key, [])
        if rows:
            rtype, src_small, where = key
            self.store.write_edges(rtype, src_small=src_small, dst=where, rows=rows)

    def flush(self) -> None:
        """Write what is held (nodes first)."""
        self._write_all_nodes()
        for key in list(self.edges):
            self._write_edges(key)

    def node_counts(self) -> dict[str, int]:
        return {label: n for label, n in sorted(self.node_counter.items()) if n}

    def edge_counts(self) -> dict[str, int]:
        return {rtype: n for rtype, n in sorted(self.edge_counter.items()) if n}


@dataclass(frozen=True)
class Endpoint:
    kind: str  # "org" (key of an OrgObject) or "attack" (stix_id of an ATT&CK node)
    ref: str
    label: str  # what it is: OrgCluster, Technique, ...


def ioc_keys(label: str, row: dict[str, Any]) -> dict[str, Any]:
    """An indicator's or observable's row with its lookup keys (see
    :data:`loader.intel.write.SCHEMA`)."""
    values = row.get("values")
    if label not in ("Indicator", OBSERVABLE) or not isinstance(values, list) or not values:
        return row
    out = {**row, "ioc_key": values[0]}
    if len(values) > 1:
        out["ioc_multi"] = True
    return out
