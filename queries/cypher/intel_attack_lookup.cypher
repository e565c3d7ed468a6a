// name: intel_attack_lookup
// doc: ATT&CK techniques, groups, software and campaigns by STIX id or ATT&CK id, with the replacement of a revoked one: what imported intelligence links to.
// params: stix_ids, attack_ids
// example: {"stix_ids": ["intrusion-set--899ce53f-13a0-479b-a0e4-67d46e241542"], "attack_ids": ["T1059.001", "T1193"]}
MATCH (n:AttackObject)
WHERE (n.stix_id IN $stix_ids OR n.attack_id IN $attack_ids)
  AND (n:Technique OR n:Group OR n:Software OR n:Campaign)
OPTIONAL MATCH (n)-[:REVOKED_BY]->(r:AttackObject)
WHERE NOT r.revoked AND NOT r.deprecated
WITH n, head(collect(r)) AS r
RETURN n.stix_id AS stix_id, n.attack_id AS attack_id, n.name AS name,
       [l IN labels(n) WHERE l IN ['Technique', 'Group', 'Software', 'Campaign']][0] AS kind,
       n.revoked AS revoked, n.deprecated AS deprecated,
       r.stix_id AS replaced_by, r.attack_id AS new_attack_id, r.name AS new_name
