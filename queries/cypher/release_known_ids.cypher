// name: release_known_ids
// doc: The STIX ids of every ATT&CK object in the graph (what a partial bundle may refer to).
// params: limit
// example: {"limit": 100}
MATCH (n:AttackObject)
RETURN n.stix_id AS stix_id
ORDER BY stix_id
LIMIT $limit
