// name: release_object_versions
// doc: Every STIX object and relationship one domain's release holds in the graph, with its modified timestamp (its STIX version).
// params: domain, limit
// example: {"domain": "ics-attack", "limit": 100}
CALL () {
  MATCH (n:AttackObject)
  WHERE $domain IN n.loaded_domains
  RETURN n.stix_id AS stix_id, n.modified AS modified
  UNION ALL
  MATCH ()-[r]->()
  WHERE r.stix_id IS NOT NULL AND $domain IN r.loaded_domains
  RETURN r.stix_id AS stix_id, r.modified AS modified
}
RETURN stix_id, modified
ORDER BY stix_id
LIMIT $limit
