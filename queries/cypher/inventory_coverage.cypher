// name: inventory_coverage
// doc: Every current technique an inventory covers, fully or only partially (parent or sub-technique rules, per the inventory options), with the rules (the first 100 names by name, and how many), tactics in matrix order and platforms; optionally one domain. Read from the coverage the import stored (TechniqueCoverage) while the ATT&CK releases it was computed against are loaded, from the rules' COVERS edges after a release load.
// params: inventory, domain, limit
// example: {"inventory": "example", "domain": null, "limit": 100}
MATCH (i:Inventory {name: $inventory})
WITH i, COLLECT { MATCH (rel:Release) RETURN rel.domain + '@' + coalesce(rel.sha256, rel.version) } AS loaded
WITH i, coalesce(size(loaded) = size(i.coverage_basis)
                 AND all(b IN loaded WHERE b IN i.coverage_basis), false) AS stored
CALL (i, stored) {
  WITH i WHERE stored
  MATCH (i)-[:HAS_COVERAGE]->(c:TechniqueCoverage)
  MATCH (t:AttackObject {stix_id: c.technique})
  WHERE NOT t.revoked AND NOT t.deprecated AND coalesce(t.in_release, true)
    AND ($domain IS NULL OR $domain IN t.domains)
  RETURN t, c.rules AS rules, c.rule_count AS rule_count, c.partial_rules AS partial_rules,
         c.partial_rule_count AS partial_rule_count, c.via AS via
  UNION ALL
  WITH i WHERE NOT stored
  CALL (i) {
    MATCH (i)-[:HAS_RULE]->(:DetectionRule)-[:COVERS]->(d:Technique)
    WITH DISTINCT d
    CALL (d) {
      RETURN d AS t
      UNION
      MATCH (d)<-[:SUBTECHNIQUE_OF]-(t:Technique)
      RETURN t
      UNION
      MATCH (d)-[:SUBTECHNIQUE_OF]->(t:Technique)
      RETURN t
    }
    RETURN DISTINCT t
  }
  WITH i, t
  WHERE NOT t.revoked AND NOT t.deprecated AND coalesce(t.in_release, true)
    AND ($domain IS NULL OR $domain IN t.domains)
  CALL (i, t) {
    CALL (i, t) {
      MATCH (t)<-[c:COVERS]-(r:DetectionRule)<-[:HAS_RULE]-(i)
      RETURN r, c.via AS via, false AS partial
      UNION ALL
      MATCH (t)-[:SUBTECHNIQUE_OF]->(:Technique)<-[:COVERS]-(r:DetectionRule)<-[:HAS_RULE]-(i)
      WHERE coalesce(i.parent_coverage, 'partial') <> 'none'
      RETURN r, 'parent' AS via, coalesce(i.parent_coverage, 'partial') = 'partial' AS partial
      UNION ALL
      MATCH (t)<-[:SUBTECHNIQUE_OF]-(:Technique)<-[:COVERS]-(r:DetectionRule)<-[:HAS_RULE]-(i)
      WHERE coalesce(i.subtechnique_coverage, 'partial') <> 'none'
      RETURN r, 'subtechnique' AS via, true AS partial
    }
    // one technique at a time: Neo4j holds one technique's rules, never the inventory's
    WITH r, min(CASE WHEN partial THEN 1 ELSE 0 END) = 1 AS partial, collect(via) AS vias
    ORDER BY r.name, r.key
    WITH collect(CASE WHEN NOT partial THEN r.name END) AS rules,
         collect(CASE WHEN partial THEN r.name END) AS partial_rules, collect(vias) AS vias
    RETURN rules[..100] AS rules, size(rules) AS rule_count,
           partial_rules[..100] AS partial_rules, size(partial_rules) AS partial_rule_count,
           COLLECT { UNWIND vias AS vs UNWIND vs AS v RETURN DISTINCT v ORDER BY v } AS via
  }
  WITH t, rules, rule_count, partial_rules, partial_rule_count, via
  WHERE rule_count + partial_rule_count > 0
  RETURN t, rules, rule_count, partial_rules, partial_rule_count, via
}
CALL (t) {
  OPTIONAL MATCH (t)-[:IN_TACTIC]->(ta:Tactic)<-[o:HAS_TACTIC]-(m:Matrix)
  WHERE NOT m.revoked AND NOT m.deprecated AND NOT ta.revoked AND NOT ta.deprecated
  WITH ta, min(o.order) AS ord ORDER BY ord
  RETURN [x IN collect(ta.shortname) WHERE x IS NOT NULL] AS tactics
}
RETURN t.attack_id AS technique_id, t.name AS name, tactics,
       coalesce(t.platforms, []) AS platforms, t.domains AS domains,
       rules, rule_count, partial_rules, partial_rule_count, rule_count = 0 AS partial, via
ORDER BY technique_id
LIMIT $limit
