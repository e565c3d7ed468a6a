// name: layer_techniques
// doc: What a Navigator layer needs to know about the given technique ids (every technique when the list is empty): name, domain, tactics in matrix order (one layer entry each), platforms, parent, and whether the loaded release still holds it (revoked ones with their replacement).
// params: technique_ids, limit
// example: {"technique_ids": ["T1059.001", "T1055.011", "T1086", "T9999"], "limit": 100}
MATCH (t:Technique)
WHERE size($technique_ids) = 0 OR t.attack_id IN $technique_ids
OPTIONAL MATCH (t)-[:SUBTECHNIQUE_OF]->(p:Technique)
CALL (t) {
  OPTIONAL MATCH (t)-[:IN_TACTIC]->(ta:Tactic)<-[o:HAS_TACTIC]-(m:Matrix)
  WHERE NOT m.revoked AND NOT m.deprecated AND NOT ta.revoked AND NOT ta.deprecated
    AND any(d IN m.domains WHERE d IN t.domains)
  WITH ta, min(o.order) AS ord
  ORDER BY ord
  RETURN [x IN collect(ta.shortname) WHERE x IS NOT NULL] AS tactics
}
CALL (t) {
  OPTIONAL MATCH path = (t)-[:REVOKED_BY*1..3]->(r:Technique)
  WHERE NOT r.revoked AND NOT r.deprecated
  WITH r ORDER BY length(path)
  RETURN head(collect(r.attack_id)) AS replaced_by
}
RETURN t.attack_id AS technique_id, t.name AS name, t.domains AS domains,
       coalesce(t.platforms, []) AS platforms, coalesce(t.is_subtechnique, false) AS is_subtechnique,
       p.attack_id AS parent_id, tactics, t.revoked AS revoked, t.deprecated AS deprecated,
       coalesce(t.in_release, true) AS in_release, replaced_by, t.url AS url
ORDER BY technique_id
LIMIT $limit
