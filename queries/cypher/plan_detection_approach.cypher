// name: plan_detection_approach
// doc: How ATT&CK says to detect the given techniques: detection strategies with their analytics (platforms, description, log sources), optionally only analytics for the given platforms (lower-case).
// params: technique_ids, platforms
// example: {"technique_ids": ["T1059.001"], "platforms": []}
UNWIND $technique_ids AS tid
MATCH (t:Technique {attack_id: tid})<-[r:DETECTS]-(d:DetectionStrategy)
WHERE NOT t.revoked AND NOT t.deprecated AND NOT r.revoked AND NOT r.deprecated
  AND NOT d.revoked AND NOT d.deprecated
OPTIONAL MATCH (d)-[:HAS_ANALYTIC]->(a:Analytic)
WHERE NOT a.revoked AND NOT a.deprecated
  AND (size($platforms) = 0 OR any(p IN coalesce(a.platforms, []) WHERE toLower(p) IN $platforms))
CALL (a) {
  OPTIONAL MATCH (a)-[:USES_LOG_SOURCE]->(l:LogSource)
  OPTIONAL MATCH (l)-[:OF_DATA_COMPONENT]->(dc:DataComponent)
  WITH l, dc ORDER BY l.name, l.channel
  RETURN [x IN collect(CASE WHEN l IS NULL THEN null
                            ELSE {name: l.name, channel: l.channel, data_component: dc.name} END)
          WHERE x IS NOT NULL] AS log_sources
}
WITH t, d, a, log_sources ORDER BY a.attack_id
RETURN t.attack_id AS technique_id, d.attack_id AS strategy_id, d.name AS strategy,
       d.url AS strategy_url,
       [x IN collect(CASE WHEN a IS NULL THEN null
                          ELSE {analytic_id: a.attack_id, platforms: coalesce(a.platforms, []),
                                description: a.description, log_sources: log_sources} END)
        WHERE x IS NOT NULL] AS analytics
ORDER BY technique_id, strategy_id
