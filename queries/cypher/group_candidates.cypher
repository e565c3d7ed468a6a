// name: group_candidates
// doc: Every group with its names and aliases, for resolving what an analyst typed (ids, names, aliases).
// params: include_retired
// example: {"include_retired": false}
MATCH (g:Group)
WHERE $include_retired OR (NOT g.revoked AND NOT g.deprecated)
OPTIONAL MATCH (g)-[:REVOKED_BY]->(r:Group)
RETURN g.attack_id AS attack_id, g.name AS name, g.aliases AS aliases,
       g.revoked AS revoked, g.deprecated AS deprecated, r.attack_id AS replaced_by
ORDER BY attack_id
