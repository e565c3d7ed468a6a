// name: coverage_threat_model
// doc: The techniques a set of groups (and clusters of the organisation, by STIX id) uses (directly, through campaigns attributed to them, optionally through their software), with which group uses each and how; filtered by domain and platforms (lower-case).
// params: group_ids, include_software, domain, platforms
// example: {"group_ids": ["G0016", "G0007"], "include_software": false, "domain": "enterprise-attack", "platforms": []}
CALL () {
  MATCH (g:Group)
  WHERE g.attack_id IN $group_ids AND NOT g.revoked AND NOT g.deprecated
  RETURN g, g.attack_id AS gid
  UNION
  // clusters of the organisation, by STIX id (a dynamic label: no warning before an import)
  UNWIND $group_ids AS cid
  WITH cid WHERE cid STARTS WITH 'intrusion-set--' OR cid STARTS WITH 'threat-actor--'
  CALL (cid) {
    MATCH (g:$('OrgCluster') {stix_id: cid})
    WHERE NOT g.revoked AND NOT g.deprecated
    RETURN g
  }
  RETURN g, cid AS gid
}
CALL (g) {
  MATCH (g)-[u:USES]->(t:Technique)
  WHERE NOT u.revoked AND NOT u.deprecated
  RETURN t, 'direct' AS kind
  UNION
  MATCH (g)<-[a:ATTRIBUTED_TO]-(c:Campaign)-[u:USES]->(t:Technique)
  WHERE NOT a.revoked AND NOT a.deprecated AND NOT c.revoked AND NOT c.deprecated
    AND NOT u.revoked AND NOT u.deprecated
  RETURN t, 'campaign' AS kind
  UNION
  MATCH (g)-[gs:USES]->(s:Software)-[u:USES]->(t:Technique)
  WHERE $include_software AND NOT gs.revoked AND NOT gs.deprecated AND NOT s.revoked
    AND NOT s.deprecated AND NOT u.revoked AND NOT u.deprecated
  RETURN t, 'software' AS kind
  UNION
  // a cluster's own campaigns and software
  MATCH (g)<-[a:ATTRIBUTED_TO]-(c)-[u:USES]->(t:Technique)
  WHERE 'OrgCluster' IN labels(g) AND 'OrgCampaign' IN labels(c) AND NOT a.revoked
    AND NOT a.deprecated AND NOT c.revoked AND NOT c.deprecated AND NOT u.revoked
    AND NOT u.deprecated
  RETURN t, 'campaign' AS kind
  UNION
  MATCH (g)-[gs:USES]->(s)-[u:USES]->(t:Technique)
  WHERE $include_software AND 'OrgCluster' IN labels(g) AND 'OrgSoftware' IN labels(s)
    AND NOT gs.revoked AND NOT gs.deprecated AND NOT s.revoked AND NOT s.deprecated
    AND NOT u.revoked AND NOT u.deprecated
  RETURN t, 'software' AS kind
}
WITH gid, g, t, kind
WHERE NOT t.revoked AND NOT t.deprecated AND coalesce(t.in_release, true)
  AND ($domain IS NULL OR $domain IN t.domains)
  AND (size($platforms) = 0 OR any(p IN coalesce(t.platforms, []) WHERE toLower(p) IN $platforms))
WITH t, gid AS group_id, collect(DISTINCT kind) AS kinds
RETURN t.attack_id AS technique_id, collect({group_id: group_id, kinds: kinds}) AS actors
ORDER BY technique_id
