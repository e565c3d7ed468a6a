// name: groups_list
// doc: Every current group (not revoked or deprecated), by ATT&CK id, with its aliases and domains.
// params: limit
// example: {"limit": 5}
MATCH (g:Group)
WHERE NOT g.revoked AND NOT g.deprecated
RETURN g.attack_id AS group_id, g.name AS name, g.aliases AS aliases, g.domains AS domains,
       left(g.description, 300) AS description
ORDER BY group_id
LIMIT $limit
