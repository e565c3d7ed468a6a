// name: release_group_techniques
// doc: Groups of one domain's loaded release with the techniques each uses directly (current relationships and techniques of that domain).
// params: domain, limit
// example: {"domain": "enterprise-attack", "limit": 100}
MATCH (g:Group)
WHERE $domain IN g.loaded_domains AND g.in_release
OPTIONAL MATCH (g)-[u:USES]->(t:Technique)
WHERE $domain IN u.loaded_domains AND NOT u.revoked AND NOT u.deprecated
  AND NOT t.revoked AND NOT t.deprecated
RETURN g.stix_id AS stix_id, g.attack_id AS attack_id, g.name AS name,
       g.revoked AS revoked, g.deprecated AS deprecated,
       [x IN collect(DISTINCT t.attack_id) WHERE x IS NOT NULL] AS techniques
ORDER BY stix_id
LIMIT $limit
