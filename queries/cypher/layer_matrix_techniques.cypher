// name: layer_matrix_techniques
// doc: Every technique and sub-technique of a domain that the loaded release holds (not revoked or deprecated), with its tactics and platforms: the cells of the matrix.
// params: domain, limit
// example: {"domain": "ics-attack", "limit": 5000}
MATCH (t:Technique)
WHERE $domain IN t.domains AND NOT t.revoked AND NOT t.deprecated AND coalesce(t.in_release, true)
CALL (t) {
  OPTIONAL MATCH (t)-[:IN_TACTIC]->(ta:Tactic)
  WHERE NOT ta.revoked AND NOT ta.deprecated AND $domain IN ta.domains
  RETURN [x IN collect(DISTINCT ta.shortname) WHERE x IS NOT NULL] AS tactics
}
RETURN t.stix_id AS stix_id, t.attack_id AS technique_id, t.name AS name, tactics,
       coalesce(t.platforms, []) AS platforms, coalesce(t.is_subtechnique, false) AS is_subtechnique,
       t.created AS created, t.modified AS modified
ORDER BY technique_id
LIMIT $limit
