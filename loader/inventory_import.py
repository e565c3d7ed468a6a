"""Write a parsed detection inventory into the graph as a named inventory, in one transaction.

Model (see ``docs/coverage.md``)::

    (:Inventory {name, format, source, imported_at, rules, mapped, techniques_covered,
                 releases, options, parent_coverage, subtechnique_coverage, summary, crosswalk})
      -[:HAS_RULE]->(:DetectionRule {key, inventory, name, rule_id, file, status, raw_status,
                                     format, techniques, raw_tags, unknown_ids, remapped, digest})
      -[:COVERS {tag, via}]->(:Technique)

Technique ids are resolved against the ATT&CK release loaded now:

- an id the release holds, current: ``via: 'tag'``;
- an id the release has revoked: the replacement it is ``REVOKED_BY`` (followed up to 5 hops),
  ``via: 'revoked'``, and the summary lists it under ``ids_remapped``;
- an id the release does not hold (an ATT&CK v19 id in a v18 graph) and that an optional
  crosswalk maps to ids it holds: those, ``via: 'crosswalk'`` (listed under ``ids_remapped``);
- anything else is listed, never dropped: ``ids_unknown`` (the release does not know it),
  ``ids_retired`` (deprecated, or revoked without a current replacement). The rule keeps it in
  ``unknown_ids``.

``COVERS`` edges are what the rules say (resolved). Coverage semantics are options stored on
the inventory and applied when questions are asked (``queries/cypher/coverage_*``): a rule
tagged with a parent technique covers its sub-techniques partially (``parent_coverage``
``'partial'``; ``'full'``: covered; ``'none'``), a rule tagged only with a sub-technique covers
its parent partially (``subtechnique_coverage`` ``'partial'`` or ``'none'``).

Re-importing a name replaces the inventory in one transaction: rules whose digest (properties
and edges) is unchanged are left alone, the others are deleted and written anew; a failed
import leaves the graph as it was.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from neo4j import ManagedTransaction
from neo4j.exceptions import ConstraintError

from queries.cache import bump_graph_version, inventory_scope
from queries.catalog import Q
from queries.errors import Conflict, InvalidInput, NotFound
from queries.graph import Graph
from queries.technique_index import (  # noqa: F401 - Resolution is part of this API
    Crosswalk,
    CrosswalkEntry,
    Resolution,
    TechniqueIndex,
)

from .inventory import (
    PARENT_MODES,
    STATUSES,
    SUB_MODES,
    ParsedInventory,
    normalize_technique_id,
    parse_inventory,
)
from .locks import graph_lock

MAX_NAME = 100
_NAME_OK = re.compile(r"^[^\x00-\x1f\x7f]+$")
_MAX_CROSSWALK_BYTES = 5 * 1024 * 1024
_STORED_ISSUES = 200
BATCH = 2000

SCHEMA = [
    "CREATE CONSTRAINT inventory_name IF NOT EXISTS FOR (n:Inventory) REQUIRE n.name IS UNIQUE",
    "CREATE CONSTRAINT detection_rule_key IF NOT EXISTS "
    "FOR (n:DetectionRule) REQUIRE n.key IS UNIQUE",
]

# The loader's own writes (the house keeps loader writes beside the loader).
_DELETE = (
    "MATCH (i:Inventory {name: $name}) "
    "OPTIONAL MATCH (i)-[:HAS_RULE]->(r:DetectionRule) "
    "WITH i, collect(r) AS rules "
    "FOREACH (r IN rules | DETACH DELETE r) "
    "DETACH DELETE i "
    "RETURN count(*) AS deleted"
)
_CREATE_INVENTORY = "CREATE (i:Inventory) SET i = $props"
_UPDATE_INVENTORY = "MATCH (i:Inventory {name: $name}) SET i = $props"
_EXISTING_RULES = (
    "MATCH (:Inventory {name: $name})-[:HAS_RULE]->(r:DetectionRule) "
    "RETURN r.key AS key, r.digest AS digest"
)
_DELETE_RULES = "UNWIND $keys AS k MATCH (r:DetectionRule {key: k}) DETACH DELETE r"
_CREATE_RULES = (
    "MATCH (i:Inventory {name: $name}) "
    "UNWIND $rows AS row "
    "CREATE (i)-[:HAS_RULE]->(r:DetectionRule) SET r = row.props "
    "WITH r, row UNWIND row.covers AS c "
    "MATCH (t:AttackObject {stix_id: c.stix_id}) "
    "CREATE (r)-[:COVERS {tag: c.tag, via: c.via}]->(t)"
)


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


# --------------------------------------------------------------------------- resolution


# --------------------------------------------------------------------------- import


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
    """Parse ``path`` as ``fmt`` and write it as inventory ``name`` (replacing one of that
    name) in one transaction. Returns the import summary."""
    t0 = time.perf_counter()
    name = check_name(name)
    opts = options or ImportOptions()
    opts.check()
    cw = load_crosswalk(crosswalk) if isinstance(crosswalk, (str, Path)) else crosswalk
    say = progress or (lambda _m: None)
    say(f"parsing {fmt} rules in {path}")
    # The release's technique index is read while the rules are parsed (I/O beside CPU).
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(_release_index, graph)
        parsed = parse_inventory(fmt, path)
        t_parse = time.perf_counter()
        releases, index = pending.result()
    with graph_lock(graph, f"inventory:{name}", what=f"an import of inventory {name!r}"):
        result = import_parsed(
            graph, parsed, name=name, options=opts, crosswalk=cw, source_label=source_label,
            progress=say, _prefetched=(releases, index),
        )  # fmt: skip
    result.timings = {"parse": t_parse - t0, **result.timings}
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
    _prefetched: tuple[dict[str, Any], TechniqueIndex] | None = None,
) -> ImportResult:
    """Write an already parsed inventory (see :func:`import_inventory`)."""
    t0 = time.perf_counter()
    name = check_name(name)
    opts = options or ImportOptions()
    opts.check()
    say = progress or (lambda _m: None)
    rules_read = len(parsed.rules)
    rules = [r for r in parsed.rules if r.status not in opts.exclude_status]
    if not rules:
        why = (
            f"; {len(parsed.issues)} files could not be read, first: "
            f"{parsed.issues[0].file}: {parsed.issues[0].message}"
            if parsed.issues
            else ""
        )
        what = (
            f"all {rules_read} rules have an excluded status"
            if rules_read
            else f"no {parsed.format} rules found in {source_label or parsed.root}"
        )
        raise InvalidInput(what + why)
    releases, index = _prefetched or _release_index(graph)
    if not releases:
        raise NotFound("no ATT&CK release is loaded: run 'ttpgraph load' first")
    t_index = time.perf_counter()

    plan = plan_import(
        parsed, index, name=name, options=opts, crosswalk=crosswalk, releases=releases,
        source_label=source_label,
    )  # fmt: skip
    rule_rows, summary, inventory_props, edge_count = (
        plan.rows,
        plan.summary,
        plan.inventory_props,
        plan.edges,
    )
    t_rows = time.perf_counter()

    write_timings: dict[str, float] = {}
    unchanged: list[int] = []

    def work(tx: ManagedTransaction) -> None:
        existed = tx.run(
            "MATCH (i:Inventory {name: $name}) RETURN count(i) AS n", name=name
        ).single()
        t = time.perf_counter()
        if existed and existed["n"]:
            if not opts.replace:
                raise Conflict(f"inventory {name!r} exists (re-import with replace to overwrite)")
            # Replace in place: rules whose digest (props and covers) is unchanged stay as
            # they are; the others are deleted and written anew. One transaction either way.
            old = {r["key"]: r["digest"] for r in tx.run(_EXISTING_RULES, name=name)}
            keep = {
                r["props"]["key"]
                for r in rule_rows
                if old.get(r["props"]["key"]) == r["props"]["digest"]
            }
            stale = [k for k in old if k not in keep]
            for i in range(0, len(stale), BATCH):
                tx.run(_DELETE_RULES, keys=stale[i : i + BATCH]).consume()
            tx.run(_UPDATE_INVENTORY, name=name, props=inventory_props).consume()
            todo = [r for r in rule_rows if r["props"]["key"] not in keep]
            unchanged.append(len(keep))
        else:
            tx.run(_CREATE_INVENTORY, props=inventory_props).consume()
            todo = rule_rows
        write_timings["delete"] = time.perf_counter() - t
        for i in range(0, len(todo), BATCH):
            tx.run(_CREATE_RULES, name=name, rows=todo[i : i + BATCH]).consume()
        write_timings["create"] = time.perf_counter() - t - write_timings["delete"]
        bump_graph_version(tx, inventory_scope(name))
        write_timings["_end"] = time.perf_counter()

    say(f"writing {len(rule_rows)} rules and {edge_count} COVERS edges as inventory {name!r}")
    t = time.perf_counter()
    ensure_schema(graph)
    write_timings["schema"] = time.perf_counter() - t
    try:
        with graph.driver.session(database=graph.database) as session:
            session.execute_write(work)
            write_timings["commit"] = time.perf_counter() - write_timings.pop("_end", t)
    except ConstraintError:
        raise Conflict(f"inventory {name!r} was imported by someone else meanwhile") from None
    finally:
        graph.cache.clear()
    t_write = time.perf_counter()
    summary["rules_unchanged"] = unchanged[-1] if unchanged else 0
    return ImportResult(
        name=name,
        summary=summary,
        seconds=t_write - t0,
        timings={
            "index": t_index - t0,
            "resolve": t_rows - t_index,
            "write": t_write - t_rows,
            **{f"write_{k}": v for k, v in write_timings.items()},
        },
    )


def _release_index(graph: Graph) -> tuple[dict[str, Any], TechniqueIndex]:
    releases = {r["domain"]: r["version"] for r in graph.read(Q.releases, limit=100)}
    return releases, TechniqueIndex.from_graph(graph)


@dataclass
class PlannedImport:
    """What an import will write: rule rows (with their COVERS edges) and the summary."""

    rows: list[dict[str, Any]]
    summary: dict[str, Any]
    inventory_props: dict[str, Any]
    edges: int


def plan_import(
    parsed: ParsedInventory,
    index: TechniqueIndex,
    *,
    name: str,
    options: ImportOptions,
    crosswalk: Crosswalk | None,
    releases: dict[str, Any],
    source_label: str | None = None,
) -> PlannedImport:
    """Resolve every rule's ids against ``index`` and build the rows and the summary (pure)."""
    opts = options
    rules_read = len(parsed.rules)
    excluded = Counter(r.status for r in parsed.rules if r.status in opts.exclude_status)
    rules = [r for r in parsed.rules if r.status not in opts.exclude_status]
    resolutions: dict[str, Resolution] = {}
    rule_rows: list[dict[str, Any]] = []
    rules_per_id: Counter[str] = Counter()
    keys: Counter[str] = Counter()
    mapped = unresolved = unmapped = 0
    covered: set[str] = set()
    partial_only: set[str] = set()
    edge_count = 0
    for rule in rules:
        direct: dict[str, tuple[str, str]] = {}  # technique -> (tag, via)
        unknown: list[str] = []
        remapped: list[str] = []
        for tid in rule.techniques:
            rules_per_id[tid] += 1
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
        covers = [
            {"stix_id": index.by_id[t].stix_id, "tag": tag, "via": via}
            for t, (tag, via) in sorted(direct.items())
        ]
        # Coverage through a parent or a sub-technique is read at query time from the direct
        # edges and the inventory's options (fewer writes on dense Technique nodes); here it
        # is only counted for the summary.
        partial: dict[str, tuple[str, str, bool]] = {}
        for t, (tag, _via) in sorted(direct.items()):
            tech = index.by_id[t]
            if not tech.is_subtechnique and opts.parent_coverage != "none":
                for child in index.children.get(t, []):
                    if child not in direct:
                        partial.setdefault(
                            child, (tag, "parent", opts.parent_coverage == "partial")
                        )
            if tech.is_subtechnique and tech.parent_id and opts.subtechnique_coverage != "none":
                parent = index.by_id.get(tech.parent_id)
                if parent is not None and parent.current and tech.parent_id not in direct:
                    partial.setdefault(tech.parent_id, (tag, "subtechnique", True))
        if not rule.techniques:
            unmapped += 1
        elif direct:
            mapped += 1
        else:
            unresolved += 1
        covered.update(direct)
        covered.update(t for t, (_, _, p) in partial.items() if not p)
        partial_only.update(t for t, (_, _, p) in partial.items() if p)
        edge_count += len(covers)
        key = f"{name}|{rule.rule_id}|{rule.file}"
        keys[key] += 1
        if keys[key] > 1:
            key = f"{key}#{keys[key]}"
        props = {
            "key": key,
            "inventory": name,
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
        # What a re-import compares: a rule whose digest is unchanged is left as it is.
        props["digest"] = hashlib.blake2b(
            json.dumps([props, covers], sort_keys=True, default=str).encode(), digest_size=16
        ).hexdigest()
        rule_rows.append({"props": props, "covers": covers})
    partial_only -= covered

    def listing(kind: str) -> list[dict[str, Any]]:
        return [
            {"id": tid, "to": res.targets, "via": res.kind, "rules": rules_per_id[tid]}
            if res.targets
            else {"id": tid, "rules": rules_per_id[tid]}
            for tid, res in sorted(resolutions.items())
            if (res.kind == kind if kind != "remapped" else res.kind in ("revoked", "crosswalk"))
        ]

    imported_at = datetime.now(UTC).isoformat(timespec="seconds")
    summary: dict[str, Any] = {
        "name": name,
        "format": parsed.format,
        "source": source_label or parsed.root,
        "imported_at": imported_at,
        "rules_read": rules_read,
        "excluded": dict(sorted(excluded.items())),
        "rules": len(rule_rows),
        "mapped": mapped,
        "unmapped": unmapped,
        "unresolved": unresolved,
        "ids": len(resolutions),
        "ids_remapped": listing("remapped"),
        "ids_unknown": listing("unknown"),
        "ids_retired": listing("retired"),
        "ids_ambiguous": [  # revoked into several (a split): the user chooses, by a crosswalk
            {"id": tid, "choose_from": res.candidates, "rules": rules_per_id[tid]}
            for tid, res in sorted(resolutions.items())
            if res.kind == "ambiguous"
        ],
        "techniques_covered": len(covered),
        "techniques_partial": len(partial_only),
        "covers_edges": edge_count,
        "by_status": dict(sorted(Counter(r.status for r in rules).items())),
        "parse_issues": len(parsed.issues),
        "issues": [{"file": i.file, "message": i.message} for i in parsed.issues][:_STORED_ISSUES],
        "ignored_ids": list(parsed.ignored_ids),
        "notes": list(parsed.notes),
        "releases": releases,
        "crosswalk": crosswalk.source if crosswalk else None,
        "options": {
            "exclude_status": list(opts.exclude_status),
            "parent_coverage": opts.parent_coverage,
            "subtechnique_coverage": opts.subtechnique_coverage,
        },
    }
    inventory_props = {
        "name": name,
        "format": parsed.format,
        "source": summary["source"],
        "imported_at": imported_at,
        "rules": len(rule_rows),
        "mapped": mapped,
        "techniques_covered": len(covered),
        "releases": json.dumps(releases, sort_keys=True),
        "options": json.dumps(summary["options"], sort_keys=True),
        "parent_coverage": opts.parent_coverage,
        "subtechnique_coverage": opts.subtechnique_coverage,
        "summary": json.dumps(summary, sort_keys=True),
        # the crosswalk's pairs, so later questions (emulation plans) read ids the same way
        "crosswalk": json.dumps(
            [[e.src, e.dst, e.dst_name] for e in crosswalk.entries] if crosswalk else []
        ),
    }
    return PlannedImport(rule_rows, summary, inventory_props, edge_count)


def ensure_schema(graph: Graph) -> None:
    """The inventory constraints (idempotent)."""
    for stmt in SCHEMA:
        graph.write(stmt)


def delete_inventory(graph: Graph, name: str) -> int:
    """Delete an inventory and its rules; :class:`NotFound` when there is none of that name.
    Returns the number of rules deleted."""
    name = check_name(name)

    def work(tx: ManagedTransaction) -> int:
        row = tx.run(
            "MATCH (i:Inventory {name: $name}) OPTIONAL MATCH (i)-[:HAS_RULE]->(r) "
            "RETURN count(DISTINCT i) AS i, count(r) AS rules",
            name=name,
        ).single()
        if not row or not row["i"]:
            raise NotFound(f"no inventory named {name!r}")
        tx.run(_DELETE, name=name).consume()
        bump_graph_version(tx, inventory_scope(name))
        return int(row["rules"])

    try:
        with graph.driver.session(database=graph.database) as session:
            return session.execute_write(work)
    finally:
        graph.cache.clear()
