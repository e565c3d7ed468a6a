// name: coverage_technique_facts
// doc: What ranks a gap, per current technique (all when technique_ids is empty): name, parent, tactics in matrix order with the matrix width, platforms, how many current groups use it (prevalence: directly, through campaigns and, with include_software, through their own or their campaigns' software), ATT&CK detection strategies and analytics (v18) or data components (v17) for it, and how many mitigations address it.
// params: technique_ids, include_software
// example: {"technique_ids": ["T1059.001", "T1566.001", "T0885"], "include_software": false}
CALL () {
  MATCH (g:Group) WHERE NOT g.revoked AND NOT g.deprecated
  RETURN count(g) AS total_groups
}
MATCH (t:Technique)
WHERE (size($technique_ids) = 0 OR t.attack_id IN $technique_ids)
  AND NOT t.revoked AND NOT t.deprecated AND coalesce(t.in_release, true)
OPTIONAL MATCH (t)-[:SUBTECHNIQUE_OF]->(p:Technique)
CALL (t) {
  OPTIONAL MATCH (t)-[:IN_TACTIC]->(ta:Tactic)<-[o:HAS_TACTIC]-(m:Matrix)
  WHERE NOT m.revoked AND NOT m.deprecated AND NOT ta.revoked AND NOT ta.deprecated
  OPTIONAL MATCH (m)-[w:HAS_TACTIC]->(:Tactic)
  WITH ta, o, m, count(w) AS width
  WITH ta, min(o.order) AS ord, max(width) AS width, head(collect(m.attack_id)) AS matrix
  ORDER BY ord
  RETURN [x IN collect(ta.shortname) WHERE x IS NOT NULL] AS tactics,
         [x IN collect(ta.name) WHERE x IS NOT NULL] AS tactic_names,
         [x IN collect(ord) WHERE x IS NOT NULL] AS tactic_orders,
         [x IN collect(width) WHERE x IS NOT NULL] AS matrix_widths,
         [x IN collect(matrix) WHERE x IS NOT NULL] AS tactic_domains
}
CALL (t) {
  CALL (t) {
    MATCH (g:Group)-[u:USES]->(t)
    WHERE NOT g.revoked AND NOT g.deprecated AND NOT u.revoked AND NOT u.deprecated
    RETURN g
    UNION
    MATCH (g:Group)<-[a:ATTRIBUTED_TO]-(c:Campaign)-[u:USES]->(t)
    WHERE NOT g.revoked AND NOT g.deprecated AND NOT a.revoked AND NOT a.deprecated
      AND NOT c.revoked AND NOT c.deprecated AND NOT u.revoked AND NOT u.deprecated
    RETURN g
    UNION
    MATCH (g:Group)-[gs:USES]->(s:Software)-[u:USES]->(t)
    WHERE $include_software AND NOT g.revoked AND NOT g.deprecated AND NOT gs.revoked
      AND NOT gs.deprecated AND NOT s.revoked AND NOT s.deprecated
      AND NOT u.revoked AND NOT u.deprecated
    RETURN g
    UNION
    // software of a campaign attributed to the group: the same path kinds as the
    // actor_techniques block, seen from the technique (tests/test_path_kinds.py checks)
    MATCH (g:Group)<-[a:ATTRIBUTED_TO]-(c:Campaign)-[cs:USES]->(s:Software)-[u:USES]->(t)
    WHERE $include_software AND NOT g.revoked AND NOT g.deprecated AND NOT a.revoked
      AND NOT a.deprecated AND NOT c.revoked AND NOT c.deprecated AND NOT cs.revoked
      AND NOT cs.deprecated AND NOT s.revoked AND NOT s.deprecated
      AND NOT u.revoked AND NOT u.deprecated
    RETURN g
  }
  RETURN count(DISTINCT g) AS groups_using
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
  RETURN count(DISTINCT m) AS mitigations
}
RETURN t.attack_id AS technique_id, t.name AS name,
       coalesce(t.is_subtechnique, false) AS is_subtechnique,
       p.attack_id AS parent_id, p.name AS parent_name, tactics, tactic_names, tactic_orders,
       matrix_widths, tactic_domains, coalesce(t.platforms, []) AS platforms, t.domains AS domains,
       t.url AS url, groups_using, total_groups, detection_strategies, analytics,
       data_components, mitigations
ORDER BY technique_id
