// name: coverage_inventory_rule_map
// doc: Every current technique one inventory covers: rules that cover it (directly, or through its parent with parent_coverage full) and rules that cover it only partially (on its parent or its sub-techniques), per the inventory options.
// params: inventory
// example: {"inventory": "example"}
MATCH (i:Inventory {name: $inventory})
CALL (i) {
  MATCH (i)-[:HAS_RULE]->(r:DetectionRule)-[c:COVERS]->(t:Technique)
  RETURN t, r, c.via AS via, false AS partial
  UNION ALL
  MATCH (i)-[:HAS_RULE]->(r:DetectionRule)-[:COVERS]->(:Technique)<-[:SUBTECHNIQUE_OF]-(t:Technique)
  WHERE coalesce(i.parent_coverage, 'partial') <> 'none'
  RETURN t, r, 'parent' AS via, coalesce(i.parent_coverage, 'partial') = 'partial' AS partial
  UNION ALL
  MATCH (i)-[:HAS_RULE]->(r:DetectionRule)-[:COVERS]->(:Technique)-[:SUBTECHNIQUE_OF]->(t:Technique)
  WHERE coalesce(i.subtechnique_coverage, 'partial') <> 'none'
  RETURN t, r, 'subtechnique' AS via, true AS partial
}
WITH t, r, via, partial
WHERE NOT t.revoked AND NOT t.deprecated AND coalesce(t.in_release, true)
WITH t, r, min(CASE WHEN partial THEN 1 ELSE 0 END) = 1 AS partial, collect(via) AS vias
ORDER BY r.name, r.key
WITH t, collect(CASE WHEN NOT partial THEN r.name END) AS rules,
     collect(CASE WHEN partial THEN r.name END) AS partial_rules, collect(vias) AS vias
RETURN t.attack_id AS technique_id, rules, partial_rules,
       reduce(acc = [], v IN reduce(all_v = [], x IN vias | all_v + x) |
              CASE WHEN v IN acc THEN acc ELSE acc + v END) AS via
ORDER BY technique_id
