// name: tactic_names
// doc: Every current tactic of the loaded releases with its matrix column order and domain.
// params:
// example: {}
MATCH (m:Matrix)-[o:HAS_TACTIC]->(t:Tactic)
WHERE NOT t.revoked AND NOT t.deprecated
RETURN t.attack_id AS tactic_id, t.shortname AS shortname, t.name AS name,
       m.attack_id AS domain, o.order AS order
ORDER BY domain, order
