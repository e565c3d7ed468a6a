// name: tactic_names
// doc: Every current tactic of the loaded releases with its matrix column order and domain, and the history earlier loads recorded (former shortnames and names; the old tactics whose techniques it took in a split or merge).
// params:
// example: {}
MATCH (m:Matrix)-[o:HAS_TACTIC]->(t:Tactic)
WHERE NOT t.revoked AND NOT t.deprecated
RETURN t.attack_id AS tactic_id, t.shortname AS shortname, t.name AS name,
       m.attack_id AS domain, o.order AS order,
       coalesce(t.former_shortnames, []) + coalesce(t.former_names, []) AS former,
       coalesce(t.took_from, []) AS took_from
ORDER BY domain, order
