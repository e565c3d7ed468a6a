// name: group_technique_evidence
// doc: Every technique a group (or a cluster of the organisation, by STIX id) is tied to and how we know: direct USES, via its software (its own or its campaigns'), via campaigns attributed to it.
// params: group_id, kinds, domain, platforms
// example: {"group_id": "G0016", "kinds": ["direct", "software", "campaign"], "domain": "enterprise-attack", "platforms": []}
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
  MATCH (g)-[u:USES]->(t:Technique)
  WHERE NOT u.revoked AND NOT u.deprecated
  RETURN t, 'direct' AS kind, null AS via_id, null AS via_name, u
  UNION ALL
  CALL (g) {
    MATCH (g)-[gs:USES]->(s:Software)
    WHERE NOT gs.revoked AND NOT gs.deprecated
    RETURN s
    UNION
    MATCH (g)<-[a:ATTRIBUTED_TO]-(c:Campaign)-[cs:USES]->(s:Software)
    WHERE NOT a.revoked AND NOT a.deprecated AND NOT c.revoked AND NOT c.deprecated
      AND NOT cs.revoked AND NOT cs.deprecated
    RETURN s
    UNION
    // a cluster's own software, and its campaigns' software
    MATCH (g)-[gs:USES]->(s)
    WHERE 'OrgCluster' IN labels(g) AND 'OrgSoftware' IN labels(s)
      AND NOT gs.revoked AND NOT gs.deprecated
    RETURN s
    UNION
    MATCH (g)<-[a:ATTRIBUTED_TO]-(c)-[cs:USES]->(s)
    WHERE 'OrgCluster' IN labels(g) AND 'OrgCampaign' IN labels(c)
      AND (s:Software OR 'OrgSoftware' IN labels(s)) AND NOT a.revoked AND NOT a.deprecated
      AND NOT c.revoked AND NOT c.deprecated AND NOT cs.revoked AND NOT cs.deprecated
    RETURN s
  }
  MATCH (s)-[u:USES]->(t:Technique)
  WHERE NOT s.revoked AND NOT s.deprecated AND NOT u.revoked AND NOT u.deprecated
  RETURN t, 'software' AS kind, coalesce(s.attack_id, s.stix_id) AS via_id, s.name AS via_name, u
  UNION ALL
  MATCH (g)<-[a:ATTRIBUTED_TO]-(c:Campaign)-[u:USES]->(t:Technique)
  WHERE NOT a.revoked AND NOT a.deprecated AND NOT c.revoked AND NOT c.deprecated
    AND NOT u.revoked AND NOT u.deprecated
  RETURN t, 'campaign' AS kind, c.attack_id AS via_id, c.name AS via_name, u
  UNION ALL
  // a cluster's own campaigns
  MATCH (g)<-[a:ATTRIBUTED_TO]-(c)-[u:USES]->(t:Technique)
  WHERE 'OrgCluster' IN labels(g) AND 'OrgCampaign' IN labels(c) AND NOT a.revoked
    AND NOT a.deprecated AND NOT c.revoked AND NOT c.deprecated AND NOT u.revoked
    AND NOT u.deprecated
  RETURN t, 'campaign' AS kind, c.stix_id AS via_id, c.name AS via_name, u
}
WITH t, kind, via_id, via_name, u
WHERE NOT t.revoked AND NOT t.deprecated AND kind IN $kinds
  AND ($domain IS NULL OR $domain IN t.domains)
  AND (size($platforms) = 0 OR any(p IN t.platforms WHERE p IN $platforms))
RETURN t.attack_id AS technique_id, kind, via_id, via_name,
       u.description AS procedure, u.citations AS citations, u.citation_urls AS citation_urls
ORDER BY technique_id, kind, via_id
