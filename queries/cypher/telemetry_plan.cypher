// name: telemetry_plan
// doc: What a telemetry plan reads, in one row: the techniques of a threat model (as gap_analysis: a set of groups and clusters of the organisation, by STIX id; directly, through campaigns, optionally through software; filtered by domain and platforms, lower-case), each with the actors that use it; the inventory's name (null when there is none) and the releases loaded; how many of the inventory's rules cover each technique fully and partly (coverage_stored false when a release was loaded since: coverage_rules_for_techniques counts them then); and the v18 and v17 telemetry the release load stored on each technique no rule covers fully (as telemetry_sources gives it for every platform, as one JSON text).
// params: group_ids, kinds, domain, platforms, inventory
// example: {"group_ids": ["G0016", "G0007"], "kinds": ["direct", "campaign"], "domain": "enterprise-attack", "platforms": [], "inventory": "example"}
CALL () {
  OPTIONAL MATCH (i:Inventory {name: $inventory})
  RETURN i.name AS inventory, i.releases AS inventory_releases
}
CALL () {
  MATCH (r:Release)
  WITH r ORDER BY r.domain
  RETURN collect({domain: r.domain, version: r.version}) AS releases
}
CALL () {
  // the threat model: the same paths as coverage_threat_model
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
  WITH gid, t, kind
  WHERE size($platforms) = 0
    OR any(p IN coalesce(t.platforms, []) WHERE toLower(p) IN $platforms)
  WITH t, collect(DISTINCT gid) AS actors
  RETURN collect({technique_id: t.attack_id, actors: actors, node: t}) AS found
}
// how many of the inventory's rules cover each of those techniques fully and partly, as its
// import stored them (TechniqueCoverage), while the releases they were computed against are
// loaded; coverage_stored false: after a release load, coverage_rules_for_techniques computes
// them from the rules' COVERS edges
CALL (found) {
  OPTIONAL MATCH (i:Inventory {name: $inventory})
  WITH i, COLLECT { MATCH (rel:Release) RETURN rel.domain + '@' + coalesce(rel.sha256, rel.version) } AS loaded
  WITH i, coalesce(size(loaded) = size(i.coverage_basis)
                   AND all(b IN loaded WHERE b IN i.coverage_basis), false) AS stored
  CALL (i, stored, found) {
    WITH i, [x IN found | x.technique_id] AS ids WHERE stored
    MATCH (i)-[:HAS_COVERAGE]->(c:TechniqueCoverage)
    WHERE c.technique_id IN ids
    MATCH (t:AttackObject {stix_id: c.technique})
    WHERE NOT t.revoked AND NOT t.deprecated
    RETURN collect({technique_id: t.attack_id, rule_count: c.rule_count,
                    partial_rule_count: c.partial_rule_count}) AS coverage,
           collect(CASE WHEN c.rule_count > 0 THEN t.attack_id END) AS covered_ids
  }
  RETURN stored AS coverage_stored, coverage, covered_ids
}
// the telemetry that shows those techniques no rule covers fully (a gap or a partial one), as
// the release load stored it on each (loader/technique_facts.py: telemetry_sources' rows for
// every platform, as one JSON text; null when an earlier ttpgraph loaded the release)
RETURN inventory, inventory_releases, releases,
       [x IN found | {technique_id: x.technique_id, actors: x.actors}] AS techniques,
       coverage_stored, coverage,
       [x IN found WHERE NOT x.technique_id IN covered_ids
        | {technique_id: x.technique_id, telemetry: x.node.rank_telemetry}] AS telemetry
