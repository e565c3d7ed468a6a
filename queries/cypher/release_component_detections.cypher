// name: release_component_detections
// doc: Per data component of one domain's release: techniques it DETECTS itself (ATT&CK v17 model) and techniques reached through its log sources, analytics and detection strategies (v18 model).
// params: domain, limit
// example: {"domain": "enterprise-attack", "limit": 100}
MATCH (dc:DataComponent)
WHERE $domain IN dc.loaded_domains AND dc.in_release
CALL (dc) {
  OPTIONAL MATCH (dc)-[d:DETECTS]->(t:Technique)
  WHERE $domain IN d.loaded_domains AND NOT d.revoked AND NOT d.deprecated
    AND NOT t.revoked AND NOT t.deprecated
  RETURN [x IN collect(DISTINCT t.attack_id) WHERE x IS NOT NULL] AS direct
}
CALL (dc) {
  OPTIONAL MATCH (dc)<-[:OF_DATA_COMPONENT]-(:LogSource)<-[:USES_LOG_SOURCE]-(a:Analytic)
        <-[:HAS_ANALYTIC]-(s:DetectionStrategy)-[d:DETECTS]->(t:Technique)
  WHERE $domain IN d.loaded_domains AND NOT d.revoked AND NOT d.deprecated
    AND NOT s.revoked AND NOT s.deprecated AND NOT a.revoked AND NOT a.deprecated
    AND NOT t.revoked AND NOT t.deprecated
  RETURN [x IN collect(DISTINCT t.attack_id) WHERE x IS NOT NULL] AS via
}
RETURN dc.stix_id AS stix_id, dc.attack_id AS attack_id, dc.name AS name,
       dc.revoked OR dc.deprecated AS retired, direct, via
ORDER BY stix_id
LIMIT $limit
