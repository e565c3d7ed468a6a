// name: release_group_techniques
// doc: Groups of one domain's loaded release with the techniques each uses directly, through campaigns attributed to it and through its software, its own and its campaigns' (current relationships and techniques of that domain).
// params: domain, limit
// example: {"domain": "enterprise-attack", "limit": 100}
MATCH (g:Group)
WHERE $domain IN g.loaded_domains AND g.in_release
CALL (g) {
  OPTIONAL MATCH (g)-[u:USES]->(t:Technique)
  WHERE $domain IN u.loaded_domains AND NOT u.revoked AND NOT u.deprecated
    AND NOT t.revoked AND NOT t.deprecated AND coalesce(t.in_release, true)
  RETURN [x IN collect(DISTINCT t.attack_id) WHERE x IS NOT NULL] AS techniques
}
CALL (g) {
  OPTIONAL MATCH (g)<-[a:ATTRIBUTED_TO]-(c:Campaign)-[u:USES]->(t:Technique)
  WHERE $domain IN a.loaded_domains AND NOT a.revoked AND NOT a.deprecated
    AND NOT c.revoked AND NOT c.deprecated AND coalesce(c.in_release, true)
    AND $domain IN u.loaded_domains AND NOT u.revoked AND NOT u.deprecated
    AND NOT t.revoked AND NOT t.deprecated AND coalesce(t.in_release, true)
  RETURN [x IN collect(DISTINCT t.attack_id) WHERE x IS NOT NULL] AS campaign_techniques
}
CALL (g) {
  // the group's own software and its campaigns' software (the path kinds of actor_techniques)
  CALL (g) {
    MATCH (g)-[gs:USES]->(s:Software)
    WHERE $domain IN gs.loaded_domains AND NOT gs.revoked AND NOT gs.deprecated
    RETURN s
    UNION
    MATCH (g)<-[a:ATTRIBUTED_TO]-(c:Campaign)-[cs:USES]->(s:Software)
    WHERE $domain IN a.loaded_domains AND NOT a.revoked AND NOT a.deprecated
      AND NOT c.revoked AND NOT c.deprecated AND coalesce(c.in_release, true)
      AND $domain IN cs.loaded_domains AND NOT cs.revoked AND NOT cs.deprecated
    RETURN s
  }
  OPTIONAL MATCH (s)-[u:USES]->(t:Technique)
  WHERE NOT s.revoked AND NOT s.deprecated AND coalesce(s.in_release, true)
    AND $domain IN u.loaded_domains AND NOT u.revoked AND NOT u.deprecated
    AND NOT t.revoked AND NOT t.deprecated AND coalesce(t.in_release, true)
  RETURN [x IN collect(DISTINCT t.attack_id) WHERE x IS NOT NULL] AS software_techniques
}
RETURN g.stix_id AS stix_id, g.attack_id AS attack_id, g.name AS name,
       g.revoked AS revoked, g.deprecated AS deprecated,
       techniques, campaign_techniques, software_techniques
ORDER BY stix_id
LIMIT $limit
