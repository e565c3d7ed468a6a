// name: technique_candidates
// doc: Every technique and sub-technique with its name (and parent name), for resolving what an analyst typed.
// params: include_retired
// example: {"include_retired": true}
MATCH (t:Technique)
WHERE $include_retired OR (NOT t.revoked AND NOT t.deprecated)
OPTIONAL MATCH (t)-[:SUBTECHNIQUE_OF]->(p:Technique)
OPTIONAL MATCH (t)-[:REVOKED_BY]->(r:Technique)
RETURN t.attack_id AS attack_id, t.name AS name, p.name AS parent_name,
       t.revoked AS revoked, t.deprecated AS deprecated, r.attack_id AS replaced_by
ORDER BY attack_id
