// name: intel_cluster_technique_sets
// doc: For the clusters the organisation tracks (all when the list is empty), the techniques each uses directly, through its campaigns and optionally through its software (its own or ATT&CK software it uses).
// params: cluster_ids, include_software, domain
// example: {"cluster_ids": [], "include_software": true, "domain": null}
MATCH (c:OrgCluster)
WHERE (size($cluster_ids) = 0 OR c.stix_id IN $cluster_ids) AND NOT c.revoked AND NOT c.deprecated
CALL (c) {
  MATCH (c)-[u:USES]->(t:Technique)
  WHERE NOT u.revoked AND NOT u.deprecated
  RETURN t, 'direct' AS kind
  UNION ALL
  MATCH (c)<-[a:ATTRIBUTED_TO]-(k:OrgCampaign)-[u:USES]->(t:Technique)
  WHERE NOT a.revoked AND NOT a.deprecated AND NOT k.revoked AND NOT k.deprecated
    AND NOT u.revoked AND NOT u.deprecated
  RETURN t, 'campaign' AS kind
  UNION ALL
  CALL (c) {
    MATCH (c)-[cs:USES]->(s)
    WHERE $include_software AND (s:OrgSoftware OR s:Software)
      AND NOT cs.revoked AND NOT cs.deprecated
    RETURN s
    UNION
    MATCH (c)<-[a:ATTRIBUTED_TO]-(k:OrgCampaign)-[ks:USES]->(s)
    WHERE $include_software AND (s:OrgSoftware OR s:Software) AND NOT a.revoked
      AND NOT a.deprecated AND NOT k.revoked AND NOT k.deprecated AND NOT ks.revoked
      AND NOT ks.deprecated
    RETURN s
  }
  MATCH (s)-[u:USES]->(t:Technique)
  WHERE NOT s.revoked AND NOT s.deprecated AND NOT u.revoked AND NOT u.deprecated
  RETURN t, 'software' AS kind
}
WITH c, t, kind
WHERE NOT t.revoked AND NOT t.deprecated AND ($domain IS NULL OR $domain IN t.domains)
WITH c.stix_id AS cluster_id, t.attack_id AS technique_id, collect(DISTINCT kind) AS kinds,
     min(c.name) AS name, collect(DISTINCT c.source) AS sources
WITH cluster_id, min(name) AS name, collect(sources) AS sources,
     collect({technique_id: technique_id, kinds: kinds}) AS techniques
RETURN cluster_id, name, reduce(acc = [], s IN sources | acc + [x IN s WHERE NOT x IN acc])
       AS sources, techniques
ORDER BY cluster_id
