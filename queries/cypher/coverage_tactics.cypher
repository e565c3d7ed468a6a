// name: coverage_tactics
// doc: The tactics of the current matrices of the given domains (all when empty), in matrix column order.
// params: domains
// example: {"domains": ["enterprise-attack"]}
MATCH (m:Matrix)-[o:HAS_TACTIC]->(ta:Tactic)
WHERE NOT m.revoked AND NOT m.deprecated AND NOT ta.revoked AND NOT ta.deprecated
  AND (size($domains) = 0 OR m.attack_id IN $domains)
RETURN m.attack_id AS domain, ta.attack_id AS tactic_id, ta.name AS name,
       ta.shortname AS shortname, o.order AS order
ORDER BY domain, order
