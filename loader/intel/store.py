"""Where one import of the organisation's intelligence is written, and how it replaces the
previous import of its source without a reader ever seeing half of either.

An import gets a new ``import_id`` and is written in batches, each its own transaction (Neo4j's
transaction memory stays small whatever the size):

- the *bulk* nodes (``Indicator``, ``Observable``, ``Sighting``: what grows to millions) under
  their final labels, with ``import_id``. Readers reach them only through the ``ioc_key`` /
  ``ioc_multi`` indexes, which answer a node only when its ``import_id`` is its source's live one
  (``(:IntelSource {source, import_id})``), or through the edges of the live import's other
  nodes, which only ever point into their own import;
- the *small* nodes (clusters, campaigns, software, reports, incidents: what the actor questions
  start from) as ``OrgStaged`` (``org_label`` remembers the label), which no question matches;
- every relationship, between nodes of the import or to ATT&CK's nodes.

Then one small transaction switches: the previous import's small nodes become ``OrgRetired``
(their labels removed), the staged ones get ``OrgObject`` and their label, ``IntelSource`` gets
the new ``import_id`` (so the previous bulk nodes stop answering), the analyst's ``SAME_AS`` links
move over, and the graph version is bumped. The previous import is then deleted in batches. An
``(:IntelStaging {import_id, source})`` marker names what is being written or removed; the next
import or delete of the source (holding the source's lock) removes what a killed one left.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from neo4j import ManagedTransaction
from neo4j.exceptions import DriverError, Neo4jError

from queries.cache import INTEL, bump_graph_version
from queries.errors import Conflict, TtpgraphError
from queries.graph import Graph, neo4j_errors

STAGED = "OrgStaged"
RETIRED = "OrgRetired"
MARKER = "IntelStaging"
BULK_LABELS = ("Indicator", "Observable", "Sighting")
SMALL_LABELS = ("OrgCluster", "OrgCampaign", "OrgSoftware", "Report", "Incident")
LEGACY = "legacy"
"""The import id of nodes written before imports had one (an ``IntelSource`` without it)."""

SCHEMA = [
    # Two imports of a source hold the same keys while one replaces the other.
    "DROP CONSTRAINT org_object_key IF EXISTS",
    "CREATE INDEX org_object_key_lookup IF NOT EXISTS FOR (n:OrgObject) ON (n.key)",
    "CREATE INDEX org_object_import IF NOT EXISTS FOR (n:OrgObject) ON (n.import_id)",
    f"CREATE INDEX org_staged_key IF NOT EXISTS FOR (n:{STAGED}) ON (n.key)",
    f"CREATE INDEX org_staged_import IF NOT EXISTS FOR (n:{STAGED}) ON (n.import_id)",
    f"CREATE INDEX org_retired_import IF NOT EXISTS FOR (n:{RETIRED}) ON (n.import_id)",
    f"CREATE INDEX intel_staging_source IF NOT EXISTS FOR (n:{MARKER}) ON (n.source)",
]

_SMALL_MATCH = "|".join(SMALL_LABELS)
_DELETE_BATCH = {
    "bulk": "MATCH (n:OrgObject {import_id: $id}) WITH n LIMIT $batch DETACH DELETE n "
    "RETURN count(*) AS n",
    "staged": f"MATCH (n:{STAGED} {{import_id: $id}}) WITH n LIMIT $batch DETACH DELETE n "
    "RETURN count(*) AS n",
    "retired": f"MATCH (n:{RETIRED} {{import_id: $id}}) WITH n LIMIT $batch DETACH DELETE n "
    "RETURN count(*) AS n",
    # written before import ids: found by source
    "legacy": "MATCH (n:OrgObject {source: $source}) WHERE n.import_id IS NULL "
    "WITH n LIMIT $batch DETACH DELETE n RETURN count(*) AS n",
}


def quiet_session(graph: Graph) -> Any:
    """A write session without "label / type / property does not exist" notifications: the
    first import names relationship types (SAME_AS...) that do not exist yet."""
    return graph.driver.session(
        database=graph.database, notifications_disabled_classifications=["UNRECOGNIZED"]
    )


def _write(graph: Graph, work: Callable[[ManagedTransaction], Any]) -> Any:
    with neo4j_errors(), quiet_session(graph) as session:
        return session.execute_write(work)


def _run(graph: Graph, stmt: str, **params: Any) -> Any:
    def work(tx: ManagedTransaction) -> Any:
        rec = tx.run(stmt, **params).single()
        return rec.data() if rec else None

    return _write(graph, work)


def remove_import(
    graph: Graph, import_id: str, *, source: str, batch: int = 5_000, drop_marker: bool = True
) -> int:
    """Delete every node of one import (staged, live or retired), in batches; its marker last."""
    deleted = 0
    kinds = ["legacy"] if import_id == LEGACY else ["bulk", "staged", "retired"]
    for kind in kinds:
        while True:
            rec = _run(graph, _DELETE_BATCH[kind], id=import_id, source=source, batch=batch)
            n = int(rec["n"]) if rec else 0
            deleted += n
            if n == 0:
                break
    if drop_marker:
        _run(
            graph,
            f"MATCH (m:{MARKER} {{import_id: $id}}) WHERE m.source = $source DELETE m",
            id=import_id,
            source=source,
        )
    return deleted


def remove_leftovers(graph: Graph, source: str, *, keep: str | None = None) -> int:
    """Remove what replaced, deleted or killed imports of ``source`` left (call holding its
    lock); the number of nodes deleted."""
    rows = graph.read(
        f"MATCH (m:{MARKER} {{source: $source}}) RETURN DISTINCT m.import_id AS id",
        source=source,
    )
    return sum(
        remove_import(graph, r["id"], source=source) for r in rows if r["id"] and r["id"] != keep
    )


def edge_statement(rtype: str, *, src_small: bool, dst: str) -> str:
    """The statement writing one batch of ``rtype`` edges (see :meth:`StagedIntel.write_edges`).

    Both ends are found by their ``key`` with the index named, never by ``import_id`` (every
    node of an import shares it): the plan must not depend on index statistics sampled while an
    import grows (a replay of one 100k import's edges once took 629 s instead of 5 s on this
    machine, with the same statements and no hint)."""
    src_label = STAGED if src_small else "OrgObject"
    if dst == "attack":
        target = "MATCH (b:AttackObject {stix_id: row.dst}) "
    else:
        dst_label = STAGED if dst == "small" else "OrgObject"
        target = (
            f"MATCH (b:{dst_label} {{key: row.dst}}) USING INDEX b:{dst_label}(key) "
            "WHERE b.import_id = $id "
        )
    return (
        f"UNWIND $rows AS row MATCH (a:{src_label} {{key: row.src}}) "
        f"USING INDEX a:{src_label}(key) WHERE a.import_id = $id "
        f"{target}CREATE (a)-[r:{rtype}]->(b) SET r = row.props"
    )


class StagedIntel:
    """One import of ``source`` being written beside the one it replaces.

    Batches are written by a thread of their own, in the order they come, while the caller
    reads and checks the next ones (Python and Neo4j each keep a core busy instead of taking
    turns); at most :data:`AHEAD` batches wait. A batch that fails stops the writing: the next
    batch, :meth:`flush` or :meth:`switch` raises its error in the caller."""

    AHEAD = 2

    def __init__(self, graph: Graph, source: str) -> None:
        self.graph = graph
        self.source = source
        self.import_id = uuid.uuid4().hex
        self.opened = False
        self._batches: queue.Queue[Callable[[ManagedTransaction], Any] | None] = queue.Queue(
            maxsize=self.AHEAD
        )
        self._writer: threading.Thread | None = None
        self._error: BaseException | None = None

    def _submit(self, work: Callable[[ManagedTransaction], Any]) -> None:
        if self._error is not None:
            raise self._error
        if self._writer is None:
            self._writer = threading.Thread(
                target=self._write_batches, name="ttpgraph-intel-writer", daemon=True
            )
            self._writer.start()
        self._batches.put(work)

    def _write_batches(self) -> None:
        while True:
            work = self._batches.get()
            try:
                if work is None:
                    return
                if self._error is None:  # after a failure the rest is dropped
                    _write(self.graph, work)
            except BaseException as exc:  # noqa: BLE001 - raised again in the caller
                self._error = exc
            finally:
                self._batches.task_done()

    def flush(self) -> None:
        """Wait until every batch is written and stop the writer; raise a batch's error."""
        if self._writer is not None:
            self._batches.put(None)
            self._writer.join()
            self._writer = None
        if self._error is not None:
            raise self._error

    def open(self) -> None:
        remove_leftovers(self.graph, self.source)
        _run(
            self.graph,
            f"CREATE (m:{MARKER} {{import_id: $id, source: $source, started: $now}})",
            id=self.import_id,
            source=self.source,
            now=time.time(),
        )
        self.opened = True

    def write_nodes(self, label: str, rows: list[dict[str, Any]]) -> None:
        if not self.opened:
            self.open()
        if label in BULK_LABELS:
            stmt = (
                f"UNWIND $rows AS row CREATE (n:OrgObject:{label}) SET n = row, n.import_id = $id"
            )
        else:
            stmt = (
                f"UNWIND $rows AS row CREATE (n:{STAGED}) SET n = row, n.import_id = $id, "
                "n.org_label = $label"
            )
        self._submit(lambda tx: tx.run(stmt, rows=rows, id=self.import_id,
                                       label=label).consume())  # fmt: skip

    def write_edges(
        self, rtype: str, *, src_small: bool, dst: str, rows: list[dict[str, Any]]
    ) -> None:
        """``dst``: ``small`` / ``bulk`` (a node of this import, by key) or ``attack`` (an
        ATT&CK node by STIX id)."""
        if not self.opened:
            self.open()
        self._submit(lambda tx: tx.run(edge_statement(rtype, src_small=src_small, dst=dst),
                                       rows=rows, id=self.import_id).consume())  # fmt: skip

    def switch(
        self, meta: dict[str, Any], *, same_as: list[dict[str, Any]], replace: bool, now: str
    ) -> tuple[bool, str | None]:
        """Make the staged import the source's, in one small transaction. Returns (whether a
        previous import was replaced, its import id)."""
        if not self.opened:
            self.open()
        self.flush()

        def work(tx: ManagedTransaction) -> tuple[bool, str | None]:
            rec = tx.run(
                "OPTIONAL MATCH (s:IntelSource {source: $source}) "
                "RETURN s IS NOT NULL AS existed, s.import_id AS old",
                source=self.source,
            ).single()
            assert rec is not None
            existed = bool(rec["existed"])
            if existed and not replace:
                raise Conflict(
                    f"{self.source!r} already exists; replace it explicitly or choose another name"
                )
            old = (rec["old"] or LEGACY) if existed else None
            # The analyst's SAME_AS links survive a re-import of the same objects.
            kept = [
                r.data()
                for r in tx.run(
                    f"MATCH (c:{_SMALL_MATCH})-[s:SAME_AS]->(a:AttackObject) "
                    "WHERE c.source = $source "
                    "RETURN c.stix_id AS org_stix_id, a.stix_id AS attack_stix_id, "
                    "properties(s) AS props",
                    source=self.source,
                )
            ]
            retired = old if old and old != LEGACY else f"retired-{self.import_id}"
            tx.run(
                f"MATCH (n:{_SMALL_MATCH}) WHERE n.source = $source "
                f"SET n:{RETIRED}, n.import_id = $retired "
                f"REMOVE n:OrgObject:{':'.join(SMALL_LABELS)}",
                source=self.source,
                retired=retired,
            ).consume()
            for label in SMALL_LABELS:
                tx.run(
                    f"MATCH (n:{STAGED} {{import_id: $id}}) WHERE n.org_label = $label "
                    f"SET n:OrgObject:{label} REMOVE n:{STAGED}, n.org_label",
                    id=self.import_id,
                    label=label,
                ).consume()
            tx.run(
                "UNWIND $rows AS row "
                "MATCH (c:OrgObject {key: $source + '|' + row.org_stix_id}) "
                "WHERE c.import_id = $id "
                "MATCH (a:AttackObject {stix_id: row.attack_stix_id}) "
                "MERGE (c)-[s:SAME_AS]->(a) SET s = row.props",
                rows=kept,
                source=self.source,
                id=self.import_id,
            ).consume()
            tx.run(
                "UNWIND $rows AS row MATCH (c:OrgObject {key: row.key}) WHERE c.import_id = $id "
                "MATCH (a:AttackObject {stix_id: row.attack_stix_id}) "
                "MERGE (c)-[s:SAME_AS]->(a) "
                "SET s.source = $source, s.org = true, s.by = 'import', "
                "s.created = coalesce(s.created, $now)",
                rows=same_as,
                source=self.source,
                id=self.import_id,
                now=now,
            ).consume()
            tx.run(
                "MERGE (s:IntelSource {source: $meta.source}) SET s = $meta, s.import_id = $id",
                meta=meta,
                id=self.import_id,
            ).consume()
            # The marker now names what is left to remove: the previous import.
            tx.run(
                f"MATCH (m:{MARKER} {{import_id: $id}}) DELETE m "
                f"WITH count(*) AS _ UNWIND $old AS o CREATE (:{MARKER} {{import_id: o, "
                "source: $source, started: $ts})",
                id=self.import_id,
                old=[old] if old else [],
                source=self.source,
                ts=time.time(),
            ).consume()
            if old == LEGACY:
                tx.run(
                    f"CREATE (:{MARKER} {{import_id: $r, source: $source, started: $ts}})",
                    r=retired,
                    source=self.source,
                    ts=time.time(),
                ).consume()
            bump_graph_version(tx, INTEL)
            return existed, old

        existed, old = _write(self.graph, work)
        self.graph.cache.clear()
        if old is not None:
            remove_leftovers(self.graph, self.source, keep=self.import_id)
        return existed, old

    def discard(self) -> None:
        """Remove what was staged (best effort: the next import of the source removes it
        otherwise)."""
        if self._writer is not None:
            self._error = self._error or Conflict("the import was discarded")  # drop the rest
            with contextlib.suppress(BaseException):
                self.flush()
        if not self.opened:
            return
        with contextlib.suppress(Neo4jError, DriverError, OSError, TtpgraphError):
            remove_import(self.graph, self.import_id, source=self.source)


def retire_source(graph: Graph, source: str) -> int:
    """Stop a source answering in one small transaction (its ``IntelSource`` goes, its small
    nodes are retired), then delete it in batches. Returns the nodes it held, -1 when there
    was no such source."""

    def work(tx: ManagedTransaction) -> bool:
        rec = tx.run(
            "OPTIONAL MATCH (s:IntelSource {source: $source}) "
            "RETURN s IS NOT NULL AS existed, s.import_id AS id",
            source=source,
        ).single()
        assert rec is not None
        if not rec["existed"]:
            return False
        old = rec["id"] or LEGACY
        retired = old if old != LEGACY else f"retired-{uuid.uuid4().hex}"
        tx.run(
            f"MATCH (n:{_SMALL_MATCH}) WHERE n.source = $source "
            f"SET n:{RETIRED}, n.import_id = $retired "
            f"REMOVE n:OrgObject:{':'.join(SMALL_LABELS)}",
            source=source,
            retired=retired,
        ).consume()
        tx.run("MATCH (s:IntelSource {source: $source}) DELETE s", source=source).consume()
        tx.run(
            f"UNWIND $ids AS i CREATE (:{MARKER} {{import_id: i, source: $source, started: $ts}})",
            ids=sorted({old, retired}),
            source=source,
            ts=time.time(),
        ).consume()
        bump_graph_version(tx, INTEL)
        return True

    existed = _write(graph, work)
    graph.cache.clear()
    return remove_leftovers(graph, source) if existed else -1
