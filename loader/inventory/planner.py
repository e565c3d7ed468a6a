"""An import's plan, rule by rule and without a database: each rule's technique ids resolved
against the loaded release (tag, revoked, crosswalk; unknown and retired ids listed), the row
written for it, and each technique's coverage under the inventory's options (see
:mod:`loader.inventory.importer`)."""

from __future__ import annotations

import hashlib
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson

from queries.errors import InvalidInput
from queries.technique_index import Crosswalk, Resolution, TechniqueIndex

from ..inventory_store import RULE_NAMES_CAP
from .model import PARENT_MODES, STATUSES, SUB_MODES, Rule, RuleStream

_STORED_ISSUES = 200


# --------------------------------------------------------------------------- options


@dataclass
class ImportOptions:
    exclude_status: list[str] = field(default_factory=list)
    parent_coverage: str = "partial"
    subtechnique_coverage: str = "partial"
    replace: bool = True

    def check(self) -> None:
        bad = [s for s in self.exclude_status if s not in STATUSES]
        if bad:
            raise InvalidInput(
                f"exclude_status: unknown status {bad[0]!r}", suggestions=list(STATUSES)
            )
        if self.parent_coverage not in PARENT_MODES:
            raise InvalidInput(
                f"parent_coverage {self.parent_coverage!r}: use {', '.join(PARENT_MODES)}"
            )
        if self.subtechnique_coverage not in SUB_MODES:
            raise InvalidInput(
                f"subtechnique_coverage {self.subtechnique_coverage!r}: use {', '.join(SUB_MODES)}"
            )


# --------------------------------------------------------------------------- planning


class _Smallest:
    """The ``k`` smallest items seen (amortised: sorted and cut when twice as many are held)."""

    __slots__ = ("items", "cut", "k")

    def __init__(self, k: int) -> None:
        self.items: list[tuple[str, str]] = []
        self.cut: tuple[str, str] | None = None
        self.k = k

    def add(self, item: tuple[str, str]) -> None:
        if self.cut is not None and item >= self.cut:
            return
        self.items.append(item)
        if len(self.items) >= 2 * self.k:
            self.items.sort()
            del self.items[self.k :]
            self.cut = self.items[-1]

    def result(self) -> list[str]:
        self.items.sort()
        return [name for name, _ in self.items[: self.k]]


_VIA = {"crosswalk": 1, "parent": 2, "revoked": 4, "subtechnique": 8, "tag": 16}
"""How a rule reaches a technique, as bits (in name order: the stored ``via`` is sorted)."""
_PARENT, _SUB = _VIA["parent"], _VIA["subtechnique"]


class _TechniqueCoverage:
    """What one technique's answer accumulates while the rules stream by."""

    __slots__ = ("full", "partial", "full_names", "partial_names", "via")

    def __init__(self, cap: int) -> None:
        self.full = 0
        self.partial = 0
        self.full_names = _Smallest(cap)
        self.partial_names = _Smallest(cap)
        self.via = 0  # a mask of _VIA bits


class ImportPlanner:
    """Resolves each rule's ids against the release's index and turns it into the row written
    (properties and COVERS edges), while counting the import summary and each technique's
    coverage (per the inventory's options). Pure: no database."""

    def __init__(
        self,
        index: TechniqueIndex,
        *,
        name: str,
        options: ImportOptions,
        crosswalk: Crosswalk | None,
        cap: int = RULE_NAMES_CAP,
        unique_keys: bool = False,
    ) -> None:
        self.index = index
        self.name = name
        self.opts = options
        self.crosswalk = crosswalk
        self.cap = cap
        self.unique_keys = unique_keys
        self.excluded_status = set(options.exclude_status)
        self.rules_read = 0
        self.excluded: Counter[str] = Counter()
        self.by_status: Counter[str] = Counter()
        self.rules = self.mapped = self.unmapped = self.unresolved = self.edges = 0
        self.resolutions: dict[str, Resolution] = {}
        self.rules_per_id: Counter[str] = Counter()
        self.keys: Counter[str] = Counter()
        self.coverage: dict[str, _TechniqueCoverage] = {}
        self.digests = array("Q")

    def row(self, rule: Rule) -> dict[str, Any] | None:
        """The row to write for ``rule``; None when its status is excluded."""
        self.rules_read += 1
        if rule.status in self.excluded_status:
            self.excluded[rule.status] += 1
            return None
        index = self.index
        direct: dict[str, tuple[str, str]] = {}  # technique -> (tag, via)
        unknown: list[str] = []
        remapped: list[str] = []
        for tid in rule.techniques:
            self.rules_per_id[tid] += 1
            res = self.resolutions.get(tid)
            if res is None:
                res = self.resolutions[tid] = index.resolve(tid, self.crosswalk)
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
        covers = [
            {"stix_id": index.by_id[t].stix_id, "tag": tag, "via": via}
            for t, (tag, via) in sorted(direct.items())
        ]
        if not rule.techniques:
            self.unmapped += 1
        elif direct:
            self.mapped += 1
        else:
            self.unresolved += 1
        self.rules += 1
        self.edges += len(covers)
        self.by_status[rule.status] += 1
        key = f"{self.name}|{rule.rule_id}|{rule.file}"
        if not self.unique_keys:
            self.keys[key] += 1
            if self.keys[key] > 1:
                key = f"{key}#{self.keys[key]}"
        props = {
            "key": key,
            "inventory": self.name,
            "name": rule.name,
            "rule_id": rule.rule_id,
            "file": rule.file,
            "status": rule.status,
            "raw_status": rule.raw_status,
            "format": rule.format,
            "techniques": rule.techniques,
            "raw_tags": rule.raw_tags,
            "unknown_ids": unknown,
            "remapped": remapped,
        }
        # What a re-import compares: a rule whose digest is unchanged is counted unchanged.
        digest = hashlib.blake2b(
            orjson.dumps([props, covers], option=orjson.OPT_SORT_KEYS), digest_size=16
        ).hexdigest()
        props["digest"] = digest
        self.digests.append(int(digest[:16], 16))
        if direct:
            self._count(rule.name, key, direct)
        return {"props": props, "covers": covers}

    def _count(self, name: str, key: str, direct: dict[str, tuple[str, str]]) -> None:
        """This rule's part in each technique's answer: for each technique it reaches, full or
        partial (full when any path is: its own tag, or its parent's with parent coverage
        'full') and through what (``via``), as the coverage queries define it."""
        index = self.index
        parent_mode = self.opts.parent_coverage
        sub_mode = self.opts.subtechnique_coverage
        # technique -> [partial, via mask]
        reach: dict[str, list[Any]] = {t: [False, _VIA[via]] for t, (_, via) in direct.items()}
        for t in direct:
            tech = index.by_id[t]
            if not tech.is_subtechnique:
                if parent_mode != "none":
                    for child in index.children.get(t, ()):
                        slot = reach.get(child)
                        if slot is None:
                            reach[child] = [parent_mode == "partial", _PARENT]
                        else:
                            slot[1] |= _PARENT
                            if parent_mode == "full":
                                slot[0] = False
            elif tech.parent_id and sub_mode != "none":
                parent = index.by_id.get(tech.parent_id)
                if parent is not None and parent.current:
                    slot = reach.get(tech.parent_id)
                    if slot is None:
                        reach[tech.parent_id] = [True, _SUB]
                    else:
                        slot[1] |= _SUB
        item = (name, key)
        coverage = self.coverage
        for t, (partial, vias) in reach.items():
            cov = coverage.get(t)
            if cov is None:
                cov = coverage[t] = _TechniqueCoverage(self.cap)
            if partial:
                cov.partial += 1
                cov.partial_names.add(item)
            else:
                cov.full += 1
                cov.full_names.add(item)
            cov.via |= vias

    def coverage_rows(self) -> list[dict[str, Any]]:
        """One ``TechniqueCoverage`` row per technique the inventory reaches."""
        out = []
        for t, cov in sorted(self.coverage.items()):
            out.append(
                {
                    "technique_id": t,
                    "technique": self.index.by_id[t].stix_id,
                    "rules": cov.full_names.result(),
                    "rule_count": cov.full,
                    "partial_rules": cov.partial_names.result(),
                    "partial_rule_count": cov.partial,
                    "via": [v for v, bit in _VIA.items() if cov.via & bit],
                }
            )
        return out

    @property
    def techniques_covered(self) -> int:
        return sum(1 for c in self.coverage.values() if c.full)

    @property
    def techniques_partial(self) -> int:
        return sum(1 for c in self.coverage.values() if c.partial and not c.full)

    def summary(
        self,
        stream: RuleStream,
        *,
        source: str,
        releases: dict[str, Any],
        imported_at: str,
    ) -> dict[str, Any]:
        def listing(kind: str) -> list[dict[str, Any]]:
            return [
                {"id": tid, "to": res.targets, "via": res.kind, "rules": self.rules_per_id[tid]}
                if res.targets
                else {"id": tid, "rules": self.rules_per_id[tid]}
                for tid, res in sorted(self.resolutions.items())
                if (
                    res.kind == kind if kind != "remapped" else res.kind in ("revoked", "crosswalk")
                )
            ]

        return {
            "name": self.name,
            "format": stream.format,
            "source": source,
            "imported_at": imported_at,
            "rules_read": self.rules_read,
            "excluded": dict(sorted(self.excluded.items())),
            "rules": self.rules,
            "mapped": self.mapped,
            "unmapped": self.unmapped,
            "unresolved": self.unresolved,
            "ids": len(self.resolutions),
            "ids_remapped": listing("remapped"),
            "ids_unknown": listing("unknown"),
            "ids_retired": listing("retired"),
            "ids_ambiguous": [  # revoked into several (a split): the user chooses, by a crosswalk
                {"id": tid, "choose_from": res.candidates, "rules": self.rules_per_id[tid]}
                for tid, res in sorted(self.resolutions.items())
                if res.kind == "ambiguous"
            ],
            "techniques_covered": self.techniques_covered,
            "techniques_partial": self.techniques_partial,
            "covers_edges": self.edges,
            "by_status": dict(sorted(self.by_status.items())),
            "parse_issues": len(stream.issues),
            "issues": [{"file": i.file, "message": i.message} for i in stream.issues][
                :_STORED_ISSUES
            ],
            "ignored_ids": list(stream.ignored_ids),
            "notes": list(stream.notes),
            "releases": releases,
            "crosswalk": self.crosswalk.source if self.crosswalk else None,
            "options": {
                "exclude_status": list(self.opts.exclude_status),
                "parent_coverage": self.opts.parent_coverage,
                "subtechnique_coverage": self.opts.subtechnique_coverage,
            },
        }
