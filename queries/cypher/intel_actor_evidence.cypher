// name: intel_actor_evidence
// doc: How ATT&CK groups and the clusters of the organisation are tied to the given techniques: direct USES, through their software (their own or their campaigns), through their campaigns; with ATT&CK procedure text or the import it came from.
// params: group_ids, cluster_ids, technique_ids, domain
// example: {"group_ids": ["G0016", "G0046"], "cluster_ids": [], "technique_ids": ["T1059.001", "T1566.001"], "domain": "enterprise-attack"}
UNWIND $technique_ids AS tid
MATCH (t:Technique {attack_id: tid})
WHERE NOT t.revoked AND NOT t.deprecated AND ($domain IS NULL OR $domain IN t.domains)
CALL (t) {
  // ATT&CK groups: direct, through their software and their campaigns software, through campaigns
  MATCH (g:Group)-[u:USES]->(t)
  WHERE g.attack_id IN $group_ids AND NOT u.revoked AND NOT u.deprecated
  RETURN g.attack_id AS actor, 'direct' AS kind, null AS via_id, null AS via_name, u
  UNION ALL
  MATCH (g:Group)-[gs:USES]->(s:Software)-[u:USES]->(t)
  WHERE g.attack_id IN $group_ids AND NOT gs.revoked AND NOT gs.deprecated
    AND NOT s.revoked AND NOT s.deprecated AND NOT u.revoked AND NOT u.deprecated
  RETURN g.attack_id AS actor, 'software' AS kind, s.attack_id AS via_id, s.name AS via_name, u
  UNION ALL
  MATCH (g:Group)<-[a:ATTRIBUTED_TO]-(c:Campaign)-[cs:USES]->(s:Software)-[u:USES]->(t)
  WHERE g.attack_id IN $group_ids AND NOT a.revoked AND NOT a.deprecated AND NOT c.revoked
    AND NOT c.deprecated AND NOT cs.revoked AND NOT cs.deprecated AND NOT s.revoked
    AND NOT s.deprecated AND NOT u.revoked AND NOT u.deprecated
  RETURN g.attack_id AS actor, 'software' AS kind, s.attack_id AS via_id, s.name AS via_name, u
  UNION ALL
  MATCH (g:Group)<-[a:ATTRIBUTED_TO]-(c:Campaign)-[u:USES]->(t)
  WHERE g.attack_id IN $group_ids AND NOT a.revoked AND NOT a.deprecated AND NOT c.revoked
    AND NOT c.deprecated AND NOT u.revoked AND NOT u.deprecated
  RETURN g.attack_id AS actor, 'campaign' AS kind, c.attack_id AS via_id, c.name AS via_name, u
  UNION ALL
  // clusters of the organisation: the same three ways, through its own or ATT&CK software
  MATCH (k:OrgCluster)-[u:USES]->(t)
  WHERE k.stix_id IN $cluster_ids AND NOT u.revoked AND NOT u.deprecated
  RETURN k.stix_id AS actor, 'direct' AS kind, null AS via_id, null AS via_name, u
  UNION ALL
  MATCH (k:OrgCluster)-[ks:USES]->(s)-[u:USES]->(t)
  WHERE k.stix_id IN $cluster_ids AND (s:OrgSoftware OR s:Software) AND NOT ks.revoked
    AND NOT ks.deprecated AND NOT s.revoked AND NOT s.deprecated AND NOT u.revoked
    AND NOT u.deprecated
  RETURN k.stix_id AS actor, 'software' AS kind, coalesce(s.attack_id, s.stix_id) AS via_id,
         s.name AS via_name, u
  UNION ALL
  MATCH (k:OrgCluster)<-[a:ATTRIBUTED_TO]-(c:OrgCampaign)-[cs:USES]->(s)-[u:USES]->(t)
  WHERE k.stix_id IN $cluster_ids AND (s:OrgSoftware OR s:Software) AND NOT a.revoked
    AND NOT a.deprecated AND NOT c.revoked AND NOT c.deprecated AND NOT cs.revoked
    AND NOT cs.deprecated AND NOT s.revoked AND NOT s.deprecated AND NOT u.revoked
    AND NOT u.deprecated
  RETURN k.stix_id AS actor, 'software' AS kind, coalesce(s.attack_id, s.stix_id) AS via_id,
         s.name AS via_name, u
  UNION ALL
  MATCH (k:OrgCluster)<-[a:ATTRIBUTED_TO]-(c:OrgCampaign)-[u:USES]->(t)
  WHERE k.stix_id IN $cluster_ids AND NOT a.revoked AND NOT a.deprecated AND NOT c.revoked
    AND NOT c.deprecated AND NOT u.revoked AND NOT u.deprecated
  RETURN k.stix_id AS actor, 'campaign' AS kind, c.stix_id AS via_id, c.name AS via_name, u
}
RETURN actor, t.attack_id AS technique_id, kind, via_id, via_name, u.description AS procedure,
       u.citations AS citations, u.citation_urls AS citation_urls, u.source AS source
ORDER BY actor, technique_id, kind, via_id
