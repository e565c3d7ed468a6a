// name: release_inventory_rules
// doc: Every rule of every inventory with the technique ids it is tagged with (known to the graph or not), for judging them against a release.
// params: limit
// example: {"limit": 100}
MATCH (i:Inventory)-[:HAS_RULE]->(r:DetectionRule)
WITH i, r,
     CASE WHEN r.techniques IS :: LIST<STRING NOT NULL> THEN r.techniques ELSE [] END AS known,
     CASE WHEN r.unknown_ids IS :: LIST<STRING NOT NULL> THEN r.unknown_ids ELSE [] END AS unknown
RETURN i.name AS inventory, coalesce(r.rule_id, r.name, elementId(r)) AS rule_id,
       coalesce(r.name, '') AS rule_name, coalesce(r.file, '') AS file,
       coalesce(r.status, '') AS status, known + [x IN unknown WHERE NOT x IN known] AS tagged
ORDER BY inventory, rule_id
LIMIT $limit
