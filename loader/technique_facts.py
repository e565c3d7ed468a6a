"""What ranks a technique in a gap analysis, and what profiles, comparisons and telemetry plans
read of it, the same for every question: stored on the Technique nodes when a release is
loaded (in the load's transaction), so that those questions read properties instead of walking
the release around every technique they show:

- ``rank_parent_id``, ``rank_parent_name``: the technique a sub-technique belongs to;
- ``rank_tactics``, ``rank_tactic_names``, ``rank_tactic_orders``, ``rank_matrix_widths``,
  ``rank_tactic_domains``: its current tactics in matrix order, each with its column, the width
  of its matrix and the matrix's id;
- ``rank_detection_strategies``, ``rank_analytics``, ``rank_data_components``,
  ``rank_mitigations``: how many current ones detect or mitigate it; ``rank_mitigation_ids``:
  the STIX ids of the current mitigations that address it, sorted;
- ``rank_groups_using``, ``rank_groups_using_software``: how many current groups use it
  (directly or through campaigns attributed to them; and also through software, their own and
  their campaigns');
- ``rank_telemetry``: the telemetry that shows it, as one JSON text
  (:func:`store_technique_telemetry`): what a telemetry plan reads for each gap instead of
  walking detection strategies, analytics, log sources and data components.

They depend on ATT&CK objects only (every domain's), so every load recomputes them for every
technique; inventories, intelligence and threat models leave them as they are.

The groups, likewise, carry what a similarity over every group reads
(:func:`store_group_technique_ids`): ``rank_technique_ids`` (direct and campaign) and
``rank_technique_ids_software`` (every path kind), each the ``group_technique_ids`` catalog
query's answer for all domains - the one definition of the path kinds, run in the load's
transaction -, sorted, and ``[]`` for a current group tied to no technique.
"""

from __future__ import annotations

from neo4j import ManagedTransaction

from queries.catalog import Q
from queries.coverage.stored import EMPTY, telemetry_texts
from queries.kinds import path_kinds

TECHNIQUE_FACTS = """
MATCH (m:Matrix)
WITH collect({matrix: m, width: COUNT { (m)-[:HAS_TACTIC]->(:Tactic) }}) AS widths
MATCH (t:Technique)
OPTIONAL MATCH (t)-[:SUBTECHNIQUE_OF]->(p:Technique)
CALL (t, widths) {
  OPTIONAL MATCH (t)-[:IN_TACTIC]->(ta:Tactic)<-[o:HAS_TACTIC]-(m:Matrix)
  WHERE NOT m.revoked AND NOT m.deprecated AND NOT ta.revoked AND NOT ta.deprecated
  WITH ta, o, m, coalesce([w IN widths WHERE w.matrix = m][0].width, 0) AS width
  WITH ta, min(o.order) AS ord, max(width) AS width, head(collect(m.attack_id)) AS matrix
  ORDER BY ord
  RETURN [x IN collect(ta.shortname) WHERE x IS NOT NULL] AS tactics,
         [x IN collect(ta.name) WHERE x IS NOT NULL] AS tactic_names,
         [x IN collect(ord) WHERE x IS NOT NULL] AS tactic_orders,
         [x IN collect(width) WHERE x IS NOT NULL] AS matrix_widths,
         [x IN collect(matrix) WHERE x IS NOT NULL] AS tactic_domains
}
CALL (t) {
  OPTIONAL MATCH (t)<-[r:DETECTS]-(d:DetectionStrategy)
  WHERE NOT r.revoked AND NOT r.deprecated AND NOT d.revoked AND NOT d.deprecated
  OPTIONAL MATCH (d)-[:HAS_ANALYTIC]->(a:Analytic)
  WHERE NOT a.revoked AND NOT a.deprecated
  RETURN count(DISTINCT d) AS detection_strategies, count(DISTINCT a) AS analytics
}
CALL (t) {
  OPTIONAL MATCH (t)<-[r:DETECTS]-(dc:DataComponent)
  WHERE NOT r.revoked AND NOT r.deprecated AND NOT dc.revoked AND NOT dc.deprecated
  RETURN count(DISTINCT dc) AS data_components
}
CALL (t) {
  OPTIONAL MATCH (m:Mitigation)-[r:MITIGATES]->(t)
  WHERE NOT m.revoked AND NOT m.deprecated AND NOT r.revoked AND NOT r.deprecated
  WITH DISTINCT m
  ORDER BY m.stix_id
  RETURN count(m) AS mitigations, collect(m.stix_id) AS mitigation_ids
}
// how many current groups use it: through the same path kinds as gap_analysis's threat model
CALL (t) {
  CALL (t) {
    MATCH (g:Group)-[u:USES]->(t)
    WHERE NOT g.revoked AND NOT g.deprecated AND NOT u.revoked AND NOT u.deprecated
    RETURN g, false AS software
    UNION
    MATCH (g:Group)<-[a:ATTRIBUTED_TO]-(c:Campaign)-[u:USES]->(t)
    WHERE NOT g.revoked AND NOT g.deprecated AND NOT a.revoked AND NOT a.deprecated
      AND NOT c.revoked AND NOT c.deprecated AND NOT u.revoked AND NOT u.deprecated
    RETURN g, false AS software
    UNION
    MATCH (g:Group)-[gs:USES]->(s:Software)-[u:USES]->(t)
    WHERE NOT g.revoked AND NOT g.deprecated AND NOT gs.revoked AND NOT gs.deprecated
      AND NOT s.revoked AND NOT s.deprecated AND NOT u.revoked AND NOT u.deprecated
    RETURN g, true AS software
    UNION
    MATCH (g:Group)<-[a:ATTRIBUTED_TO]-(c:Campaign)-[cs:USES]->(s:Software)-[u:USES]->(t)
    WHERE NOT g.revoked AND NOT g.deprecated AND NOT a.revoked AND NOT a.deprecated
      AND NOT c.revoked AND NOT c.deprecated AND NOT cs.revoked AND NOT cs.deprecated
      AND NOT s.revoked AND NOT s.deprecated AND NOT u.revoked AND NOT u.deprecated
    RETURN g, true AS software
  }
  RETURN count(DISTINCT CASE WHEN NOT software THEN g END) AS groups_using,
         count(DISTINCT g) AS groups_using_software
}
SET t.rank_parent_id = p.attack_id, t.rank_parent_name = p.name,
    t.rank_tactics = tactics, t.rank_tactic_names = tactic_names,
    t.rank_tactic_orders = tactic_orders, t.rank_matrix_widths = matrix_widths,
    t.rank_tactic_domains = tactic_domains,
    t.rank_detection_strategies = detection_strategies, t.rank_analytics = analytics,
    t.rank_data_components = data_components, t.rank_mitigations = mitigations,
    t.rank_mitigation_ids = mitigation_ids,
    t.rank_groups_using = groups_using, t.rank_groups_using_software = groups_using_software
"""


def store_technique_facts(tx: ManagedTransaction) -> None:
    """Recompute every technique's ranking facts and every group's technique ids (see the
    module's doc) in ``tx``."""
    tx.run(TECHNIQUE_FACTS).consume()
    store_technique_telemetry(tx)
    store_group_technique_ids(tx)


def store_technique_telemetry(tx: ManagedTransaction) -> None:
    """Every current technique's telemetry (``telemetry_sources`` for all of them, every
    platform), as one JSON text (``queries.coverage.stored``)."""
    ids = [
        r["id"]
        for r in tx.run(
            "MATCH (t:Technique) WHERE NOT t.revoked AND NOT t.deprecated "
            "AND t.attack_id IS NOT NULL RETURN DISTINCT t.attack_id AS id"
        )
    ]
    row = tx.run(Q.telemetry_sources, technique_ids=ids, platforms=[]).single(strict=True)
    tx.run(
        "MATCH (t:Technique) SET t.rank_telemetry = CASE WHEN t.revoked OR t.deprecated "
        "THEN $empty ELSE coalesce($texts[t.attack_id], $empty) END",
        texts=telemetry_texts(row["v18"], row["v17"]),
        empty=EMPTY,
    ).consume()


# Each current group's stored technique ids, by property: the path kinds they follow.
GROUP_TECHNIQUE_IDS = {
    "rank_technique_ids": path_kinds(False),
    "rank_technique_ids_software": path_kinds(True),
}


def store_group_technique_ids(tx: ManagedTransaction) -> None:
    """Every current group's technique ids by path kinds, as ``group_technique_ids`` answers
    them for all groups and domains, stored on the groups (see the module's doc)."""
    tx.run(
        "MATCH (g:Group) WHERE NOT g.revoked AND NOT g.deprecated "
        "SET g.rank_technique_ids = [], g.rank_technique_ids_software = []"
    ).consume()
    for prop, kinds in GROUP_TECHNIQUE_IDS.items():
        # sorted: the same release gives the same property whatever order the paths came in
        rows = [
            {"group_id": r["group_id"], "techniques": sorted(r["techniques"])}
            for r in tx.run(Q.group_technique_ids, group_ids=[], kinds=kinds, domain=None)
        ]
        tx.run(
            "UNWIND $rows AS row MATCH (g:Group {attack_id: row.group_id}) "
            "SET g[$prop] = row.techniques",
            rows=rows,
            prop=prop,
        ).consume()
