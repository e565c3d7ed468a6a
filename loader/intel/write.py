"""Writing an import: the schema, the source's lock held while the import is staged beside the
previous one and switched in (:mod:`loader.intel.store`), a source deleted, and the analyst's
``SAME_AS`` links between the organisation's clusters and ATT&CK's groups."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

from neo4j import ManagedTransaction

from queries.cache import INTEL, bump_graph_version
from queries.catalog import Q
from queries.errors import Conflict, InvalidInput, NotFound
from queries.graph import Graph, neo4j_errors
from queries.intel import CLUSTER_ID, ImportResult, read_quietly, resolve_cluster_keys
from queries.resolve import resolve_group

from ..locks import graph_lock
from .common import check_source, utc_now
from .rows import IntelRows
from .store import SCHEMA as STORE_SCHEMA
from .store import StagedIntel, quiet_session, retire_source

SCHEMA = [
    "CREATE CONSTRAINT intel_source_name IF NOT EXISTS "
    "FOR (n:IntelSource) REQUIRE n.source IS UNIQUE",
    "CREATE INDEX org_object_source IF NOT EXISTS FOR (n:OrgObject) ON (n.source)",
    "CREATE INDEX org_object_stix_id IF NOT EXISTS FOR (n:OrgObject) ON (n.stix_id)",
    "CREATE INDEX org_object_name IF NOT EXISTS FOR (n:OrgObject) ON (n.name)",
    # IOC lookup: an indicator's or observable's first value (lower-cased) as ioc_key; the rare
    # IOC with several values is flagged ioc_multi and its values list is read.
    "CREATE INDEX org_object_ioc_key IF NOT EXISTS FOR (n:OrgObject) ON (n.ioc_key)",
    "CREATE INDEX org_object_ioc_multi IF NOT EXISTS FOR (n:OrgObject) ON (n.ioc_multi)",
]
# IOCs imported before ioc_key existed get it once (a no-op afterwards).
_IOC_KEYS = (
    "MATCH (n:OrgObject) WHERE (n:Indicator OR n:Observable) AND n.ioc_key IS NULL "
    "AND size(coalesce(n.values, [])) > 0 "
    "SET n.ioc_key = n.values[0], "
    "n.ioc_multi = CASE WHEN size(n.values) > 1 THEN true ELSE null END"
)


def ensure_intel_schema(graph: Graph) -> None:
    for stmt in (*SCHEMA, *STORE_SCHEMA):
        graph.write(stmt)
    graph.write("CALL db.awaitIndexes(300)")  # a new index answers before batches rely on it
    graph.write(_IOC_KEYS)


NOTHING = (
    "nothing to import (no intrusion set, campaign, software, report, indicator, observable, "
    "sighting or incident)"
)


@contextlib.contextmanager
def staged_import(graph: Graph, rows: IntelRows) -> Iterator[StagedIntel]:
    """The source's lock, held while a new import of it is written beside the previous one;
    what was written is removed when the block fails (the previous import keeps answering)."""
    ensure_intel_schema(graph)
    with graph_lock(graph, f"intel:{rows.source}", what=f"an import of {rows.source!r}"):
        store = StagedIntel(graph, rows.source)
        try:
            yield store
        except BaseException:
            store.discard()
            raise


def switch_in(graph: Graph, rows: IntelRows, store: StagedIntel, *, replace: bool = True,
              extra: dict[str, Any] | None = None) -> bool:  # fmt: skip
    """Write what ``rows`` still holds, then make the import the source's (one small
    transaction) and remove the previous one. Returns whether there was one."""
    rows.store = store
    rows.flush()
    meta = {
        "source": rows.source,
        "flavour": rows.flavour,
        "file": rows.file,
        "sha256": rows.sha256,
        "imported_at": utc_now(),
        "nodes": sum(rows.node_counts().values()),
        "relationships": sum(rows.edge_counts().values()),
        "counts": json.dumps({**rows.node_counts(), **rows.edge_counts()}, sort_keys=True),
        "warnings": rows.warnings[:50],
        "org": True,
        **(extra or {}),
    }
    meta = {k: v for k, v in meta.items() if v is not None}
    replaced, _old = store.switch(meta, same_as=rows.same_as, replace=replace, now=utc_now())
    return replaced


def write_intel(
    graph: Graph,
    rows: IntelRows,
    *,
    replace: bool = True,
    extra: dict[str, Any] | None = None,
) -> bool:
    """Write one import built in memory (a MISP event, an incident), replacing what the same
    source held before: staged in batches, switched in at once.

    Returns whether an earlier import of the source was replaced. With ``replace=False`` an
    existing source is a Conflict (nothing written)."""
    if not replace and graph.read(
        "MATCH (s:IntelSource {source: $source}) RETURN s.source AS s", source=rows.source
    ):
        raise Conflict(
            f"{rows.source!r} already exists; replace it explicitly or choose another name"
        )
    with staged_import(graph, rows) as store:
        return switch_in(graph, rows, store, replace=replace, extra=extra)


def import_result(
    rows: IntelRows, replaced: bool, t0: float, notes: list[str] | None = None
) -> ImportResult:
    """What an import wrote and skipped, and how long it took since ``t0``."""
    return ImportResult(
        source=rows.source,
        flavour=rows.flavour,
        file=rows.file,
        sha256=rows.sha256,
        replaced=replaced,
        nodes=rows.node_counts(),
        relationships=rows.edge_counts(),
        same_as=len(rows.same_as),
        skipped=dict(sorted(rows.skipped.items())),
        warnings=[*(notes or []), *rows.warnings],
        seconds=round(time.perf_counter() - t0, 3),
    )


def delete_source(graph: Graph, source: str) -> int:
    """Remove everything one source imported (an incident is the source ``incident: NAME``):
    it stops answering in one small transaction, then its nodes are deleted in batches."""
    source = check_source(source)
    ensure_intel_schema(graph)
    with graph_lock(graph, f"intel:{source}", what=f"a delete of {source!r}"):
        deleted = retire_source(graph, source)
    if deleted < 0:
        known = [r["source"] for r in read_quietly(graph, Q.intel_sources, limit=1000)]
        raise NotFound(f"no imported source {source!r}", suggestions=known[:10])
    return deleted


def link_same_as(graph: Graph, *, cluster: str, group: str, remove: bool = False) -> dict[str, Any]:
    """Link (or unlink) the organisation's cluster and a MITRE group as the same actor.

    ``cluster``: the cluster's STIX id, name or alias; ``group``: ATT&CK id, name or alias.
    Every copy of the cluster (one per source that holds it) gets the link."""
    keys, cname = resolve_cluster_keys(graph, cluster)
    if CLUSTER_ID.match(group.strip()):
        raise InvalidInput(f"{group!r} is one of the organisation's clusters, not an ATT&CK group")
    g = resolve_group(graph, group)
    if CLUSTER_ID.match(g.attack_id):  # a resolve_group that knows the organisation's clusters
        raise InvalidInput(f"{group!r} is one of the organisation's clusters, not an ATT&CK group")

    def work(tx: ManagedTransaction) -> int:
        if remove:
            rec = tx.run(
                "UNWIND $keys AS k MATCH (c:OrgObject {key: k})-[s:SAME_AS]->(g:Group "
                "{attack_id: $gid}) DELETE s RETURN count(s) AS n",
                keys=keys,
                gid=g.attack_id,
            ).single()
        else:
            rec = tx.run(
                "UNWIND $keys AS k MATCH (c:OrgObject {key: k}) "
                "MATCH (g:Group {attack_id: $gid}) "
                "MERGE (c)-[s:SAME_AS]->(g) "
                "SET s.org = true, s.by = 'analyst', s.source = c.source, "
                "s.created = coalesce(s.created, $now) RETURN count(s) AS n",
                keys=keys,
                gid=g.attack_id,
                now=utc_now(),
            ).single()
        bump_graph_version(tx, INTEL)
        return int(rec["n"]) if rec else 0

    with neo4j_errors(), quiet_session(graph) as session:
        n = session.execute_write(work)
    graph.cache.clear()
    if remove and n == 0:
        raise NotFound(f"{cname!r} is not linked to {g.attack_id}")
    return {"cluster": cname, "group_id": g.attack_id, "group": g.name, "links": n,
            "removed": remove}  # fmt: skip
