// name: layer_matrix
// doc: The current matrix of a domain with its tactics in column order: what the SVG and Excel renderers draw as columns.
// params: domain, limit
// example: {"domain": "enterprise-attack", "limit": 10}
MATCH (m:Matrix {attack_id: $domain})
WHERE NOT m.revoked AND NOT m.deprecated AND coalesce(m.in_release, true)
MATCH (m)-[o:HAS_TACTIC]->(ta:Tactic)
WHERE NOT ta.revoked AND NOT ta.deprecated
WITH m, ta, o ORDER BY o.order
RETURN m.stix_id AS stix_id, m.name AS name, m.created AS created, m.modified AS modified,
       collect({stix_id: ta.stix_id, attack_id: ta.attack_id, name: ta.name,
                shortname: ta.shortname, created: ta.created, modified: ta.modified}) AS tactics
LIMIT $limit
