// name: intel_incidents
// doc: Incidents and reports the organisation holds with their observed technique and IOC counts, newest first.
// params: limit
// example: {"limit": 50}
MATCH (i:OrgObject)
WHERE i:Incident OR i:Report
OPTIONAL MATCH (i)-[:USES|REFERS_TO]->(t:Technique)
WITH i, count(DISTINCT t) AS techniques
OPTIONAL MATCH (i)-[:REFERS_TO]->(ioc:OrgObject)
WHERE ioc:Indicator OR ioc:Observable
RETURN i.stix_id AS stix_id, i.name AS name, i.source AS source,
       CASE WHEN i:Incident THEN 'incident' ELSE 'report' END AS kind,
       coalesce(i.first_seen, i.published, i.created) AS date,
       techniques, count(DISTINCT ioc) AS iocs, i.imported_at AS imported_at
ORDER BY imported_at DESC, name
LIMIT $limit
