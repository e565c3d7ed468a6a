// name: intel_cluster_candidates
// doc: Clusters the organisation tracks (intrusion sets, threat actors) with names, aliases, the ATT&CK id they claim and the ATT&CK groups they are linked to SAME_AS.
// params: include_retired
// example: {"include_retired": false}
MATCH (c:OrgCluster)
WHERE $include_retired OR (NOT c.revoked AND NOT c.deprecated)
OPTIONAL MATCH (c)-[:SAME_AS]->(g:Group)
WITH c, collect(DISTINCT g.attack_id) AS same_as
RETURN c.stix_id AS stix_id, c.key AS key, c.name AS name, coalesce(c.aliases, []) AS aliases,
       c.external_id AS external_id, c.attack_ref AS attack_ref, c.source AS source,
       c.revoked AS revoked, c.deprecated AS deprecated, same_as
ORDER BY stix_id, source
