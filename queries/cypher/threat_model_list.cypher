// name: threat_model_list
// doc: The saved threat models (actors, inventory, filters), by name.
// params: limit
// example: {"limit": 100}
MATCH (m:$('ThreatModel'))
RETURN m {.*} AS m
ORDER BY m.name
LIMIT $limit
