// name: group_software
// doc: Software a group (or a cluster of the organisation, by STIX id) uses, directly or through campaigns attributed to it.
// params: group_id, limit
// example: {"group_id": "G0016", "limit": 10}
CALL () {
  MATCH (g:Group {attack_id: $group_id})
  RETURN g
  UNION
  // a cluster of the organisation, by STIX id (a dynamic label: no warning before an import)
  WITH $group_id AS cid
  WHERE cid STARTS WITH 'intrusion-set--' OR cid STARTS WITH 'threat-actor--'
  CALL (cid) {
    MATCH (g:$('OrgCluster') {stix_id: cid})
    RETURN g
  }
  RETURN g
}
CALL (g) {
  MATCH (g)-[u:USES]->(s:Software)
  WHERE NOT u.revoked AND NOT u.deprecated
  RETURN s, 'direct' AS kind, null AS via_id, u.description AS procedure
  UNION ALL
  MATCH (g)<-[:ATTRIBUTED_TO]-(c:Campaign)-[u:USES]->(s:Software)
  WHERE NOT c.revoked AND NOT c.deprecated AND NOT u.revoked AND NOT u.deprecated
  RETURN s, 'campaign' AS kind, c.attack_id AS via_id, u.description AS procedure
  UNION ALL
  // a cluster's own software, and its campaigns' software
  MATCH (g)-[u:USES]->(s)
  WHERE 'OrgCluster' IN labels(g) AND 'OrgSoftware' IN labels(s)
    AND NOT u.revoked AND NOT u.deprecated
  RETURN s, 'direct' AS kind, null AS via_id, u.description AS procedure
  UNION ALL
  MATCH (g)<-[:ATTRIBUTED_TO]-(c)-[u:USES]->(s)
  WHERE 'OrgCluster' IN labels(g) AND 'OrgCampaign' IN labels(c)
    AND (s:Software OR 'OrgSoftware' IN labels(s)) AND NOT c.revoked AND NOT c.deprecated
    AND NOT u.revoked AND NOT u.deprecated
  RETURN s, 'campaign' AS kind, c.stix_id AS via_id, u.description AS procedure
}
WITH s, kind, via_id, procedure WHERE NOT s.revoked AND NOT s.deprecated
RETURN coalesce(s.attack_id, s.stix_id) AS software_id, s.name AS name,
       CASE WHEN s:Malware OR properties(s)['software_type'] = 'malware' THEN 'malware'
            ELSE 'tool' END AS type,
       collect(DISTINCT kind) AS kinds, [v IN collect(DISTINCT via_id) WHERE v IS NOT NULL] AS campaigns,
       head(collect(procedure)) AS procedure
ORDER BY software_id
LIMIT $limit
