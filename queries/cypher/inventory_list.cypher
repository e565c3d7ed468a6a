// name: inventory_list
// doc: The detection inventories imported into the graph, with their rule and coverage counts.
// params: limit
// example: {"limit": 100}
MATCH (i:Inventory)
RETURN i.name AS name, i.format AS format, i.source AS source, i.imported_at AS imported_at,
       i.rules AS rules, i.mapped AS mapped, i.techniques_covered AS techniques_covered,
       i.releases AS releases
ORDER BY name
LIMIT $limit
