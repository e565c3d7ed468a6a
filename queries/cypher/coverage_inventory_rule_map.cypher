// name: coverage_inventory_rule_map
// doc: Every current technique one inventory covers: rules that cover it (directly, or through its parent with parent_coverage full) and rules that cover it only partially (on its parent or its sub-techniques), per the inventory options: the first 100 names by name, and how many. Read from the coverage the import stored (TechniqueCoverage) while the ATT&CK releases it was computed against are loaded, from the rules' COVERS edges after a release load.
// params: inventory
// example: {"inventory": "example"}
MATCH (i:Inventory {name: $inventory})
WITH i, COLLECT { MATCH (rel:Release) RETURN rel.domain + '@' + coalesce(rel.sha256, rel.version) } AS loaded
WITH i, coalesce(size(loaded) = size(i.coverage_basis)
                 AND all(b IN loaded WHERE b IN i.coverage_basis), false) AS stored
CALL (i, stored) {
  WITH i WHERE stored
  MATCH (i)-[:HAS_COVERAGE]->(c:TechniqueCoverage)
  MATCH (t:AttackObject {stix_id: c.technique})
  WHERE NOT t.revoked AND NOT t.deprecated AND coalesce(t.in_release, true)
  RETURN t.attack_id AS technique_id, c.rules AS rules, c.rule_count AS rule_count,
         c.partial_rules AS partial_rules, c.partial_rule_count AS partial_rule_count,
         c.via AS via
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
  RETURN t.attack_id AS technique_id, rules, rule_count, partial_rules, partial_rule_count,
         via
}
RETURN technique_id, rules, rule_count, partial_rules, partial_rule_count, via
ORDER BY technique_id
