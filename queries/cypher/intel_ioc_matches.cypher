// name: intel_ioc_matches
// doc: Indicators and observables of the organisation holding an IOC value (case-insensitive): IP, domain, URL, hash, e-mail, file name...
// params: value, limit
// example: {"value": "203.0.113.7", "limit": 50}
CALL () {
  // an index seek on the first value; the few IOCs with several values are read apart
  MATCH (n:OrgObject {ioc_key: toLower(trim($value))})
  RETURN n
  UNION
  MATCH (n:OrgObject {ioc_multi: true})
  WHERE toLower(trim($value)) IN n.values
  RETURN n
}
WITH n
WHERE (n:Indicator OR n:Observable)
  // only the import its source answers with (not one being written or removed)
  AND EXISTS { MATCH (s:IntelSource {source: n.source})
               WHERE coalesce(s.import_id, '') = coalesce(n.import_id, '') }
RETURN CASE WHEN n:Indicator THEN 'Indicator' ELSE 'Observable' END AS label,
       n.stix_id AS stix_id, n.stix_type AS stix_type, n.name AS name, n.value AS value,
       n.pattern AS pattern, n.source AS source, n.score AS score, n.valid_from AS valid_from,
       n.valid_until AS valid_until, n.description AS description, n.revoked AS revoked
ORDER BY source, label, stix_id
LIMIT $limit
