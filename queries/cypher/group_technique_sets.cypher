// name: group_technique_sets
// doc: For the given groups (or all ATT&CK groups when empty), the set of techniques each uses directly, via campaigns and optionally via software. A cluster of the organisation is included when its STIX id (intrusion-set--...) is given (see docs/intel.md).
// params: group_ids, include_software, domain
// example: {"group_ids": ["G0016"], "include_software": true, "domain": null}
CALL () {
  MATCH (g:Group)
  WHERE (size($group_ids) = 0 OR g.attack_id IN $group_ids) AND NOT g.revoked AND NOT g.deprecated
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
  UNION ALL
  MATCH (g)<-[a:ATTRIBUTED_TO]-(c:Campaign)-[u:USES]->(t:Technique)
  WHERE NOT a.revoked AND NOT a.deprecated AND NOT c.revoked AND NOT c.deprecated
    AND NOT u.revoked AND NOT u.deprecated
  RETURN t, 'campaign' AS kind
  UNION ALL
  // a cluster's own campaigns
  MATCH (g)<-[a:ATTRIBUTED_TO]-(c)-[u:USES]->(t:Technique)
  WHERE 'OrgCluster' IN labels(g) AND 'OrgCampaign' IN labels(c) AND NOT a.revoked
    AND NOT a.deprecated AND NOT c.revoked AND NOT c.deprecated AND NOT u.revoked
    AND NOT u.deprecated
  RETURN t, 'campaign' AS kind
  UNION ALL
  CALL (g) {
    MATCH (g)-[gs:USES]->(s:Software)
    WHERE $include_software AND NOT gs.revoked AND NOT gs.deprecated
    RETURN s
    UNION
    MATCH (g)<-[a:ATTRIBUTED_TO]-(c:Campaign)-[cs:USES]->(s:Software)
    WHERE $include_software AND NOT a.revoked AND NOT a.deprecated AND NOT c.revoked
      AND NOT c.deprecated AND NOT cs.revoked AND NOT cs.deprecated
    RETURN s
    UNION
    // a cluster's own software, and its campaigns' software
    MATCH (g)-[gs:USES]->(s)
    WHERE $include_software AND 'OrgCluster' IN labels(g) AND 'OrgSoftware' IN labels(s)
      AND NOT gs.revoked AND NOT gs.deprecated
    RETURN s
    UNION
    MATCH (g)<-[a:ATTRIBUTED_TO]-(c)-[cs:USES]->(s)
    WHERE $include_software AND 'OrgCluster' IN labels(g) AND 'OrgCampaign' IN labels(c)
      AND (s:Software OR 'OrgSoftware' IN labels(s)) AND NOT a.revoked AND NOT a.deprecated
      AND NOT c.revoked AND NOT c.deprecated AND NOT cs.revoked AND NOT cs.deprecated
    RETURN s
  }
  MATCH (s)-[u:USES]->(t:Technique)
  WHERE NOT s.revoked AND NOT s.deprecated AND NOT u.revoked AND NOT u.deprecated
  RETURN t, 'software' AS kind
}
WITH gid, g, t, kind
WHERE NOT t.revoked AND NOT t.deprecated AND ($domain IS NULL OR $domain IN t.domains)
WITH gid, t.attack_id AS technique_id, collect(DISTINCT kind) AS kinds, min(g.name) AS name
RETURN gid AS group_id, min(name) AS name,
       collect({technique_id: technique_id, kinds: kinds}) AS techniques
ORDER BY group_id
