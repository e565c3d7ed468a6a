// name: coverage_rules_for_techniques
// doc: For the given techniques, the rules of one inventory that cover each (directly, or through its parent with parent_coverage full) or only partially (on its parent or its sub-techniques), per the inventory options.
// params: inventory, technique_ids
// example: {"inventory": "example", "technique_ids": ["T1059.001", "T1003"]}
MATCH (i:Inventory {name: $inventory})
UNWIND $technique_ids AS tid
MATCH (t:Technique {attack_id: tid})
WHERE NOT t.revoked AND NOT t.deprecated
CALL (i, t) {
  MATCH (t)<-[c:COVERS]-(r:DetectionRule {inventory: i.name})
  RETURN r, c.via AS via, false AS partial
  UNION ALL
  MATCH (t)-[:SUBTECHNIQUE_OF]->(:Technique)<-[:COVERS]-(r:DetectionRule {inventory: i.name})
  WHERE coalesce(i.parent_coverage, 'partial') <> 'none'
  RETURN r, 'parent' AS via, coalesce(i.parent_coverage, 'partial') = 'partial' AS partial
  UNION ALL
  MATCH (t)<-[:SUBTECHNIQUE_OF]-(:Technique)<-[:COVERS]-(r:DetectionRule {inventory: i.name})
  WHERE coalesce(i.subtechnique_coverage, 'partial') <> 'none'
  RETURN r, 'subtechnique' AS via, true AS partial
}
WITH t, r, min(CASE WHEN partial THEN 1 ELSE 0 END) = 1 AS partial, collect(via) AS vias
ORDER BY r.name, r.key
WITH t, collect(CASE WHEN NOT partial THEN r.name END) AS rules,
     collect(CASE WHEN partial THEN r.name END) AS partial_rules, collect(vias) AS vias
RETURN t.attack_id AS technique_id, rules, partial_rules,
       reduce(acc = [], v IN reduce(all_v = [], x IN vias | all_v + x) |
              CASE WHEN v IN acc THEN acc ELSE acc + v END) AS via
ORDER BY technique_id
