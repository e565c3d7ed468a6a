// name: layer_telemetry_sources
// doc: Which data components and log sources can show each technique of a domain: ATT&CK v18 detection strategies -> analytics -> log sources -> data components, and v17 data components that DETECT techniques directly.
// params: domain, limit
// example: {"domain": "enterprise-attack", "limit": 20}
MATCH (t:Technique)
WHERE $domain IN t.domains AND NOT t.revoked AND NOT t.deprecated AND coalesce(t.in_release, true)
CALL (t) {
  MATCH (t)<-[r:DETECTS]-(d:DetectionStrategy)-[:HAS_ANALYTIC]->(a:Analytic)
        -[:USES_LOG_SOURCE]->(l:LogSource)-[:OF_DATA_COMPONENT]->(dc:DataComponent)
  WHERE NOT r.revoked AND NOT r.deprecated AND NOT d.revoked AND NOT d.deprecated
    AND NOT a.revoked AND NOT a.deprecated AND NOT dc.revoked AND NOT dc.deprecated
  RETURN dc, l.name AS log_source
  UNION
  MATCH (t)<-[r:DETECTS]-(dc:DataComponent)
  WHERE NOT r.revoked AND NOT r.deprecated AND NOT dc.revoked AND NOT dc.deprecated
  RETURN dc, null AS log_source
}
WITH t, dc, collect(DISTINCT log_source) AS log_sources
RETURN t.attack_id AS technique_id,
       collect({data_component_id: dc.attack_id, data_component: dc.name,
                log_sources: log_sources}) AS sources
ORDER BY technique_id
LIMIT $limit
