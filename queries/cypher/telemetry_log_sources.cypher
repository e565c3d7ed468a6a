// name: telemetry_log_sources
// doc: ATT&CK v18 telemetry for the given techniques: detection strategy -> analytic -> log source (name, channel) -> data component, optionally only analytics for the given platforms (lower-case).
// params: technique_ids, platforms, limit
// example: {"technique_ids": ["T1059.001", "T1003.001"], "platforms": ["windows"], "limit": 500}
UNWIND $technique_ids AS tid
MATCH (t:Technique {attack_id: tid})<-[r:DETECTS]-(d:DetectionStrategy)-[:HAS_ANALYTIC]->(a:Analytic)
WHERE NOT t.revoked AND NOT t.deprecated AND NOT r.revoked AND NOT r.deprecated
  AND NOT d.revoked AND NOT d.deprecated AND NOT a.revoked AND NOT a.deprecated
  AND (size($platforms) = 0 OR any(p IN coalesce(a.platforms, []) WHERE toLower(p) IN $platforms))
MATCH (a)-[:USES_LOG_SOURCE]->(l:LogSource)-[:OF_DATA_COMPONENT]->(dc:DataComponent)
WHERE NOT dc.revoked AND NOT dc.deprecated
RETURN t.attack_id AS technique_id, d.attack_id AS strategy_id, d.name AS strategy,
       a.attack_id AS analytic_id, coalesce(a.platforms, []) AS platforms,
       l.name AS log_source, l.channel AS channel,
       dc.attack_id AS data_component_id, dc.name AS data_component
ORDER BY technique_id, strategy_id, analytic_id, log_source, channel
LIMIT $limit
