// name: intel_cluster_technique_sets
// doc: For the clusters the organisation tracks (all when the list is empty), the techniques each uses by the given path kinds (direct, campaign, software: its own or ATT&CK software it or its campaigns use).
// params: cluster_ids, kinds, domain
// example: {"cluster_ids": [], "kinds": ["direct", "campaign", "software"], "domain": null}
MATCH (g:OrgCluster)
WHERE (size($cluster_ids) = 0 OR g.stix_id IN $cluster_ids) AND NOT g.revoked AND NOT g.deprecated
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
WITH g.stix_id AS cluster_id, t.attack_id AS technique_id, collect(DISTINCT kind) AS kinds,
     min(g.name) AS name, collect(DISTINCT g.source) AS sources
WITH cluster_id, min(name) AS name, collect(sources) AS sources,
     collect({technique_id: technique_id, kinds: kinds}) AS techniques
RETURN cluster_id, name, reduce(acc = [], s IN sources | acc + [x IN s WHERE NOT x IN acc])
       AS sources, techniques
ORDER BY cluster_id
