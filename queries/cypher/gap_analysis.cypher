// name: gap_analysis
// doc: A threat model in one row, for ranking its gaps: the techniques a set of groups (and clusters of the organisation, by STIX id) uses — directly, through campaigns attributed to them, optionally through software (their own and their campaigns'); filtered by domain and platforms (lower-case) — each with who uses it and how, and what ranks it (name, parent, tactics in matrix order with the matrix width, platforms, ATT&CK detection strategies and analytics (v18) or data components (v17), mitigations); plus how many current groups use each technique ([technique id, count] pairs), the inventory's name (null when there is none), the releases loaded and the tactics of the current matrices. The rules covering each technique come from coverage_rules_for_techniques.
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
  MATCH (m:Matrix)-[o:HAS_TACTIC]->(ta:Tactic)
  WHERE NOT m.revoked AND NOT m.deprecated AND NOT ta.revoked AND NOT ta.deprecated
  WITH m, o, ta ORDER BY m.attack_id, o.order
  RETURN collect({domain: m.attack_id, tactic_id: ta.attack_id, name: ta.name,
                  shortname: ta.shortname, order: o.order}) AS tactics
}
// how many current groups use each technique (prevalence), counted once from the groups' side
CALL () {
  MATCH (g:Group) WHERE NOT g.revoked AND NOT g.deprecated
  RETURN count(g) AS total_groups
}
CALL () {
  MATCH (g:Group) WHERE NOT g.revoked AND NOT g.deprecated
  CALL (g) {
    MATCH (g)-[u:USES]->(t:Technique)
    WHERE NOT u.revoked AND NOT u.deprecated
    RETURN t
    UNION
    MATCH (g)<-[a:ATTRIBUTED_TO]-(c:Campaign)-[u:USES]->(t:Technique)
    WHERE NOT a.revoked AND NOT a.deprecated AND NOT c.revoked AND NOT c.deprecated
      AND NOT u.revoked AND NOT u.deprecated
    RETURN t
    UNION
    MATCH (g)-[gs:USES]->(s:Software)-[u:USES]->(t:Technique)
    WHERE 'software' IN $kinds AND NOT gs.revoked AND NOT gs.deprecated AND NOT s.revoked
      AND NOT s.deprecated AND NOT u.revoked AND NOT u.deprecated
    RETURN t
    UNION
    // software of a campaign attributed to the group: the same path kinds as the
    // actor_techniques block below (tests/test_path_kinds.py checks)
    MATCH (g)<-[a:ATTRIBUTED_TO]-(c:Campaign)-[cs:USES]->(s:Software)-[u:USES]->(t:Technique)
    WHERE 'software' IN $kinds AND NOT a.revoked AND NOT a.deprecated AND NOT c.revoked
      AND NOT c.deprecated AND NOT cs.revoked AND NOT cs.deprecated AND NOT s.revoked
      AND NOT s.deprecated AND NOT u.revoked AND NOT u.deprecated
    RETURN t
  }
  WITH t, count(g) AS groups_using
  RETURN collect([t.attack_id, groups_using]) AS prevalence
}
// the width of every matrix, once (not once per technique)
CALL () {
  MATCH (m:Matrix)
  RETURN collect({matrix: m, width: COUNT { (m)-[:HAS_TACTIC]->(:Tactic) }}) AS widths
}
CALL (widths) {
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
  WITH t, gid AS group_id, collect(DISTINCT kind) AS kinds
  WITH t, collect({group_id: group_id, kinds: kinds}) AS actors
  // what ranks each technique
  OPTIONAL MATCH (t)-[:SUBTECHNIQUE_OF]->(p:Technique)
  CALL (t, widths) {
    OPTIONAL MATCH (t)-[:IN_TACTIC]->(ta:Tactic)<-[o:HAS_TACTIC]-(m:Matrix)
    WHERE NOT m.revoked AND NOT m.deprecated AND NOT ta.revoked AND NOT ta.deprecated
    WITH ta, o, m, coalesce([w IN widths WHERE w.matrix = m][0].width, 0) AS width
    WITH ta, min(o.order) AS ord, max(width) AS width, head(collect(m.attack_id)) AS matrix
    ORDER BY ord
    RETURN [x IN collect(ta.shortname) WHERE x IS NOT NULL] AS tactics,
           [x IN collect(ta.name) WHERE x IS NOT NULL] AS tactic_names,
           [x IN collect(ord) WHERE x IS NOT NULL] AS tactic_orders,
           [x IN collect(width) WHERE x IS NOT NULL] AS matrix_widths,
           [x IN collect(matrix) WHERE x IS NOT NULL] AS tactic_domains
  }
  CALL (t) {
    OPTIONAL MATCH (t)<-[r:DETECTS]-(d:DetectionStrategy)
    WHERE NOT r.revoked AND NOT r.deprecated AND NOT d.revoked AND NOT d.deprecated
    OPTIONAL MATCH (d)-[:HAS_ANALYTIC]->(a:Analytic)
    WHERE NOT a.revoked AND NOT a.deprecated
    RETURN count(DISTINCT d) AS detection_strategies, count(DISTINCT a) AS analytics
  }
  CALL (t) {
    OPTIONAL MATCH (t)<-[r:DETECTS]-(dc:DataComponent)
    WHERE NOT r.revoked AND NOT r.deprecated AND NOT dc.revoked AND NOT dc.deprecated
    RETURN count(DISTINCT dc) AS data_components
  }
  CALL (t) {
    OPTIONAL MATCH (m:Mitigation)-[r:MITIGATES]->(t)
    WHERE NOT m.revoked AND NOT m.deprecated AND NOT r.revoked AND NOT r.deprecated
    RETURN count(DISTINCT m) AS mitigations
  }
  WITH t, actors, p, tactics, tactic_names, tactic_orders, matrix_widths, tactic_domains,
       detection_strategies, analytics, data_components, mitigations
  ORDER BY t.attack_id
  RETURN collect({
    technique_id: t.attack_id, name: t.name, is_subtechnique: coalesce(t.is_subtechnique, false),
    parent_id: p.attack_id, parent_name: p.name, tactics: tactics, tactic_names: tactic_names,
    tactic_orders: tactic_orders, matrix_widths: matrix_widths, tactic_domains: tactic_domains,
    platforms: coalesce(t.platforms, []), domains: t.domains, url: t.url,
    detection_strategies: detection_strategies, analytics: analytics,
    data_components: data_components, mitigations: mitigations, actors: actors
  }) AS techniques
}
RETURN inventory, inventory_releases, releases, tactics, total_groups, prevalence, techniques
