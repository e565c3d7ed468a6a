// name: release_detection_counts
// doc: Size of one domain's detection model: data-component DETECTS (v17), detection strategies, analytics and the log sources they use (v18).
// params: domain
// example: {"domain": "enterprise-attack"}
CALL () {
  MATCH (:DataComponent)-[d:DETECTS]->(t:Technique)
  WHERE $domain IN d.loaded_domains AND NOT d.revoked AND NOT d.deprecated
    AND NOT t.revoked AND NOT t.deprecated
  RETURN count(d) AS component_detects, count(DISTINCT t) AS component_techniques
}
CALL () {
  MATCH (s:DetectionStrategy)
  WHERE $domain IN s.loaded_domains AND s.in_release AND NOT s.revoked AND NOT s.deprecated
  OPTIONAL MATCH (s)-[d:DETECTS]->(t:Technique)
  WHERE $domain IN d.loaded_domains AND NOT d.revoked AND NOT d.deprecated
    AND NOT t.revoked AND NOT t.deprecated
  RETURN count(DISTINCT s) AS strategies, count(DISTINCT t) AS strategy_techniques
}
CALL () {
  MATCH (a:Analytic)
  WHERE $domain IN a.loaded_domains AND a.in_release AND NOT a.revoked AND NOT a.deprecated
  OPTIONAL MATCH (a)-[:USES_LOG_SOURCE]->(l:LogSource)
  RETURN count(DISTINCT a) AS analytics, count(DISTINCT l) AS log_sources
}
RETURN component_detects, component_techniques, strategies, strategy_techniques, analytics,
       log_sources
