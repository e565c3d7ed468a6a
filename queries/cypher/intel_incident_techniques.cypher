// name: intel_incident_techniques
// doc: The techniques observed in an incident or report (by name or STIX id): those it uses or refers to, and those its IOCs indicate.
// params: name
// example: {"name": "Example incident"}
MATCH (i:OrgObject)
WHERE (i:Incident OR i:Report)
  AND (i.stix_id = $name OR toLower(i.name) = toLower(trim($name)))
CALL (i) {
  OPTIONAL MATCH (i)-[r:USES|REFERS_TO]->(t:Technique)
  WHERE NOT r.revoked
  RETURN t
  UNION
  OPTIONAL MATCH (i)-[:REFERS_TO]->(ioc:OrgObject)-[r:INDICATES|RELATED_TO]->(t:Technique)
  WHERE (ioc:Indicator OR ioc:Observable) AND NOT r.revoked
  RETURN t
}
WITH i, [x IN collect(DISTINCT t) WHERE x IS NOT NULL AND NOT x.revoked AND NOT x.deprecated]
     AS ts
RETURN i.stix_id AS stix_id, i.name AS name, i.source AS source,
       CASE WHEN i:Incident THEN 'incident' ELSE 'report' END AS kind,
       [t IN ts | t.attack_id] AS techniques
ORDER BY source
