// name: group_software
// doc: Software a group uses, directly or through campaigns attributed to it.
// params: group_id, limit
// example: {"group_id": "G0016", "limit": 10}
MATCH (g:Group {attack_id: $group_id})
CALL (g) {
  MATCH (g)-[u:USES]->(s:Software)
  WHERE NOT u.revoked AND NOT u.deprecated
  RETURN s, 'direct' AS kind, null AS via_id, u.description AS procedure
  UNION ALL
  MATCH (g)<-[:ATTRIBUTED_TO]-(c:Campaign)-[u:USES]->(s:Software)
  WHERE NOT c.revoked AND NOT c.deprecated AND NOT u.revoked AND NOT u.deprecated
  RETURN s, 'campaign' AS kind, c.attack_id AS via_id, u.description AS procedure
}
WITH s, kind, via_id, procedure WHERE NOT s.revoked AND NOT s.deprecated
RETURN s.attack_id AS software_id, s.name AS name,
       CASE WHEN s:Malware THEN 'malware' ELSE 'tool' END AS type,
       collect(DISTINCT kind) AS kinds, [v IN collect(DISTINCT via_id) WHERE v IS NOT NULL] AS campaigns,
       head(collect(procedure)) AS procedure
ORDER BY software_id
LIMIT $limit
