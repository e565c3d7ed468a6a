// name: matrix_skeleton
// doc: The current matrix of a domain as the page draws it: one row per tactic in column order (Matrix-[:HAS_TACTIC {order}]->Tactic), each with its current techniques and sub-techniques (parent id, name, platforms), and the loaded release's version.
// params: domain, limit
// example: {"domain": "enterprise-attack", "limit": 50}
MATCH (m:Matrix {attack_id: $domain})
WHERE NOT m.revoked AND NOT m.deprecated AND coalesce(m.in_release, true)
OPTIONAL MATCH (r:Release {domain: $domain})
MATCH (m)-[o:HAS_TACTIC]->(ta:Tactic)
WHERE NOT ta.revoked AND NOT ta.deprecated
CALL (ta) {
  OPTIONAL MATCH (t:Technique)-[:IN_TACTIC]->(ta)
  WHERE $domain IN t.domains AND NOT t.revoked AND NOT t.deprecated
    AND coalesce(t.in_release, true)
  OPTIONAL MATCH (t)-[:SUBTECHNIQUE_OF]->(p:Technique)
  WITH t, p ORDER BY t.attack_id
  RETURN [x IN collect(CASE WHEN t IS NOT NULL THEN
            {technique_id: t.attack_id, name: t.name, parent_id: p.attack_id,
             platforms: coalesce(t.platforms, [])} END) WHERE x IS NOT NULL] AS techniques
}
RETURN m.name AS matrix, m.url AS matrix_url, r.version AS version, ta.attack_id AS tactic_id,
       ta.shortname AS shortname, ta.name AS name, ta.url AS url, o.order AS order, techniques
ORDER BY order
LIMIT $limit
