// name: compare_groups
// doc: For the given groups (clusters of the organisation by STIX id too), in one row: the techniques each uses (by the given path kinds: direct, campaign, software — the group's own and its campaigns'; the actor_techniques block), and each technique's name, parent, tactics (in matrix order, as the load stored them on the technique) and platforms, as technique_details gives them.
// params: group_ids, kinds, domain
// example: {"group_ids": ["G0016", "G0007"], "kinds": ["direct", "campaign"], "domain": null}
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
WITH gid, g, t, kind
WITH gid, t, collect(DISTINCT kind) AS kinds, min(g.name) AS name
WITH gid, min(name) AS name, collect({t: t, kinds: kinds}) AS techniques
WITH collect({group_id: gid, name: name, techniques: techniques}) AS groups
CALL (groups) {
  UNWIND groups AS grp
  UNWIND grp.techniques AS x
  WITH DISTINCT x.t AS t
  // as technique_details: tactics in matrix order, as the load stored them
  RETURN collect({
    technique_id: t.attack_id, name: t.name, is_subtechnique: t.is_subtechnique,
    parent_id: t.rank_parent_id, parent_name: t.rank_parent_name, tactics: t.rank_tactics,
    tactic_names: t.rank_tactic_names, tactic_orders: t.rank_tactic_orders, platforms: t.platforms,
    domains: t.domains, url: t.url
  }) AS details
}
RETURN [grp IN groups | {
         group_id: grp.group_id, name: grp.name,
         techniques: [x IN grp.techniques | {technique_id: x.t.attack_id, kinds: x.kinds}]
       }] AS groups, details
