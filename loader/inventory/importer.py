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
and stored with the inventory (``TechniqueCoverage``). Resolution, rows and coverage are
planned by :mod:`loader.inventory.planner` (no database); crosswalks are read by
:mod:`loader.inventory.crosswalk`.

Memory: a CSV inventory is read as a stream and written :data:`BATCH` rules at a time, so the
importer holds a batch or two, the per-technique coverage and 8 bytes a rule (digests, to count
the rules unchanged since the last import). Other formats are parsed whole first (their corpora
are thousands of files, not millions of rules).
"""

from __future__ import annotations

import json
import re
import time
from array import array
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from neo4j import READ_ACCESS
from neo4j.exceptions import DriverError, Neo4jError

from queries.catalog import Q
from queries.errors import Conflict, InvalidInput, NotFound, TtpgraphError
from queries.graph import Graph
from queries.technique_index import Crosswalk, CrosswalkEntry, TechniqueIndex

from .. import inventory_store as store
from ..inventory_store import RULE_NAMES_CAP, StagedImport, chunks
from ..locks import graph_lock
from .crosswalk import load_crosswalk
from .model import ParsedInventory, Rule, RuleStream
from .planner import ImportOptions, ImportPlanner
from .registry import stream_inventory

MAX_NAME = 100
_NAME_OK = re.compile(r"^[^\x00-\x1f\x7f]+$")

BATCH = 2_000
"""Rules a write transaction: Neo4j's transaction memory stays in the MBs, and smaller
transactions cost Neo4j less CPU a rule than larger ones (measured: 1,000-2,000 best)."""


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
