// name: inventory_technique_index
// doc: Every technique (revoked and deprecated too) with its parent and replacement, for resolving the ids an inventory names.
// params: domains
// example: {"domains": []}
MATCH (t:Technique)
WHERE size($domains) = 0 OR any(d IN t.domains WHERE d IN $domains)
OPTIONAL MATCH (t)-[:SUBTECHNIQUE_OF]->(p:Technique)
OPTIONAL MATCH (t)-[:REVOKED_BY]->(r:Technique)
RETURN t.attack_id AS attack_id, t.stix_id AS stix_id, t.name AS name,
       t.revoked AS revoked, t.deprecated AS deprecated, t.domains AS domains,
       coalesce(t.is_subtechnique, false) AS is_subtechnique,
       coalesce(t.in_release, true) AS in_release,
       p.attack_id AS parent_id, r.attack_id AS replaced_by
ORDER BY attack_id
