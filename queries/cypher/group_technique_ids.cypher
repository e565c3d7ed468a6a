// name: group_technique_ids
// doc: For the given groups (or all ATT&CK groups when empty), the ids of the techniques each uses by the given path kinds (direct, campaign, software: the group's own and its campaigns'), as flat lists (group_technique_sets gives the path kinds too). A cluster of the organisation is included when its STIX id (intrusion-set--...) is given (see docs/intel.md).
// params: group_ids, kinds, domain
// example: {"group_ids": ["G0016"], "kinds": ["direct", "campaign", "software"], "domain": null}
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
// paths: begin actor_techniques (one definition of the path kinds: queries/catalog.py checks
// that every query carrying this block carries it word for word)
CALL (g) {
  // direct: the actor USES the technique
  MATCH (g)-[u:USES]->(t:Technique)
  WHERE 'direct' IN $kinds AND NOT u.revoked AND NOT u.deprecated
  RETURN t, 'direct' AS kind, null AS via_id, null AS via_name, u
  UNION ALL
  // campaign: a campaign attributed to the actor uses it
  MATCH (g)<-[a:ATTRIBUTED_TO]-(c)-[u:USES]->(t:Technique)
  WHERE 'campaign' IN $kinds
    AND (c:Campaign OR ('OrgCluster' IN labels(g) AND 'OrgCampaign' IN labels(c)))
    AND NOT a.revoked AND NOT a.deprecated AND NOT c.revoked AND NOT c.deprecated
    AND NOT u.revoked AND NOT u.deprecated
  RETURN t, 'campaign' AS kind, coalesce(c.attack_id, c.stix_id) AS via_id, c.name AS via_name, u
  UNION ALL
  // software: software the actor uses, or that a campaign attributed to it uses, uses it
  CALL (g) {
    MATCH (g)-[gs:USES]->(s)
    WHERE 'software' IN $kinds
      AND (s:Software OR ('OrgCluster' IN labels(g) AND 'OrgSoftware' IN labels(s)))
      AND NOT gs.revoked AND NOT gs.deprecated
    RETURN s
    UNION
    MATCH (g)<-[a:ATTRIBUTED_TO]-(c)-[cs:USES]->(s)
    WHERE 'software' IN $kinds
      AND (c:Campaign OR ('OrgCluster' IN labels(g) AND 'OrgCampaign' IN labels(c)))
      AND (s:Software OR ('OrgCluster' IN labels(g) AND 'OrgSoftware' IN labels(s)))
      AND NOT a.revoked AND NOT a.deprecated AND NOT c.revoked AND NOT c.deprecated
      AND NOT cs.revoked AND NOT cs.deprecated
    RETURN s
  }
  MATCH (s)-[u:USES]->(t:Technique)
  WHERE NOT s.revoked AND NOT s.deprecated AND NOT u.revoked AND NOT u.deprecated
  RETURN t, 'software' AS kind, coalesce(s.attack_id, s.stix_id) AS via_id, s.name AS via_name, u
}
WITH *
WHERE NOT t.revoked AND NOT t.deprecated AND coalesce(t.in_release, true)
  AND ($domain IS NULL OR $domain IN t.domains)
// paths: end
RETURN gid AS group_id, min(g.name) AS name, collect(DISTINCT t.attack_id) AS techniques
ORDER BY group_id
