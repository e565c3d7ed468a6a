// name: inventory_rules
// doc: The rules of one inventory with the techniques each names (resolved: the id itself, its replacement if revoked, or through the crosswalk).
// params: inventory, status, technique_id, skip, limit
// example: {"inventory": "example", "status": null, "technique_id": null, "skip": 0, "limit": 50}
MATCH (:Inventory {name: $inventory})-[:HAS_RULE]->(r:DetectionRule)
WHERE ($status IS NULL OR r.status = $status)
OPTIONAL MATCH (r)-[c:COVERS]->(t:Technique)
WITH r, c, t
WHERE $technique_id IS NULL OR t.attack_id = $technique_id
WITH r, collect(CASE WHEN c IS NULL THEN null
                     ELSE {technique_id: t.attack_id, via: c.via, tag: c.tag,
                           partial: coalesce(c.partial, false)}
                END) AS covers
WHERE $technique_id IS NULL OR size(covers) > 0
RETURN r.name AS name, r.rule_id AS rule_id, r.file AS file, r.status AS status,
       r.techniques AS techniques, r.unknown_ids AS unknown_ids, covers
ORDER BY r.file, r.rule_id
SKIP $skip
LIMIT $limit
