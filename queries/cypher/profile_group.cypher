// name: profile_group
// doc: Everything a group's profile shows, in one row: the group's own fields; every technique it is tied to — how we know (direct USES, via its software (its own or its campaigns'), via campaigns attributed to it, with ATT&CK's procedure text and citations), its parent, tactics in matrix order, platforms and the STIX ids of the mitigations that address it (as the load stored them); its software and campaigns (first/last seen); those mitigations (id, name, URL); and the current tactics (to check a tactic filter). For an ATT&CK group, or a cluster of the organisation by STIX id.
// params: group_id, kinds, domain, platforms, limit
// example: {"group_id": "G0016", "kinds": ["direct", "software", "campaign"], "domain": "enterprise-attack", "platforms": [], "limit": 1000}
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
  WITH t, kind, via_id, via_name, u
  WHERE size($platforms) = 0 OR any(p IN t.platforms WHERE p IN $platforms)
  WITH t, kind, via_id, via_name, u
  ORDER BY kind, via_id
  WITH t, collect({kind: kind, via_id: via_id, via_name: via_name, procedure: u.description,
                   citations: coalesce(u.citations, []),
                   citation_urls: coalesce(u.citation_urls, [])}) AS evidence
  // as technique_details: tactics in matrix order, as the load stored them
  RETURN collect({
    technique_id: t.attack_id, name: t.name, is_subtechnique: t.is_subtechnique,
    parent_id: t.rank_parent_id, parent_name: t.rank_parent_name, tactics: t.rank_tactics,
    tactic_names: t.rank_tactic_names, tactic_orders: t.rank_tactic_orders, platforms: t.platforms,
    domains: t.domains, url: t.url,
    evidence: evidence, mitigation_ids: t.rank_mitigation_ids
  }) AS techniques
}
CALL (g) {
  // as group_software
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
  WITH coalesce(s.attack_id, s.stix_id) AS software_id, s.name AS name,
       CASE WHEN s:Malware OR properties(s)['software_type'] = 'malware' THEN 'malware'
            ELSE 'tool' END AS type,
       collect(DISTINCT kind) AS kinds, [v IN collect(DISTINCT via_id) WHERE v IS NOT NULL] AS campaigns,
       head(collect(procedure)) AS procedure
  ORDER BY software_id
  LIMIT $limit
  RETURN collect({software_id: software_id, name: name, type: type, kinds: kinds,
                  campaigns: campaigns, procedure: procedure}) AS software
}
CALL (g) {
  // as group_campaigns
  MATCH (g)<-[a:ATTRIBUTED_TO]-(c)
  WHERE (c:Campaign OR ('OrgCluster' IN labels(g) AND 'OrgCampaign' IN labels(c)))
    AND NOT c.revoked AND NOT c.deprecated AND NOT a.revoked AND NOT a.deprecated
  WITH c, a
  ORDER BY c.first_seen, coalesce(c.attack_id, c.stix_id)
  LIMIT $limit
  RETURN collect({campaign_id: coalesce(c.attack_id, c.stix_id), name: c.name,
                  first_seen: c.first_seen, last_seen: c.last_seen,
                  attribution: a.description}) AS campaigns
}
CALL (techniques) {
  // the mitigations that address those techniques (each technique's, as the load stored them)
  UNWIND techniques AS x
  UNWIND x.mitigation_ids AS mid
  WITH DISTINCT mid
  MATCH (m:AttackObject {stix_id: mid})
  WHERE m:Mitigation AND NOT m.revoked AND NOT m.deprecated
  RETURN collect({stix_id: mid, mitigation_id: m.attack_id, name: m.name, url: m.url})
         AS mitigations
}
CALL () {
  MATCH (:Matrix)-[:HAS_TACTIC]->(ta:Tactic)
  WHERE NOT ta.revoked AND NOT ta.deprecated
  RETURN collect(DISTINCT {shortname: ta.shortname, name: ta.name}) AS known_tactics
}
RETURN coalesce(g.attack_id, g.stix_id) AS group_id, g.name AS name, g.aliases AS aliases,
       g.description AS description, g.url AS url, techniques, software, campaigns, known_tactics,
       mitigations
