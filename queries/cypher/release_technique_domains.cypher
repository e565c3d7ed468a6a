// name: release_technique_domains
// doc: The domains whose loaded releases hold each of the given ATT&CK technique ids (ids held by none are unknown to the graph).
// params: technique_ids, limit
// example: {"technique_ids": ["T1059.001", "T0801", "T9999"], "limit": 100}
MATCH (t:Technique)
WHERE t.attack_id IN $technique_ids AND t.in_release
UNWIND t.loaded_domains AS domain
RETURN t.attack_id AS technique_id, collect(DISTINCT domain) AS domains
ORDER BY technique_id
LIMIT $limit
