"""Where a detection inventory lives in the graph, and how an import replaces one without a
reader ever seeing half of it.

Model (see ``docs/coverage.md``)::

    (:Inventory {name, import_id, format, source, imported_at, rules, mapped, ...})
      -[:HAS_RULE]->(:DetectionRule {key, inventory, name, rule_id, ...})-[:COVERS {tag, via}]->
      (:Technique)
    (:Inventory)-[:HAS_COVERAGE]->(:TechniqueCoverage {technique_id, technique, rules,
                                   rule_count, partial_rules, partial_rule_count, via})

``TechniqueCoverage`` is the inventory's answer per technique, computed at import with the
inventory's parent/sub-technique options: the rules that cover it (names, the first
:data:`RULE_NAMES_CAP` by name, and how many), those that cover it only partially, and how
(``via``). Reading coverage costs what the techniques asked cost, whatever the rule count and
whatever other inventories hold. It is valid for the ATT&CK releases it was computed against
(``Inventory.coverage_basis``: ``domain@sha256`` of each loaded release); once a release is
loaded over them, the coverage queries compute the answer from the ``COVERS`` edges instead
(same answer, slower) until the inventory is re-resolved (:func:`loader.inventory.importer.
reresolve_inventory`) or re-imported.

An import writes under a new ``import_id`` into an ``(:InventoryStaging)`` node, in batches
(each its own transaction: Neo4j's transaction memory stays small whatever the size), then
switches in one small transaction: the previous ``Inventory`` becomes ``InventoryRetired``,
the staged one becomes the ``Inventory`` (threat models' ``HELD_AGAINST`` edges move to it),
and the graph version is bumped. The retired one is then deleted in batches. Queries only ever
match ``Inventory``: until the switch the previous inventory answers, after it the new one.

Staged and retired imports record who writes them (host, process id) and a heartbeat; a
process that died (killed, or Neo4j went away under it) leaves them behind, and the next
import or delete removes them (same host: the process is gone; any host: no heartbeat for
:data:`STALE_AFTER` seconds).
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from neo4j import ManagedTransaction
from neo4j.exceptions import (
    ClientError,
    ConstraintError,
    DatabaseError,
    DriverError,
    Neo4jError,
    ServiceUnavailable,
    SessionExpired,
    TransientError,
)

from queries.cache import bump_graph_version, inventory_scope
from queries.errors import Conflict, ImportFailed, NotFound, TtpgraphError, Unavailable
from queries.graph import Graph

STAGING = "InventoryStaging"
RETIRED = "InventoryRetired"
RULE_NAMES_CAP = 100
"""Rule names listed per technique in coverage answers (the first by name); the count is
always whole. The coverage queries' fallback path caps at the same number."""
STALE_AFTER = 15 * 60
"""Seconds without a heartbeat after which a staged or retired import counts as abandoned."""
MIN_BATCH = 50
"""A batch is halved when Neo4j's transaction memory limit refuses it, down to this size."""

SCHEMA = [
    "CREATE CONSTRAINT inventory_name IF NOT EXISTS FOR (n:Inventory) REQUIRE n.name IS UNIQUE",
    # Rules were unique by key when one import replaced another in place; an import is now
    # written beside the previous one, so two imports of a name hold the same keys for a while.
    "DROP CONSTRAINT detection_rule_key IF EXISTS",
]

_HOST = socket.gethostname()
_RUNNING: set[str] = set()  # import ids this process is writing now

_CREATE_STAGING = (
    f"CREATE (i:{STAGING}) SET i = $props, i.import_id = $import_id, i.host = $host, "
    "i.pid = $pid, i.heartbeat = $now"
)
_CREATE_RULES = (
    f"MATCH (i:{STAGING} {{import_id: $import_id}}) SET i.heartbeat = $now "
    "WITH i UNWIND $rows AS row "
    "CREATE (i)-[:HAS_RULE]->(r:DetectionRule) SET r = row.props "
    "WITH r, row UNWIND row.covers AS c "
    "MATCH (t:AttackObject {stix_id: c.stix_id}) "
    "CREATE (r)-[:COVERS {tag: c.tag, via: c.via}]->(t) "
    "RETURN count(*) AS edges"
)
_CREATE_COVERAGE = (
    f"MATCH (i:{STAGING} {{import_id: $import_id}}) SET i.heartbeat = $now "
    "WITH i UNWIND $rows AS row "
    "CREATE (i)-[:HAS_COVERAGE]->(c:TechniqueCoverage) SET c = row"
)
_DELETE_RULES = (
    f"MATCH (i:{RETIRED} {{import_id: $import_id}})-[:HAS_RULE]->(r:DetectionRule) "
    "WITH i, r LIMIT $batch SET i.heartbeat = $now DETACH DELETE r RETURN count(r) AS n"
)
_DELETE_NODE = (
    f"MATCH (i:{RETIRED} {{import_id: $import_id}}) "
    "OPTIONAL MATCH (i)-[:HAS_COVERAGE|HAS_DIGESTS]->(c) DETACH DELETE c "
    "WITH DISTINCT i DETACH DELETE i"
)
_LEFTOVERS = (
    f"MATCH (i:{STAGING}) RETURN i.import_id AS import_id, i.name AS name, i.host AS host, "
    "i.pid AS pid, i.heartbeat AS heartbeat "
    f"UNION ALL MATCH (i:{RETIRED}) RETURN i.import_id AS import_id, i.name AS name, "
    "i.host AS host, i.pid AS pid, i.heartbeat AS heartbeat"
)
_CLAIM = (
    f"MATCH (i:{STAGING}|{RETIRED} {{import_id: $import_id}}) WHERE i.heartbeat = $seen "
    f"SET i:{RETIRED}, i.host = $host, i.pid = $pid, i.heartbeat = $now REMOVE i:{STAGING} "
    "RETURN count(i) AS n"
)
_RETIRE = (
    "MATCH (old:Inventory {name: $name}) "
    f"SET old:{RETIRED}, old.host = $host, old.pid = $pid, old.heartbeat = $now, "
    # an inventory imported before import ids gets one, to be removed by it
    "old.import_id = coalesce(old.import_id, randomUUID()) "
    "REMOVE old:Inventory "
    "WITH old OPTIONAL MATCH (m)-[h:HELD_AGAINST]->(old) "
    "WITH old, collect(h) AS held, collect(m) AS models "
    "RETURN old.import_id AS import_id, held, models"
)


# --------------------------------------------------------------------------- errors


class TooBig(Exception):
    """Neo4j's transaction memory limit refused a batch (not retried as it is)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


_MEMORY_CODES = ("MemoryPoolOutOfMemoryError", "TransactionMemoryLimit", "OutOfMemoryError")


def _is_memory_error(exc: Exception) -> bool:
    code = getattr(exc, "code", None) or ""
    return isinstance(exc, Neo4jError) and any(c in code for c in _MEMORY_CODES)


def _guarded(work: Callable[[ManagedTransaction], Any]) -> Callable[[ManagedTransaction], Any]:
    """``work`` with Neo4j's memory refusal turned into :class:`TooBig`: the driver retries
    transient errors, and retrying the same transaction cannot fit it into the limit."""

    def run(tx: ManagedTransaction) -> Any:
        try:
            return work(tx)
        except (TransientError, ClientError, DatabaseError) as exc:
            if _is_memory_error(exc):
                raise TooBig(exc.code or "") from exc
            raise

    return run


def failure(what: str, exc: BaseException, *, still: str) -> TtpgraphError:
    """One line naming what failed, why, and what to do; ``still`` says what the graph answers
    now (the previous inventory, or nothing of the import)."""
    if isinstance(exc, TtpgraphError):
        return exc
    if isinstance(exc, TooBig):
        return ImportFailed(
            f"{what}: Neo4j's transaction memory limit refused even a batch of {MIN_BATCH} rules "
            f"({exc.code}); raise dbms.memory.transaction.total.max in neo4j.conf; {still}"
        )
    if isinstance(exc, (ServiceUnavailable, SessionExpired, OSError)):
        return Unavailable(
            f"{what}: Neo4j went away ({exc.__class__.__name__}); {still}; "
            "run it again once Neo4j is back"
        )
    if isinstance(exc, ConstraintError):
        return Conflict(f"{what}: {_neo4j_message(exc)}; {still}")
    code = getattr(exc, "code", None) or exc.__class__.__name__
    return ImportFailed(f"{what}: Neo4j refused a write ({code}: {_neo4j_message(exc)}); {still}")


def _neo4j_message(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc)
    return " ".join(str(text).split())[:300]


# --------------------------------------------------------------------------- schema


def ensure_schema(graph: Graph) -> None:
    """The inventory constraints (idempotent)."""
    for stmt in SCHEMA:
        graph.write(stmt)


def _write(graph: Graph, work: Callable[[ManagedTransaction], Any]) -> Any:
    with graph.driver.session(database=graph.database) as session:
        return session.execute_write(_guarded(work))


# --------------------------------------------------------------------------- staged import


@dataclass
class SwitchResult:
    previous: str | None
    """The import id of the inventory replaced (None: there was none)."""


class StagedImport:
    """One import being written beside the inventory it replaces (see the module docstring)."""

    def __init__(self, graph: Graph, name: str, *, batch: int) -> None:
        self.graph = graph
        self.name = name
        self.batch = max(MIN_BATCH, batch)
        self.import_id = uuid.uuid4().hex
        self.opened = False
        self.edges = 0

    def open(self) -> None:
        """Create the staging node (nothing a query sees)."""
        _RUNNING.add(self.import_id)
        _write(
            self.graph,
            lambda tx: tx.run(
                _CREATE_STAGING, props={"name": self.name}, import_id=self.import_id,
                host=_HOST, pid=os.getpid(), now=time.time(),
            ).consume(),
        )  # fmt: skip
        self.opened = True

    def write_rules(self, rows: list[dict[str, Any]]) -> None:
        """Rules and their COVERS edges, :attr:`batch` rules a transaction; a batch Neo4j's
        memory limit refuses is halved (down to :data:`MIN_BATCH`)."""
        if not self.opened:
            self.open()
        self.edges += _batched(
            self.graph,
            rows,
            self,
            lambda tx, part: tx.run(
                _CREATE_RULES, import_id=self.import_id, rows=part, now=time.time()
            ).single(),
        )

    def write_coverage(self, rows: list[dict[str, Any]]) -> None:
        if not self.opened:
            self.open()
        _batched(
            self.graph,
            rows,
            self,
            lambda tx, part: tx.run(
                _CREATE_COVERAGE, import_id=self.import_id, rows=part, now=time.time()
            ).consume(),
        )

    def write_digests(self, digests: bytes) -> None:
        """The rules' digests (8 bytes each), read by the next import of the name to count the
        rules it leaves unchanged: one property on a node of its own."""
        if not self.opened:
            self.open()
        _write(
            self.graph,
            lambda tx: tx.run(
                f"MATCH (i:{STAGING} {{import_id: $import_id}}) "
                "CREATE (i)-[:HAS_DIGESTS]->(:InventoryDigests {digests: $digests})",
                import_id=self.import_id,
                digests=digests,
            ).consume(),
        )

    def switch(
        self,
        props: dict[str, Any],
        *,
        replace: bool,
        check: Callable[[ManagedTransaction], None] | None = None,
    ) -> SwitchResult:
        """Make the staged import the inventory, in one small transaction."""

        def work(tx: ManagedTransaction) -> SwitchResult:
            if check is not None:
                check(tx)
            staged = tx.run(
                f"MATCH (i:{STAGING} {{import_id: $id}}) RETURN count(i) AS n", id=self.import_id
            ).single()
            if not staged or not staged["n"]:
                raise Conflict(
                    f"inventory {self.name!r}: this import was removed while it was written "
                    "(by another import that took it for abandoned); run it again"
                )
            old = tx.run(
                _RETIRE if replace else "MATCH (old:Inventory {name: $name}) "
                "RETURN old.import_id AS import_id, [] AS held, [] AS models",
                name=self.name, host=_HOST, pid=os.getpid(), now=time.time(),
            ).single()  # fmt: skip
            if old is not None and not replace:
                raise Conflict(
                    f"inventory {self.name!r} exists (re-import with replace to overwrite)"
                )
            tx.run(
                f"MATCH (new:{STAGING} {{import_id: $id}}) "
                "SET new += $props, new:Inventory "
                f"REMOVE new:{STAGING}, new.host, new.pid, new.heartbeat "
                "WITH new UNWIND $models AS m "
                "MATCH (tm) WHERE elementId(tm) = m "
                "MERGE (tm)-[:HELD_AGAINST]->(new)",
                id=self.import_id,
                props=props,
                models=[m.element_id for m in (old["models"] if old else [])],
            ).consume()
            if old is not None:
                tx.run(
                    "UNWIND $held AS h MATCH ()-[r:HELD_AGAINST]->() WHERE elementId(r) = h "
                    "DELETE r",
                    held=[h.element_id for h in old["held"]],
                ).consume()
            bump_graph_version(tx, inventory_scope(self.name))
            return SwitchResult(previous=old["import_id"] if old else None)

        try:
            return _write(self.graph, work)  # type: ignore[no-any-return]
        except ConstraintError:
            raise Conflict(
                f"inventory {self.name!r} was imported by someone else meanwhile"
            ) from None
        finally:
            _RUNNING.discard(self.import_id)

    def discard(self) -> None:
        """Remove what was staged (best effort: the next import removes it otherwise)."""
        _RUNNING.discard(self.import_id)
        if not self.opened:
            return
        with contextlib.suppress(Neo4jError, DriverError, OSError, TtpgraphError, TooBig):
            _write(
                self.graph,
                lambda tx: tx.run(
                    f"MATCH (i:{STAGING} {{import_id: $id}}) SET i:{RETIRED} REMOVE i:{STAGING}",
                    id=self.import_id,
                ).consume(),
            )
            remove_import(self.graph, self.import_id, batch=self.batch)


def _batched(
    graph: Graph,
    rows: list[dict[str, Any]],
    staged: StagedImport,
    run: Callable[[ManagedTransaction, list[dict[str, Any]]], Any],
) -> int:
    """Write ``rows`` in transactions of ``staged.batch`` rows, halving the batch for good when
    Neo4j's memory limit refuses one. Returns the sum of the ``edges`` the statement returns."""
    done = 0
    total = 0
    while done < len(rows):
        part = rows[done : done + staged.batch]

        def work(tx: ManagedTransaction, part: list[dict[str, Any]] = part) -> Any:
            return run(tx, part)

        try:
            rec = _write(graph, work)
        except TooBig:
            if staged.batch <= MIN_BATCH:
                raise
            staged.batch = max(MIN_BATCH, staged.batch // 2)
            continue
        if rec is not None and hasattr(rec, "get"):
            total += int(rec.get("edges") or 0)
        done += len(part)
    return total


# --------------------------------------------------------------------------- removal


def remove_import(graph: Graph, import_id: str, *, batch: int = 2_000) -> int:
    """Delete a staged or retired import, its rules and its coverage, in batches. Returns the
    number of rules deleted."""
    deleted = 0
    size = max(MIN_BATCH, batch)
    while True:

        def work(tx: ManagedTransaction, size: int = size) -> Any:
            return tx.run(_DELETE_RULES, import_id=import_id, batch=size, now=time.time()).single()

        try:
            rec = _write(graph, work)
        except TooBig:
            if size <= MIN_BATCH:
                raise
            size = max(MIN_BATCH, size // 2)
            continue
        n = int(rec["n"]) if rec else 0
        deleted += n
        if n == 0:
            break
    _write(graph, lambda tx: tx.run(_DELETE_NODE, import_id=import_id).consume())
    return deleted


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _abandoned(row: dict[str, Any], now: float) -> bool:
    if row["host"] == _HOST:
        if row["pid"] == os.getpid():
            return row["import_id"] not in _RUNNING
        return not _pid_alive(row["pid"])
    heartbeat = row["heartbeat"] if isinstance(row["heartbeat"], (int, float)) else 0
    return now - heartbeat > STALE_AFTER


def abandoned_imports(graph: Graph) -> list[dict[str, Any]]:
    """Staged and retired imports nobody is writing or deleting any more."""
    now = time.time()
    return [r for r in graph.read(_LEFTOVERS) if r["import_id"] and _abandoned(r, now)]


def clean_up(graph: Graph, *, batch: int = 2_000) -> list[str]:
    """Remove what killed imports (or deletes) left behind; the import ids removed. Each is
    claimed first (one transaction), so two processes cleaning up never delete the same one."""
    removed = []
    for row in abandoned_imports(graph):

        def claim(tx: ManagedTransaction, row: dict[str, Any] = row) -> int:
            rec = tx.run(
                _CLAIM, import_id=row["import_id"], seen=row["heartbeat"], host=_HOST,
                pid=os.getpid(), now=time.time(),
            ).single()  # fmt: skip
            return int(rec["n"]) if rec else 0

        if not _write(graph, claim):
            continue
        _RUNNING.add(row["import_id"])
        try:
            remove_import(graph, row["import_id"], batch=batch)
        finally:
            _RUNNING.discard(row["import_id"])
        removed.append(row["import_id"])
    return removed


def delete_inventory(graph: Graph, name: str, *, batch: int = 2_000) -> int:
    """Delete an inventory: it stops answering in one small transaction, then its rules are
    deleted in batches. :class:`NotFound` when there is none of that name. Returns the number
    of rules deleted."""

    def retire(tx: ManagedTransaction) -> tuple[str, int]:
        row = tx.run(
            "MATCH (i:Inventory {name: $name}) RETURN COUNT { (i)-[:HAS_RULE]->() } AS rules",
            name=name,
        ).single()
        if not row:
            raise NotFound(f"no inventory named {name!r}")
        retired = tx.run(_RETIRE, name=name, host=_HOST, pid=os.getpid(), now=time.time()).single()
        import_id = retired["import_id"] if retired else ""
        tx.run(
            f"MATCH ()-[h:HELD_AGAINST]->(i:{RETIRED} {{import_id: $id}}) DELETE h", id=import_id
        ).consume()
        bump_graph_version(tx, inventory_scope(name))
        _RUNNING.add(import_id)
        return import_id, int(row["rules"])

    try:
        try:
            import_id, rules = _write(graph, retire)
        finally:
            graph.cache.clear()
        try:
            remove_import(graph, import_id, batch=batch)
        finally:
            _RUNNING.discard(import_id)
        clean_up(graph, batch=batch)
    except (Neo4jError, DriverError, OSError, TooBig) as exc:
        raise failure(
            f"deleting inventory {name!r}",
            exc,
            still="run the delete again (an inventory half deleted no longer answers)",
        ) from None
    return rules


def chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """``items`` in lists of ``size``."""
    part: list[Any] = []
    for item in items:
        part.append(item)
        if len(part) >= size:
            yield part
            part = []
    if part:
        yield part
