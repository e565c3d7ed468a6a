// name: release_techniques
// doc: Techniques of one domain's loaded release, with tactics, flags and the final replacement of revoked ones.
// params: domain, limit
// example: {"domain": "enterprise-attack", "limit": 100}
MATCH (t:Technique)
WHERE $domain IN t.loaded_domains AND t.in_release
OPTIONAL MATCH path = (t)-[:REVOKED_BY*1..5]->(r:Technique)
WHERE NOT r.revoked
WITH t, r ORDER BY length(path)
WITH t, head(collect(r)) AS r
RETURN t.stix_id AS stix_id, t.attack_id AS attack_id, t.name AS name,
       coalesce(t.tactics, []) AS tactics, coalesce(t.platforms, []) AS platforms,
       coalesce(t.is_subtechnique, false) AS is_subtechnique,
       t.revoked AS revoked, t.deprecated AS deprecated,
       r.attack_id AS replaced_by, r.name AS replaced_by_name
ORDER BY stix_id
LIMIT $limit
