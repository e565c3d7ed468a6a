// name: software_candidates
// doc: Every software (malware and tools) with its names and aliases, for resolving what an analyst typed.
// params: include_retired
// example: {"include_retired": false}
MATCH (s:Software)
WHERE $include_retired OR (NOT s.revoked AND NOT s.deprecated)
OPTIONAL MATCH (s)-[:REVOKED_BY]->(r:Software)
RETURN s.attack_id AS attack_id, s.name AS name, s.aliases AS aliases,
       s.revoked AS revoked, s.deprecated AS deprecated, r.attack_id AS replaced_by
ORDER BY attack_id
