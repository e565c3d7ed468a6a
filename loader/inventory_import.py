"""Write a detection inventory into the graph as a named inventory: streamed, in batches, and
switched in at once (the previous inventory answers until the new one is whole).

Storage model, staging and switch: :mod:`loader.inventory_store`. Technique ids are resolved
against the ATT&CK release loaded now:

- an id the release holds, current: ``via: 'tag'``;
- an id the release has revoked: the replacement it is ``REVOKED_BY`` (followed up to 5 hops),
  ``via: 'revoked'``, and the summary lists it under ``ids_remapped``;
- an id the release does not hold (an ATT&CK v19 id in a v18 graph) and that an optional
  crosswalk maps to ids it holds: those, ``via: 'crosswalk'`` (listed under ``ids_remapped``);
- anything else is listed, never dropped: ``ids_unknown`` (the release does not know it),
  ``ids_retired`` (deprecated, or revoked without a current replacement). The rule keeps it in
  ``unknown_ids``.

``COVERS`` edges are what the rules say (resolved). Coverage through a parent or a
sub-technique follows the inventory's options: a rule tagged with a parent technique covers its
sub-techniques partially (``parent_coverage`` ``'partial'``; ``'full'``: covered; ``'none'``), a
rule tagged only with a sub-technique covers its parent partially (``subtechnique_coverage``
``'partial'`` or ``'none'``). The answer per technique is computed while the rules stream by
and stored with the inventory (``TechniqueCoverage``).

Memory: a CSV inventory is read as a stream and written :data:`BATCH` rules at a time, so the
importer holds a batch or two, the per-technique coverage and 8 bytes a rule (digests, to count
the rules unchanged since the last import). Other formats are parsed whole first (their corpora
are thousands of files, not millions of rules).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import yaml
from neo4j import READ_ACCESS
from neo4j.exceptions import DriverError, Neo4jError

from queries.catalog import Q
from queries.errors import Conflict, InvalidInput, NotFound, TtpgraphError
from queries.graph import Graph
from queries.technique_index import (  # noqa: F401 - Resolution is part of this API
    Crosswalk,
    CrosswalkEntry,
    Resolution,
    TechniqueIndex,
)

from . import inventory_store as store
from .inventory import (
    PARENT_MODES,
    STATUSES,
    SUB_MODES,
    ParsedInventory,
    Rule,
    RuleStream,
    normalize_technique_id,
    stream_inventory,
)
from .inventory_store import RULE_NAMES_CAP, StagedImport, chunks
from .locks import graph_lock

MAX_NAME = 100
_NAME_OK = re.compile(r"^[^\x00-\x1f\x7f]+$")
_MAX_CROSSWALK_BYTES = 5 * 1024 * 1024
_STORED_ISSUES = 200
BATCH = 2_000
"""Rules a write transaction: Neo4j's transaction memory stays in the MBs, and smaller
transactions cost Neo4j less CPU a rule than larger ones (measured: 1,000-2,000 best)."""


# --------------------------------------------------------------------------- crosswalk


def load_crosswalk(path: Path | str) -> Crosswalk:
    """Read a technique-id crosswalk. Accepted shapes (YAML or JSON, or CSV):

    - Elastic's version map (``etc/attack-version-maps/attack_v18_to_v19.yaml``):
      ``techniques:`` / ``subtechniques:`` mapping an old id to ``{id, name}`` (or null: dropped);
    - Elastic's redirects (``etc/attack-technique-redirects.json``): ``{"mapping": {old: new}}``;
    - Elastic's ``attack-crosswalk.json``: a list of ``{old: [{id: new}], change-type}``;
    - a plain mapping ``{old: new}`` or ``{old: [new, ...]}``;
    - a CSV with two columns (old, new), with or without a header.
    """
    p = Path(path).expanduser()
    shown = str(p)
    if not p.is_file():
        raise InvalidInput(f"crosswalk file does not exist: {shown}")
    if p.stat().st_size > _MAX_CROSSWALK_BYTES:
        raise InvalidInput(f"crosswalk file {shown}: over 5 MB")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"crosswalk file {shown}: cannot read ({exc})") from None
    return parse_crosswalk(text, source=shown, csv_hint=p.suffix.lower() in {".csv", ".tsv"})


def parse_crosswalk(text: str, *, source: str = "crosswalk", csv_hint: bool = False) -> Crosswalk:
    """:func:`load_crosswalk` on text."""
    entries: list[CrosswalkEntry] = []
    data: Any = None
    if not csv_hint:
        try:
            data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except (yaml.YAMLError, RecursionError) as exc:
            raise InvalidInput(f"crosswalk {source}: not YAML/JSON ({_one_line(exc)})") from None
    if csv_hint or isinstance(data, str):
        entries = _csv_entries(text, source)
    elif isinstance(data, dict) and any(k in data for k in ("techniques", "subtechniques")):
        for key in ("techniques", "subtechniques"):
            block = data.get(key) or {}
            if not isinstance(block, dict):
                raise InvalidInput(f"crosswalk {source}: '{key}' must be a mapping")
            for src, target in block.items():
                if isinstance(target, dict):
                    _add(entries, src, target.get("id"), target.get("name"), source)
                elif isinstance(target, str):
                    _add(entries, src, target, None, source)
    elif isinstance(data, dict) and isinstance(data.get("mapping"), dict):
        for src, dst in data["mapping"].items():
            for d in dst if isinstance(dst, list) else [dst]:
                _add(entries, src, d, None, source)
    elif isinstance(data, list):
        for item in data:
            if not isinstance(item, dict):
                continue
            for src, targets in item.items():
                if src == "change-type" or not isinstance(targets, list):
                    continue
                for t in targets:
                    if isinstance(t, dict):
                        _add(entries, src, t.get("id"), None, source)
    elif isinstance(data, dict):
        for src, dst in data.items():
            for d in dst if isinstance(dst, list) else [dst]:
                if isinstance(d, dict):
                    _add(entries, src, d.get("id"), d.get("name"), source)
                else:
                    _add(entries, src, d, None, source)
    else:
        raise InvalidInput(f"crosswalk {source}: not a mapping of technique ids")
    entries = [e for e in dict.fromkeys(entries) if e.src != e.dst]
    if not entries:
        raise InvalidInput(f"crosswalk {source}: no technique id pairs found")
    return Crosswalk(source=source, entries=entries)


def _add(entries: list[CrosswalkEntry], src: Any, dst: Any, name: Any, source: str) -> None:
    a = normalize_technique_id(src) if isinstance(src, str) else None
    b = normalize_technique_id(dst) if isinstance(dst, str) else None
    if a and b:
        entries.append(CrosswalkEntry(a, b, name.strip() if isinstance(name, str) else None))


def _csv_entries(text: str, source: str) -> list[CrosswalkEntry]:
    entries: list[CrosswalkEntry] = []
    first = text.lstrip().split("\n", 1)[0]
    delimiter = max(",;\t|", key=first.count)
    for row in csv.reader(io.StringIO(text), delimiter=delimiter):
        if len(row) >= 2:
            _add(entries, row[0], row[1], row[2] if len(row) > 2 else None, source)
    return entries


def _one_line(exc: object) -> str:
    return " ".join(str(exc).split())[:200]


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


@dataclass
class ImportResult:
    name: str
    summary: dict[str, Any]
    seconds: float
    timings: dict[str, float]


def check_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("inventory name is empty")
    name = name.strip()
    if len(name) > MAX_NAME:
        raise InvalidInput(f"inventory name longer than {MAX_NAME} characters")
    if not _NAME_OK.match(name):
        raise InvalidInput("inventory name contains control characters")
    return name


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


# --------------------------------------------------------------------------- import


@dataclass
class ReleaseBasis:
    """The loaded ATT&CK releases an import resolves against."""

    releases: dict[str, Any]
    """domain -> version"""
    basis: list[str]
    """``domain@sha256`` of each: what the stored coverage is valid for."""
    index: TechniqueIndex


def release_basis(graph: Graph) -> ReleaseBasis:
    rows = graph.read(Q.releases, limit=100)
    return ReleaseBasis(
        releases={r["domain"]: r["version"] for r in rows},
        basis=sorted(f"{r['domain']}@{r['sha256'] or r['version']}" for r in rows),
        index=TechniqueIndex.from_graph(graph),
    )


def import_inventory(
    graph: Graph,
    fmt: str,
    path: Path | str,
    *,
    name: str,
    options: ImportOptions | None = None,
    crosswalk: Crosswalk | Path | str | None = None,
    source_label: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> ImportResult:
    """Read ``path`` as ``fmt`` and write it as inventory ``name``, replacing one of that name
    once it is whole (see the module docstring). Returns the import summary."""
    t0 = time.perf_counter()
    name = check_name(name)
    opts = options or ImportOptions()
    opts.check()
    cw = load_crosswalk(crosswalk) if isinstance(crosswalk, (str, Path)) else crosswalk
    say = progress or (lambda _m: None)
    say(f"reading {fmt} rules in {path}")
    # The release's technique index is read while the parser starts (I/O beside CPU).
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(release_basis, graph)
        stream = stream_inventory(fmt, path)
        t_parse = time.perf_counter()
        basis = pending.result()
    with graph_lock(graph, f"inventory:{name}", what=f"an import of inventory {name!r}"):
        result = _import(
            graph, stream, name=name, options=opts, crosswalk=cw, source_label=source_label,
            progress=say, basis=basis,
        )  # fmt: skip
    result.timings = {"open": t_parse - t0, **result.timings}
    result.seconds = time.perf_counter() - t0
    result.summary["seconds"] = round(result.seconds, 3)
    return result


def import_parsed(
    graph: Graph,
    parsed: ParsedInventory,
    *,
    name: str,
    options: ImportOptions | None = None,
    crosswalk: Crosswalk | None = None,
    source_label: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> ImportResult:
    """Write an already parsed inventory (see :func:`import_inventory`)."""
    opts = options or ImportOptions()
    opts.check()
    return _import(
        graph, RuleStream.of(parsed), name=check_name(name), options=opts, crosswalk=crosswalk,
        source_label=source_label, progress=progress or (lambda _m: None), basis=None,
    )  # fmt: skip


def _import(
    graph: Graph,
    stream: RuleStream,
    *,
    name: str,
    options: ImportOptions,
    crosswalk: Crosswalk | None,
    source_label: str | None,
    progress: Callable[[str], None],
    basis: ReleaseBasis | None,
    carry: dict[str, Any] | None = None,
) -> ImportResult:
    t0 = time.perf_counter()
    what = f"importing inventory {name!r}"
    try:
        basis = basis or release_basis(graph)
        if not basis.releases:
            raise NotFound("no ATT&CK release is loaded: run 'ttpgraph load' first")
        previous = _live_import(graph, name)
        if previous is not None and not options.replace:
            raise Conflict(f"inventory {name!r} exists (re-import with replace to overwrite)")
        store.ensure_schema(graph)
        store.clean_up(graph, batch=BATCH)
    except (Neo4jError, DriverError, OSError) as exc:
        raise store.failure(what, exc, still="nothing was written") from None
    planner = ImportPlanner(
        basis.index, name=name, options=options, crosswalk=crosswalk,
        unique_keys=stream.format == "csv" and carry is None,
    )  # fmt: skip
    staged = StagedImport(graph, name, batch=BATCH)
    timings: dict[str, float] = {}
    previous_note = (
        f"inventory {name!r} still answers as before" if previous else "nothing of it is visible"
    )
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="inventory-writer") as pool:
            pending: Future[None] | None = None
            for part in chunks(stream.rules, BATCH):
                rows = [row for row in map(planner.row, part) if row is not None]
                if pending is not None:
                    pending.result()
                    pending = None
                if rows:
                    pending = pool.submit(staged.write_rules, rows)
                    progress(f"{planner.rules} rules read, writing as inventory {name!r}")
            if pending is not None:
                pending.result()
        timings["rules"] = time.perf_counter() - t0
        if not planner.rules:
            raise InvalidInput(_nothing_to_import(stream, planner, source_label))
        staged.write_coverage(planner.coverage_rows())
        staged.write_digests(planner.digests.tobytes())
        imported_at = datetime.now(UTC).isoformat(timespec="seconds")
        summary = planner.summary(
            stream,
            source=source_label or stream.root,
            releases=basis.releases,
            imported_at=imported_at,
        )
        if carry:
            summary.update(carry)
        summary["write_batch"] = staged.batch
        summary["rules_unchanged"] = (
            _unchanged(graph, name, planner.digests) if previous is not None else 0
        )
        props = _inventory_props(summary, crosswalk, basis)
        timings["coverage"] = time.perf_counter() - t0 - timings["rules"]
        switched = staged.switch(props, replace=options.replace)
    except BaseException as exc:
        staged.discard()
        if isinstance(exc, TtpgraphError):
            raise
        if isinstance(exc, (Neo4jError, DriverError, OSError, store.TooBig)):
            raise store.failure(what, exc, still=previous_note) from None
        raise
    finally:
        graph.cache.clear()
    t_switch = time.perf_counter()
    if switched.previous:
        try:
            store.remove_import(graph, switched.previous, batch=BATCH)
        except (Neo4jError, DriverError, OSError, store.TooBig):
            summary["notes"].append(
                "the previous import's rules are left to remove: the next import does it"
            )
    timings["switch"] = t_switch - t0 - timings["rules"] - timings["coverage"]
    timings["remove_previous"] = time.perf_counter() - t_switch
    seconds = time.perf_counter() - t0
    return ImportResult(name=name, summary=summary, seconds=seconds, timings=timings)


def _nothing_to_import(stream: RuleStream, planner: ImportPlanner, label: str | None) -> str:
    why = (
        f"; {len(stream.issues)} files could not be read, first: "
        f"{stream.issues[0].file}: {stream.issues[0].message}"
        if stream.issues
        else ""
    )
    what = (
        f"all {planner.rules_read} rules have an excluded status"
        if planner.rules_read
        else f"no {stream.format} rules found in {label or stream.root}"
    )
    return what + why


def _live_import(graph: Graph, name: str) -> str | None:
    """The live inventory's import id ('' for one imported before import ids); None: none."""
    rows = graph.read(
        "MATCH (i:Inventory {name: $name}) RETURN coalesce(i.import_id, '') AS id", name=name
    )
    return rows[0]["id"] if rows else None


def _unchanged(graph: Graph, name: str, digests: array) -> int:
    """Rules of the new import whose digest the live inventory holds too."""
    import numpy as np

    rows = graph.read(
        "MATCH (:Inventory {name: $name})-[:HAS_DIGESTS]->(d:InventoryDigests) "
        "RETURN d.digests AS d",
        name=name,
    )
    old = array("Q")
    if rows and isinstance(rows[0]["d"], (bytes, bytearray)):
        old.frombytes(bytes(rows[0]["d"]))
    else:  # imported by an earlier version: read the rules' own digests
        with graph.driver.session(
            database=graph.database, default_access_mode=READ_ACCESS
        ) as session:
            for rec in session.run(
                "MATCH (:Inventory {name: $name})-[:HAS_RULE]->(r) RETURN r.digest AS d",
                name=name,
            ):
                d = rec["d"]
                if isinstance(d, str) and len(d) >= 16:
                    old.append(int(d[:16], 16))
    if not old or not digests:
        return 0
    new = np.frombuffer(digests, dtype=np.uint64)
    return int(np.isin(new, np.frombuffer(old, dtype=np.uint64)).sum())


def _inventory_props(
    summary: dict[str, Any], crosswalk: Crosswalk | None, basis: ReleaseBasis
) -> dict[str, Any]:
    opts = summary["options"]
    return {
        "name": summary["name"],
        "format": summary["format"],
        "source": summary["source"],
        "imported_at": summary["imported_at"],
        "rules": summary["rules"],
        "mapped": summary["mapped"],
        "techniques_covered": summary["techniques_covered"],
        "releases": json.dumps(summary["releases"], sort_keys=True),
        "coverage_basis": basis.basis,
        "rule_names_cap": RULE_NAMES_CAP,
        "options": json.dumps(opts, sort_keys=True),
        "parent_coverage": opts["parent_coverage"],
        "subtechnique_coverage": opts["subtechnique_coverage"],
        "summary": json.dumps(summary, sort_keys=True),
        # the crosswalk's pairs, so later questions (emulation plans) read ids the same way
        "crosswalk": json.dumps(
            [[e.src, e.dst, e.dst_name] for e in crosswalk.entries] if crosswalk else []
        ),
    }


# --------------------------------------------------------------------------- re-resolution


def reresolve_inventory(
    graph: Graph,
    name: str,
    *,
    crosswalk: Crosswalk | None = None,
    progress: Callable[[str], None] | None = None,
) -> ImportResult:
    """Resolve an inventory's stored rule tags again against the ATT&CK releases loaded now
    and write its COVERS edges and coverage anew (as an import from the graph: staged, then
    switched in; the parse-time parts of the summary are kept). For after a release load.
    ``crosswalk``: the pairs to use instead of the inventory's stored ones."""
    name = check_name(name)
    rows = graph.read(Q.inventory_info, inventory=name)
    if not rows:
        raise NotFound(f"no inventory named {name!r}")
    info = rows[0]
    old = _json(info.get("summary"), {})
    opts = _json(info.get("options"), {})
    pairs = _json(info.get("crosswalk"), [])
    entries = [
        CrosswalkEntry(p[0], p[1], p[2] if len(p) > 2 else None)
        for p in pairs
        if isinstance(p, list) and len(p) >= 2
    ]
    if crosswalk is None and entries:
        crosswalk = Crosswalk(old.get("crosswalk") or "inventory", entries)
    options = ImportOptions(
        exclude_status=list(opts.get("exclude_status") or []),
        parent_coverage=opts.get("parent_coverage") or "partial",
        subtechnique_coverage=opts.get("subtechnique_coverage") or "partial",
    )
    options.check()
    stream = RuleStream(info["format"] or "csv", info["source"] or "", _stored_rules(graph, name))
    carry = {
        k: old[k]
        for k in ("rules_read", "excluded", "parse_issues", "issues", "ignored_ids", "notes")
        if k in old
    }
    with graph_lock(graph, f"inventory:{name}", what=f"a re-resolution of inventory {name!r}"):
        return _import(
            graph, stream, name=name, options=options, crosswalk=crosswalk,
            source_label=info["source"], progress=progress or (lambda _m: None), basis=None,
            carry=carry,
        )  # fmt: skip


def _stored_rules(graph: Graph, name: str) -> Iterator[Rule]:
    with graph.driver.session(database=graph.database, default_access_mode=READ_ACCESS) as s:
        result = s.run(
            "MATCH (:Inventory {name: $name})-[:HAS_RULE]->(r:DetectionRule) "
            "RETURN r.name AS name, r.rule_id AS rule_id, r.file AS file, r.status AS status, "
            "r.techniques AS techniques, r.raw_tags AS raw_tags, r.format AS format, "
            "r.raw_status AS raw_status ORDER BY r.key",
            name=name,
        )
        for rec in result:
            yield Rule(
                name=rec["name"] or "",
                rule_id=rec["rule_id"] or "",
                file=rec["file"] or "",
                status=rec["status"] or "unknown",
                techniques=list(rec["techniques"] or []),
                raw_tags=list(rec["raw_tags"] or []),
                format=rec["format"] or "",
                raw_status=rec["raw_status"] or "",
            )


def _json(text: Any, default: Any) -> Any:
    try:
        value = json.loads(text) if isinstance(text, str) and text else default
    except ValueError:
        return default
    return value if isinstance(value, type(default)) else default


# --------------------------------------------------------------------------- delete


def delete_inventory(graph: Graph, name: str) -> int:
    """Delete an inventory and its rules; :class:`NotFound` when there is none of that name.
    Returns the number of rules deleted."""
    return store.delete_inventory(graph, check_name(name), batch=BATCH)
