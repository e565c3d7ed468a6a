"""Floors: for each question the benchmarks time, the simplest hand-written Cypher query that
computes the same core in one round trip. A service is judged by its ratio to its floor, timed
in the same run on the same server (see ``bench_answers``).

The floors take ATT&CK ids (no name resolution), skip what only formats the answer (reasons,
matrix rows, citations' shape), and follow the same paths: direct USES, campaigns attributed to
the group, and (profile) software, its own and its campaigns'. The inventory's rules on a
technique are looked up from the technique (a pattern anchored at the inventory let Neo4j plan
a walk of all its rules for each technique in some runs: 141-152 ms instead of ~20 for the gaps
floor, 31-34 ms instead of ~5 for telemetry; the answers are the same); the coverage the import
stored, in one pass over the inventory's (looked up per technique it was planned, in a run, as
154 ms instead of ~10).
"""

from __future__ import annotations

# 5-actor gap analysis: each technique of the threat model with who uses it, the inventory's
# rules on it, how many groups use it, detection strategies, mitigations and its first tactic.
GAPS = """
MATCH (g:Group) WHERE g.attack_id IN $group_ids
CALL (g) {
  MATCH (g)-[:USES]->(t:Technique) RETURN t
  UNION
  MATCH (g)<-[:ATTRIBUTED_TO]-(:Campaign)-[:USES]->(t:Technique) RETURN t
}
WITH t, collect(g.attack_id) AS actors
WHERE NOT t.revoked AND NOT t.deprecated
RETURN t.attack_id AS technique_id, actors,
       COLLECT { MATCH (t)<-[:COVERS]-(r:DetectionRule)
                 WHERE EXISTS { (r)<-[:HAS_RULE]-(:Inventory {name: $inventory}) }
                 RETURN r.name } AS rules,
       COUNT { (x:Group)-[:USES]->(t) } AS groups_using,
       COUNT { (:DetectionStrategy)-[:DETECTS]->(t) } AS strategies,
       COUNT { (:Mitigation)-[:MITIGATES]->(t) } AS mitigations,
       [(t)-[:IN_TACTIC]->(:Tactic)<-[o:HAS_TACTIC]-(:Matrix) | o.order] AS orders
"""

# Telemetry for 4 actors: the threat model's techniques (each weighted by how many of the actors
# use it) that no rule of the inventory covers, the telemetry that shows them (v18: the log
# sources of the analytics of the detection strategies that detect them; v17: the data
# components that detect them) and the analytics to build, ranked by the actor-weighted gaps each
# reaches (the greedy plan's first step; its later steps only re-count these rows).
TELEMETRY = """
MATCH (g:Group) WHERE g.attack_id IN $group_ids
CALL (g) {
  MATCH (g)-[:USES]->(t:Technique) RETURN t
  UNION
  MATCH (g)<-[:ATTRIBUTED_TO]-(:Campaign)-[:USES]->(t:Technique) RETURN t
}
WITH t, count(DISTINCT g) AS weight
WHERE NOT t.revoked AND NOT t.deprecated
  AND NOT EXISTS { MATCH (t)<-[:COVERS]-(r:DetectionRule)
                   WHERE EXISTS { (r)<-[:HAS_RULE]-(:Inventory {name: $inventory}) } }
CALL (t) {
  MATCH (t)<-[:DETECTS]-(:DetectionStrategy)-[:HAS_ANALYTIC]->(a:Analytic)
        -[:USES_LOG_SOURCE]->(l:LogSource)
  RETURN l.name AS source, a.attack_id AS analytic
  UNION
  MATCH (t)<-[:DETECTS]-(dc:DataComponent)
  RETURN dc.name AS source, null AS analytic
}
WITH source, collect(DISTINCT {technique: t.attack_id, weight: weight}) AS techniques,
     collect(DISTINCT analytic) AS analytics
RETURN source, reduce(s = 0, x IN techniques | s + x.weight) AS gain, techniques, analytics
ORDER BY gain DESC, source
"""

# APT29's profile: every technique with how we know (procedure text and citations), its name,
# parent and tactics, and the mitigations that address it; the group's software and campaigns
# (the answer shows all of these: the mitigations ranked by how many of the techniques each
# addresses).
PROFILE = """
MATCH (g:Group {attack_id: $group_id})
CALL (g) {
  CALL (g) {
    MATCH (g)-[u:USES]->(t:Technique) RETURN t, 'direct' AS kind, null AS via, u
    UNION ALL
    MATCH (g)-[:USES]->(s:Software)-[u:USES]->(t:Technique)
    RETURN t, 'software' AS kind, s.attack_id AS via, u
    UNION ALL
    MATCH (g)<-[:ATTRIBUTED_TO]-(c:Campaign)-[:USES]->(s:Software)-[u:USES]->(t:Technique)
    RETURN t, 'software' AS kind, s.attack_id AS via, u
    UNION ALL
    MATCH (g)<-[:ATTRIBUTED_TO]-(c:Campaign)-[u:USES]->(t:Technique)
    RETURN t, 'campaign' AS kind, c.attack_id AS via, u
  }
  WITH t, collect({kind: kind, via: via, procedure: u.description, citations: u.citations})
       AS evidence
  OPTIONAL MATCH (t)-[:SUBTECHNIQUE_OF]->(p:Technique)
  RETURN collect({technique_id: t.attack_id, name: t.name, parent_id: p.attack_id,
                  tactics: [(t)-[:IN_TACTIC]->(ta:Tactic) | ta.shortname],
                  mitigations: [(m:Mitigation)-[:MITIGATES]->(t) | m.attack_id],
                  evidence: evidence}) AS techniques
}
RETURN techniques,
       [(g)-[:USES]->(s:Software) | s.attack_id] AS software,
       [(g)<-[:ATTRIBUTED_TO]-(c:Campaign) | c.attack_id] AS campaigns
"""

# 3-actor comparison: each group's technique set, with the techniques' names and tactics.
COMPARE = """
MATCH (g:Group) WHERE g.attack_id IN $group_ids
CALL (g) {
  MATCH (g)-[:USES]->(t:Technique) RETURN t
  UNION
  MATCH (g)<-[:ATTRIBUTED_TO]-(:Campaign)-[:USES]->(t:Technique) RETURN t
}
WITH t, collect(g.attack_id) AS groups
RETURN t.attack_id AS technique_id, t.name AS name, groups,
       [(t)-[:IN_TACTIC]->(ta:Tactic) | ta.shortname] AS tactics
"""

# Similarity over all groups: every group's technique set, as flat lists.
SIMILAR = """
MATCH (g:Group) WHERE NOT g.revoked AND NOT g.deprecated
CALL (g) {
  MATCH (g)-[:USES]->(t:Technique) RETURN t
  UNION
  MATCH (g)<-[:ATTRIBUTED_TO]-(:Campaign)-[:USES]->(t:Technique) RETURN t
}
RETURN g.attack_id AS group_id, collect(t.attack_id) AS techniques
"""


# The same cores from what the graph stores at load and import time (technique ranking facts and
# groups' technique ids: loader/technique_facts.py; an inventory's coverage per technique:
# TechniqueCoverage), as a hand-written query against today's graph would read them. The
# floors above compute those facts from the edges, as the graph before them had to.
GAPS_STORED = """
MATCH (g:Group) WHERE g.attack_id IN $group_ids
CALL (g) {
  MATCH (g)-[:USES]->(t:Technique) RETURN t
  UNION
  MATCH (g)<-[:ATTRIBUTED_TO]-(:Campaign)-[:USES]->(t:Technique) RETURN t
}
WITH t, collect(g.attack_id) AS actors
WHERE NOT t.revoked AND NOT t.deprecated
WITH collect({technique_id: t.attack_id, actors: actors, groups_using: t.rank_groups_using,
              strategies: t.rank_detection_strategies, mitigations: t.rank_mitigations,
              orders: t.rank_tactic_orders}) AS techniques
CALL (techniques) {
  OPTIONAL MATCH (:Inventory {name: $inventory})-[:HAS_COVERAGE]->(c:TechniqueCoverage)
  WHERE c.technique_id IN [x IN techniques | x.technique_id]
  RETURN collect({technique_id: c.technique_id, rules: c.rules}) AS coverage
}
RETURN techniques, coverage
"""

SIMILAR_STORED = """
MATCH (g:Group) WHERE NOT g.revoked AND NOT g.deprecated
RETURN g.attack_id AS group_id, g.rank_technique_ids AS techniques
"""
