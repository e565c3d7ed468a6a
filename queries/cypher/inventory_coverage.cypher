// name: inventory_coverage
// doc: Every current technique an inventory covers, fully or only partially (parent or sub-technique rules, per the inventory options), with the rules, tactics in matrix order and platforms; optionally one domain.
// params: inventory, domain, limit
// example: {"inventory": "example", "domain": null, "limit": 100}
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
  AND ($domain IS NULL OR $domain IN t.domains)
WITH t, r, min(CASE WHEN partial THEN 1 ELSE 0 END) = 1 AS partial, collect(via) AS vias
ORDER BY r.name, r.key
WITH t, collect(CASE WHEN NOT partial THEN r.name END) AS rules,
     collect(CASE WHEN partial THEN r.name END) AS partial_rules, collect(vias) AS vias
CALL (t) {
  OPTIONAL MATCH (t)-[:IN_TACTIC]->(ta:Tactic)<-[o:HAS_TACTIC]-(m:Matrix)
  WHERE NOT m.revoked AND NOT m.deprecated AND NOT ta.revoked AND NOT ta.deprecated
  WITH ta, min(o.order) AS ord ORDER BY ord
  RETURN [x IN collect(ta.shortname) WHERE x IS NOT NULL] AS tactics
}
RETURN t.attack_id AS technique_id, t.name AS name, tactics,
       coalesce(t.platforms, []) AS platforms, t.domains AS domains,
       rules, partial_rules, size(rules) = 0 AS partial,
       reduce(acc = [], v IN reduce(all_v = [], x IN vias | all_v + x) |
              CASE WHEN v IN acc THEN acc ELSE acc + v END) AS via
ORDER BY technique_id
LIMIT $limit
