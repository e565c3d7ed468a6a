"""Graph rows -> Neo4j, in one write transaction per bundle.

One transaction means a load either lands whole or not at all: a crash, a killed server or a bad
batch leaves the graph as it was, and a re-run completes the load. Every statement is a MERGE or
a delete-then-create of derived edges, so running the same load twice leaves the graph identical.
The Release node is written last.

Two modes:

- ``full`` (a whole release of one domain): what the domain loaded before and the bundle no
  longer holds leaves the domain. STIX relationships it no longer holds are deleted; objects it
  no longer holds are marked (``in_release = false``, ``removed_from``) and kept while anything
  outside the retired ATT&CK objects still points at them (an organisation's detection rule, a
  threat model, another domain's object), deleted otherwise, so that an upgraded graph equals a
  fresh load of the new release.
- ``partial`` (a TAXII sync): the bundle holds new and changed objects only; ``removed_ids``
  names the objects and relationships the release no longer holds. Nothing else is touched.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Literal

from neo4j import ManagedTransaction
from neo4j.exceptions import ServiceUnavailable, SessionExpired

from queries.cache import ATTACK, bump_graph_version
from queries.errors import Unavailable
from queries.graph import Graph

from .locks import LOCK_SCHEMA, graph_lock
from .stix import NODE_LABELS, REL_TYPES, GraphRows
from .technique_facts import store_technique_facts

BATCH = 5000
DERIVED = "IN_TACTIC|HAS_TACTIC|HAS_ANALYTIC|PART_OF|USES_LOG_SOURCE"
# The types STIX relationships are written as: a release's leftovers are looked for among those
# only, not among every relationship (an organisation's inventories hold millions of others).
STIX_RELS = "|".join(sorted(set(REL_TYPES.values())))

# Label names come from the fixed allow-list in loader.stix.NODE_LABELS, never from input.
_ALL_LABELS = sorted({label for labels in NODE_LABELS.values() for label in labels})
# Count keys of a Release node: the primary label of each STIX type (Malware/Tool for software).
_COUNT_LABELS = sorted({labels[-1] for labels in NODE_LABELS.values()})

SCHEMA: list[str] = [
    "CREATE CONSTRAINT attack_object_stix_id IF NOT EXISTS "
    "FOR (n:AttackObject) REQUIRE n.stix_id IS UNIQUE",
    "CREATE CONSTRAINT log_source_key IF NOT EXISTS FOR (n:LogSource) REQUIRE n.key IS UNIQUE",
    "CREATE CONSTRAINT release_domain IF NOT EXISTS FOR (n:Release) REQUIRE n.domain IS UNIQUE",
    *[
        f"CREATE INDEX {label.lower()}_attack_id IF NOT EXISTS FOR (n:{label}) ON (n.attack_id)"
        for label in _ALL_LABELS
    ],
    "CREATE INDEX technique_name IF NOT EXISTS FOR (n:Technique) ON (n.name)",
    "CREATE INDEX tactic_shortname IF NOT EXISTS FOR (n:Tactic) ON (n.shortname)",
    "CREATE INDEX log_source_name IF NOT EXISTS FOR (n:LogSource) ON (n.name)",
    "CREATE INDEX group_name_key IF NOT EXISTS FOR (n:Group) ON (n.name_key)",
    "CREATE FULLTEXT INDEX group_text IF NOT EXISTS FOR (n:Group) "
    "ON EACH [n.name, n.aliases_text, n.description]",
    # A load takes its lock first: the lock's constraint, created by the first lock ever,
    # would drop every plan made before it (the first load after a start replanned them all).
    LOCK_SCHEMA,
]

ProgressFn = Callable[[str, int], None]
Mode = Literal["full", "partial"]


def ensure_schema(graph: Graph) -> None:
    for stmt in SCHEMA:
        graph.write(stmt)
    graph.write("CALL db.awaitIndexes(300)")


def _node_stmt(labels: tuple[str, ...]) -> str:
    extra = "".join(f":{label}" for label in labels)
    return (
        "UNWIND $rows AS row "
        "MERGE (n:AttackObject {stix_id: row.stix_id}) "
        "WITH n, row, coalesce(n.loaded_domains, []) AS prev, "
        "[d IN coalesce(n.removed_from, []) WHERE d <> $domain] AS gone "
        "SET n = row "
        f"SET n{extra}, n.load_token = $token, n.in_release = true, "
        "n.loaded_domains = CASE WHEN $domain IN prev THEN prev ELSE prev + $domain END, "
        "n.removed_from = CASE WHEN size(gone) = 0 THEN null ELSE gone END"
    )


_REL_STMT = (
    "UNWIND $rows AS row "
    "MATCH (s:AttackObject {{stix_id: row.src}}) "
    "MATCH (t:AttackObject {{stix_id: row.dst}}) "
    "MERGE (s)-[r:{rtype} {{stix_id: row.props.stix_id}}]->(t) "
    "WITH r, row, coalesce(r.loaded_domains, []) AS prev "
    "SET r = row.props, r.load_token = $token, "
    "r.loaded_domains = CASE WHEN $domain IN prev THEN prev ELSE prev + $domain END"
)

_DERIVED_STMTS: dict[str, str] = {
    "in_tactic": "UNWIND $rows AS row MATCH (s:AttackObject {stix_id: row.src}) "
    "MATCH (t:AttackObject {stix_id: row.dst}) CREATE (s)-[:IN_TACTIC]->(t)",
    "matrix_tactics": "UNWIND $rows AS row MATCH (s:AttackObject {stix_id: row.src}) "
    "MATCH (t:AttackObject {stix_id: row.dst}) CREATE (s)-[:HAS_TACTIC {order: row.order}]->(t)",
    "strategy_analytics": "UNWIND $rows AS row MATCH (s:AttackObject {stix_id: row.src}) "
    "MATCH (t:AttackObject {stix_id: row.dst}) CREATE (s)-[:HAS_ANALYTIC]->(t)",
    "component_sources": "UNWIND $rows AS row MATCH (s:AttackObject {stix_id: row.src}) "
    "MATCH (t:AttackObject {stix_id: row.dst}) CREATE (s)-[:PART_OF]->(t)",
    "analytic_log_sources": "UNWIND $rows AS row MATCH (s:AttackObject {stix_id: row.src}) "
    "MATCH (t:LogSource {key: row.key}) CREATE (s)-[:USES_LOG_SOURCE]->(t)",
}

# A log source lives while its data component lists it (``listed``) or an analytic uses it.
# ``listed`` is recomputed for every data component the bundle holds: reset, then set again.
_LOG_SOURCE_RESET = (
    "UNWIND $ids AS id MATCH (l:LogSource)-[:OF_DATA_COMPONENT]->(:AttackObject {stix_id: id}) "
    "SET l.listed = false"
)
_LOG_SOURCE_STMT = (
    "UNWIND $rows AS row "
    "MERGE (l:LogSource {key: row.key}) "
    "SET l.name = row.name, l.channel = row.channel, l.data_component = row.data_component, "
    "l.listed = coalesce(l.listed, false) OR row.listed "
    "WITH l, row MATCH (dc:AttackObject {stix_id: row.data_component}) "
    "MERGE (l)-[:OF_DATA_COMPONENT]->(dc)"
)

# Something that is not retired ATT&CK content points at (or from) the node: an organisation's
# own node, or an ATT&CK object still in a release (another domain's).
_STILL_NEEDED = (
    "EXISTS { MATCH (n)--(m) WHERE NOT (m:AttackObject OR m:LogSource) "
    "OR (m:AttackObject AND m.in_release) }"
)

_MARK_LEFT = (
    "SET n.loaded_domains = [d IN n.loaded_domains WHERE d <> $domain], "
    "n.removed_from = CASE WHEN $domain IN coalesce(n.removed_from, []) "
    "THEN n.removed_from ELSE coalesce(n.removed_from, []) + $domain END "
    "WITH n SET n.in_release = size(n.loaded_domains) > 0"
)


def _batches(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    return [rows[i : i + BATCH] for i in range(0, len(rows), BATCH)]


def total_steps(rows: GraphRows) -> int:
    """Number of units ``write_rows`` reports progress over (rows written)."""
    return rows.node_count() + rows.rel_count()


def write_rows(
    graph: Graph,
    rows: GraphRows,
    *,
    source: str,
    sha256: str,
    counts: dict[str, Any],
    progress: ProgressFn | None = None,
    mode: Mode = "full",
    removed_ids: Iterable[str] = (),
    release_extra: dict[str, Any] | None = None,
    rollback: bool = False,
) -> dict[str, Any]:
    """Write one bundle's rows and its Release node in a single transaction.

    ``rollback``: run every statement and keep nothing (:func:`warm_writes`).
    ``mode="partial"`` applies a delta (see the module docstring): ``removed_ids`` leave the
    domain, and the Release node's counts are recounted from the graph. ``release_extra`` adds
    properties to the Release node (the TAXII server's ``taxii_added_last``...).
    """
    token = uuid.uuid4().hex
    domain = rows.domain
    tick = progress or (lambda _label, _n: None)
    loaded_at = datetime.now(UTC).isoformat(timespec="seconds")
    release_props: dict[str, Any] = {
        "domain": domain,
        "version": rows.release,
        "spec_version": rows.spec_version,
        "source": source,
        "sha256": sha256,
        "counts": json.dumps(counts, sort_keys=True),
        "nodes": rows.node_count(),
        "relationships": rows.rel_count(),
        "loaded_at": loaded_at,
        **(release_extra or {}),
    }
    node_ids = [r["stix_id"] for group in rows.nodes.values() for r in group]
    component_ids = [
        r["stix_id"] for r in rows.nodes.get(NODE_LABELS["x-mitre-data-component"], [])
    ]
    removed = [{"id": i} for i in sorted(set(removed_ids))]
    rel_ids = [r["props"]["stix_id"] for group in rows.rels.values() for r in group]

    def work(tx: ManagedTransaction) -> dict[str, Any]:
        for labels, group in rows.nodes.items():
            stmt = _node_stmt(labels)
            for batch in _batches(group):
                tx.run(stmt, rows=batch, token=token, domain=domain).consume()
                tick(labels[-1], len(batch))
        # Objects of this domain that the release no longer holds leave it (kept or deleted at
        # the end, depending on whether anything still points at them).
        if mode == "full":
            tx.run(
                "MATCH (n:AttackObject) WHERE $domain IN n.loaded_domains "
                "AND n.load_token <> $token " + _MARK_LEFT,
                domain=domain,
                token=token,
            ).consume()
        else:
            for batch in _batches(removed):
                tx.run(
                    "UNWIND $rows AS row MATCH (n:AttackObject {stix_id: row.id}) "
                    "WHERE $domain IN n.loaded_domains " + _MARK_LEFT,
                    rows=batch,
                    domain=domain,
                ).consume()
        # Derived edges are re-derived for every object the bundle holds; objects out of every
        # release lose theirs (what they pointed at is no longer theirs to say).
        for batch in _batches([{"id": i} for i in node_ids]):
            tx.run(
                "UNWIND $rows AS row MATCH (n:AttackObject {stix_id: row.id})"
                f"-[r:{DERIVED}]->() DELETE r",
                rows=batch,
            ).consume()
        tx.run(
            f"MATCH (n:AttackObject)-[r:{DERIVED}]->() WHERE n.in_release = false DELETE r"
        ).consume()
        for batch in _batches([{"id": i} for i in component_ids]):
            tx.run(_LOG_SOURCE_RESET, ids=[r["id"] for r in batch]).consume()
        tx.run(
            "MATCH (l:LogSource)-[:OF_DATA_COMPONENT]->(dc:AttackObject) "
            "WHERE dc.in_release = false SET l.listed = false"
        ).consume()
        for batch in _batches(rows.log_sources):
            tx.run(_LOG_SOURCE_STMT, rows=batch).consume()
            tick("LogSource", 2 * len(batch))  # node + OF_DATA_COMPONENT
        for rtype, group in rows.rels.items():
            stmt = _REL_STMT.format(rtype=rtype)
            for batch in _batches(group):
                tx.run(stmt, rows=batch, token=token, domain=domain).consume()
                tick(rtype, len(batch))
        # STIX relationships this domain loaded before that the release no longer holds.
        left = (
            "SET r.loaded_domains = [d IN r.loaded_domains WHERE d <> $domain] "
            "WITH r WHERE size(r.loaded_domains) = 0 DELETE r"
        )
        if mode == "full":
            tx.run(
                f"MATCH ()-[r:{STIX_RELS}]->() WHERE r.stix_id IS NOT NULL "
                "AND $domain IN r.loaded_domains "
                "AND r.load_token <> $token " + left,
                domain=domain,
                token=token,
            ).consume()
        else:
            # Removed relationships, and earlier versions of the delta's relationships that
            # pointed elsewhere (ATT&CK re-targets a relationship, keeping its id).
            tx.run(
                f"MATCH ()-[r:{STIX_RELS}]->() WHERE $domain IN r.loaded_domains "
                "AND (r.stix_id IN $removed "
                "OR (r.stix_id IN $delta AND r.load_token <> $token)) " + left,
                removed=[r["id"] for r in removed],
                delta=rel_ids,
                token=token,
                domain=domain,
            ).consume()
        for attr, stmt in _DERIVED_STMTS.items():
            for batch in _batches(getattr(rows, attr)):
                tx.run(stmt, rows=batch).consume()
                tick(attr, len(batch))
        # Log sources no data component lists and no analytic uses, unless something of the
        # organisation's points at them; then retired objects nothing needs any more.
        tx.run(
            "MATCH (l:LogSource) WHERE NOT l.listed AND NOT EXISTS { ()-[:USES_LOG_SOURCE]->(l) } "
            "AND NOT EXISTS { MATCH (l)--(m) WHERE NOT (m:AttackObject OR m:LogSource) } "
            "DETACH DELETE l"
        ).consume()
        tx.run(
            f"MATCH (n:AttackObject) WHERE n.in_release = false AND NOT {_STILL_NEEDED} "
            "DETACH DELETE n"
        ).consume()
        if mode == "partial":
            recount = _graph_counts(tx, domain)
            release_props["counts"] = json.dumps(recount, sort_keys=True)
            release_props["nodes"] = sum(
                v for k, v in recount.items() if k in _COUNT_LABELS or k == "LogSource"
            )
            release_props["relationships"] = sum(v for k, v in recount.items() if k.isupper())
            tx.run(
                "MERGE (r:Release {domain: $props.domain}) SET r += $props", props=release_props
            ).consume()
        else:
            tx.run(
                "MERGE (r:Release {domain: $props.domain}) SET r = $props", props=release_props
            ).consume()
        store_technique_facts(tx)
        bump_graph_version(tx, ATTACK)
        return release_props

    try:
        with graph.driver.session(database=graph.database) as session:
            if rollback:  # every statement run, nothing kept (warm_writes)
                with session.begin_transaction() as tx:
                    result = work(tx)  # type: ignore[arg-type]
                    tx.rollback()
                return result
            result = session.execute_write(work)
    except (ServiceUnavailable, SessionExpired, OSError) as exc:
        raise Unavailable(
            f"Neo4j went away during the load of {domain}; "
            "nothing of it was written: re-run the load once Neo4j is back",
            private=f"{exc.__class__.__name__}: {exc}",
        ) from exc
    finally:
        graph.cache.clear()
    return result


def _graph_counts(tx: ManagedTransaction, domain: str) -> dict[str, int]:
    """The counts a full load of the domain's release would record, counted in the graph."""
    counts: dict[str, int] = {}
    for label in _COUNT_LABELS:
        n = tx.run(
            f"MATCH (n:{label}) WHERE $domain IN n.loaded_domains RETURN count(n) AS n",
            domain=domain,
        ).single()
        counts[label] = n["n"] if n else 0
    for rtype in REL_TYPES.values():
        n = tx.run(
            f"MATCH ()-[r:{rtype}]->() WHERE $domain IN r.loaded_domains RETURN count(r) AS n",
            domain=domain,
        ).single()
        counts[rtype] = n["n"] if n else 0
    for rtype in DERIVED.split("|"):
        n = tx.run(
            f"MATCH (n:AttackObject)-[r:{rtype}]->() WHERE $domain IN n.loaded_domains "
            "RETURN count(r) AS n",
            domain=domain,
        ).single()
        counts[rtype] = n["n"] if n else 0
    # The domain's log sources: listed by one of its data components or used by its analytics.
    n = tx.run(
        "MATCH (l:LogSource)-[:OF_DATA_COMPONENT]->(dc:AttackObject) "
        "WHERE (l.listed AND $domain IN dc.loaded_domains) OR EXISTS { "
        "MATCH (l)<-[:USES_LOG_SOURCE]-(a:AttackObject) WHERE $domain IN a.loaded_domains } "
        "RETURN count(DISTINCT l) AS n",
        domain=domain,
    ).single()
    counts["LogSource"] = counts["OF_DATA_COMPONENT"] = n["n"] if n else 0
    return {k: v for k, v in counts.items() if v}


WARM_UP_DOMAIN = "x-ttpgraph-warm-up"  # never a STIX type: no real id starts with it


def warm_writes(graph: Graph, *, per_label: int = 1001) -> float:
    """Run every statement of a load on made-up objects of a made-up domain, so that the first
    real load after a server start finds its statements planned and the server's write path
    compiled (``ttpgraph neo4j warm``).

    Neo4j keys a cached plan by the statement and the size of each list parameter, rounded up
    to a power of ten (0 and 1 exactly): a load's batches of 1, 2-10, 11-100, 101-1,000 and
    1,001-5,000 rows each need a plan of their own. So a full load of ``per_label`` objects a
    label (1,001: the largest bucket) is written and committed under the load's lock, then
    deleted (a rolled-back transaction leaves the commit path cold: the first load after a
    start took 2.5 times a warm one with rolled-back statements only); then the same load cut
    to 1, 2, 11 and 1,000 rows a list, and a partial one, are run and rolled back. Returns the
    seconds it took."""
    import time

    t0 = time.perf_counter()
    remove_warm_up_objects(graph)  # a warm-up killed between its write and its delete
    rows = GraphRows(domain=WARM_UP_DOMAIN, spec_version="2.1", release="0")
    # Made-up objects shaped as ATT&CK's (measured: the first load after a start came 0.3-0.5 s
    # closer to a warm one once they were): the properties a load writes, of the same types -
    # texts as long as ATT&CK's descriptions and lists of long texts (citations) take the
    # store's other paths -, and relationships between the labels they join in a release, so
    # the technique facts the load stores walk the paths they walk on a real one.
    text = " ".join(["warm-up"] * 150)
    ids: dict[str, list[str]] = {}
    for labels in dict.fromkeys(NODE_LABELS.values()):
        name = labels[-1]
        ids[name] = [f"{WARM_UP_DOMAIN}--{name.lower()}-{i}" for i in range(per_label)]
        rows.nodes[labels] = [
            {"stix_id": sid, "stix_type": WARM_UP_DOMAIN, "attack_id": f"{WARM_UP_DOMAIN}-{i}",
             "name": "warm-up", "name_key": "warm-up", "aliases": ["warm-up", "warm up"],
             "aliases_text": "warm-up warm up", "description": text, "revoked": False,
             "deprecated": False, "created": "2020-02-11T18:28:44.950Z",
             "modified": "2025-10-24T17:48:19.567Z", "version": "1.0",
             "domains": [WARM_UP_DOMAIN], "platforms": ["Windows", "Linux"],
             "tactics": ["warm-up"], "is_subtechnique": False, "contributors": ["warm-up"],
             "url": f"https://example.org/{sid}"}
            for i, sid in enumerate(ids[name])
        ]  # fmt: skip

    def pairs(a: str, b: str) -> list[dict[str, Any]]:
        """Object i of label ``a`` to object i of ``b`` (to i - 1 within one label)."""
        shift = 1 if a == b else 0
        return [{"src": x, "dst": y} for x, y in zip(ids[a][shift:], ids[b], strict=False)]

    ends = {
        "USES": [("Group", "Technique"), ("Malware", "Technique"), ("Tool", "Technique"),
                 ("Campaign", "Technique"), ("Group", "Malware"), ("Campaign", "Tool")],
        "SUBTECHNIQUE_OF": [("Technique", "Technique")],
        "ATTRIBUTED_TO": [("Campaign", "Group")],
        "MITIGATES": [("Mitigation", "Technique")],
        "DETECTS": [("DetectionStrategy", "Technique"), ("DataComponent", "Technique")],
        "REVOKED_BY": [("Group", "Group")],
        "TARGETS": [("Technique", "Asset")],
    }  # fmt: skip
    for rtype in REL_TYPES.values():
        joined = [p for a, b in ends.get(rtype, [("Technique", "Tactic")]) for p in pairs(a, b)]
        rows.rels[rtype] = [
            {**p, "props": {"stix_id": f"relationship--warm-up-{rtype}-{i}",
                            "description": text[:300], "revoked": False, "deprecated": False,
                            "citations": ["Warm-up 2020", "Warm-up 2021"],
                            "citation_urls": [f"https://example.org/{text[:100]}"] * 2,
                            "citation_texts": [text[:200]] * 2,
                            "created": "2017-12-14T16:46:06.044Z",
                            "modified": "2025-04-28T15:31:31.703Z"}}
            for i, p in enumerate(joined)
        ]  # fmt: skip
    rows.in_tactic = pairs("Technique", "Tactic")
    rows.matrix_tactics = [
        {"src": ids["Matrix"][0], "dst": t, "order": i} for i, t in enumerate(ids["Tactic"])
    ]
    rows.strategy_analytics = pairs("DetectionStrategy", "Analytic")
    rows.component_sources = pairs("DataComponent", "DataSource")
    rows.log_sources = [
        {"key": f"{WARM_UP_DOMAIN}--{i}", "name": "warm-up", "channel": None, "data_component": dc,
         "listed": True}
        for i, dc in enumerate(ids["DataComponent"])
    ]  # fmt: skip
    rows.analytic_log_sources = [
        {"src": a, "key": f"{WARM_UP_DOMAIN}--{i}"} for i, a in enumerate(ids["Analytic"])
    ]
    ensure_schema(graph)
    try:
        with graph_lock(graph, f"load:{WARM_UP_DOMAIN}", what="the start-up warm-up"):
            write_rows(graph, rows, source="warm-up", sha256="", counts={})
    finally:
        remove_warm_up_objects(graph)
    for size in (1, 2, 11, 1000):  # the other buckets (1, 10, 100, 1,000)
        write_rows(graph, _cut(rows, size), source="warm-up", sha256="", counts={},
                   rollback=True)  # fmt: skip
    write_rows(graph, rows, source="warm-up", sha256="", counts={}, rollback=True, mode="partial",
               removed_ids=[ids["Group"][0]])  # fmt: skip
    return time.perf_counter() - t0


def _cut(rows: GraphRows, size: int) -> GraphRows:
    """``rows`` with every list cut to its first ``size`` rows (the made-up objects are tied
    index to index, so what the first rows point at is among the first rows)."""
    lists = ("in_tactic", "matrix_tactics", "strategy_analytics", "component_sources",
             "log_sources", "analytic_log_sources")  # fmt: skip
    return dataclasses.replace(
        rows,
        nodes={labels: group[:size] for labels, group in rows.nodes.items()},
        rels={rtype: group[:size] for rtype, group in rows.rels.items()},
        **{name: getattr(rows, name)[:size] for name in lists},
    )


def remove_warm_up_objects(graph: Graph) -> None:
    """Delete what :func:`warm_writes` committed (made-up objects, log sources, Release)."""

    def work(tx: ManagedTransaction) -> None:
        tx.run(
            "MATCH (n:AttackObject) WHERE n.stix_id STARTS WITH $prefix DETACH DELETE n",
            prefix=WARM_UP_DOMAIN + "--",
        ).consume()
        tx.run(
            "MATCH (l:LogSource) WHERE l.key STARTS WITH $prefix DETACH DELETE l",
            prefix=WARM_UP_DOMAIN + "--",
        ).consume()
        tx.run("MATCH (r:Release {domain: $domain}) DELETE r", domain=WARM_UP_DOMAIN).consume()
        bump_graph_version(tx, ATTACK)

    with graph.driver.session(database=graph.database) as session:
        session.execute_write(work)
