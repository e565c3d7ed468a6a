// name: mitigations_for_techniques
// doc: Mitigations that address any of the given techniques, ranked by how many they address.
// params: technique_ids, limit
// example: {"technique_ids": ["T1059.001"], "limit": 10}
MATCH (m:Mitigation)-[r:MITIGATES]->(t:Technique)
WHERE t.attack_id IN $technique_ids AND NOT m.revoked AND NOT m.deprecated
  AND NOT t.revoked AND NOT t.deprecated AND NOT r.revoked AND NOT r.deprecated
WITH m, collect(DISTINCT t.attack_id) AS techniques
RETURN m.attack_id AS mitigation_id, m.name AS name, size(techniques) AS count,
       techniques, m.url AS url
ORDER BY count DESC, mitigation_id
LIMIT $limit
