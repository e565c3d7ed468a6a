"""Graph rows -> Neo4j, in one write transaction per bundle.

One transaction means a load either lands whole or not at all: a crash, a killed server or a bad
batch leaves the graph as it was, and a re-run completes the load. Every statement is a MERGE or
a delete-then-create of derived edges, so running the same load twice leaves the graph identical.
The Release node is written last.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from neo4j import ManagedTransaction

from queries.cache import bump_graph_version
from queries.graph import Graph

from .stix import NODE_LABELS, GraphRows

BATCH = 5000
DERIVED = "IN_TACTIC|HAS_TACTIC|HAS_ANALYTIC|PART_OF|USES_LOG_SOURCE"

# Label names come from the fixed allow-list in loader.stix.NODE_LABELS, never from input.
_ALL_LABELS = sorted({label for labels in NODE_LABELS.values() for label in labels})

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
    "CREATE FULLTEXT INDEX group_text IF NOT EXISTS FOR (n:Group) "
    "ON EACH [n.name, n.aliases_text, n.description]",
]

ProgressFn = Callable[[str, int], None]


def ensure_schema(graph: Graph) -> None:
    for stmt in SCHEMA:
        graph.write(stmt)
    graph.write("CALL db.awaitIndexes(300)")


def _node_stmt(labels: tuple[str, ...]) -> str:
    extra = "".join(f":{label}" for label in labels)
    return (
        "UNWIND $rows AS row "
        "MERGE (n:AttackObject {stix_id: row.stix_id}) "
        "WITH n, row, coalesce(n.loaded_domains, []) AS prev "
        "SET n = row "
        f"SET n{extra}, n.load_token = $token, n.in_release = true, "
        "n.loaded_domains = CASE WHEN $domain IN prev THEN prev ELSE prev + $domain END"
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

_LOG_SOURCE_STMT = (
    "UNWIND $rows AS row "
    "MERGE (l:LogSource {key: row.key}) "
    "SET l.name = row.name, l.channel = row.channel, l.data_component = row.data_component "
    "WITH l, row MATCH (dc:AttackObject {stix_id: row.data_component}) "
    "MERGE (l)-[:OF_DATA_COMPONENT]->(dc)"
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
) -> dict[str, Any]:
    """Write one bundle's rows and its Release node in a single transaction."""
    token = uuid.uuid4().hex
    domain = rows.domain
    tick = progress or (lambda _label, _n: None)
    loaded_at = datetime.now(UTC).isoformat(timespec="seconds")
    release_props = {
        "domain": domain,
        "version": rows.release,
        "spec_version": rows.spec_version,
        "source": source,
        "sha256": sha256,
        "counts": json.dumps(counts, sort_keys=True),
        "nodes": rows.node_count(),
        "relationships": rows.rel_count(),
        "loaded_at": loaded_at,
    }
    node_ids = [r["stix_id"] for group in rows.nodes.values() for r in group]

    def work(tx: ManagedTransaction) -> dict[str, Any]:
        for labels, group in rows.nodes.items():
            stmt = _node_stmt(labels)
            for batch in _batches(group):
                tx.run(stmt, rows=batch, token=token, domain=domain).consume()
                tick(labels[-1], len(batch))
        # Objects of this domain that the bundle no longer holds stay (something may still
        # point at them) but are marked as out of the release.
        tx.run(
            "MATCH (n:AttackObject) WHERE $domain IN n.loaded_domains AND n.load_token <> $token "
            "SET n.loaded_domains = [d IN n.loaded_domains WHERE d <> $domain], "
            "n.removed_from = CASE WHEN $domain IN coalesce(n.removed_from, []) "
            "THEN n.removed_from ELSE coalesce(n.removed_from, []) + $domain END "
            "WITH n SET n.in_release = size(n.loaded_domains) > 0",
            domain=domain,
            token=token,
        ).consume()
        for batch in _batches([{"id": i} for i in node_ids]):
            tx.run(
                "UNWIND $rows AS row MATCH (n:AttackObject {stix_id: row.id})"
                f"-[r:{DERIVED}]->() DELETE r",
                rows=batch,
            ).consume()
        for batch in _batches(rows.log_sources):
            tx.run(_LOG_SOURCE_STMT, rows=batch).consume()
            tick("LogSource", 2 * len(batch))  # node + OF_DATA_COMPONENT
        for rtype, group in rows.rels.items():
            stmt = _REL_STMT.format(rtype=rtype)
            for batch in _batches(group):
                tx.run(stmt, rows=batch, token=token, domain=domain).consume()
                tick(rtype, len(batch))
        # STIX relationships this domain loaded before that the bundle no longer holds.
        tx.run(
            "MATCH ()-[r]->() WHERE r.stix_id IS NOT NULL AND $domain IN r.loaded_domains "
            "AND r.load_token <> $token "
            "SET r.loaded_domains = [d IN r.loaded_domains WHERE d <> $domain] "
            "WITH r WHERE size(r.loaded_domains) = 0 DELETE r",
            domain=domain,
            token=token,
        ).consume()
        for attr, stmt in _DERIVED_STMTS.items():
            for batch in _batches(getattr(rows, attr)):
                tx.run(stmt, rows=batch).consume()
                tick(attr, len(batch))
        tx.run(
            "MERGE (r:Release {domain: $props.domain}) SET r = $props", props=release_props
        ).consume()
        bump_graph_version(tx)
        return release_props

    with graph.driver.session(database=graph.database) as session:
        result = session.execute_write(work)
    graph.cache.clear()
    return result
