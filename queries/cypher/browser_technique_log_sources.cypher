// name: browser_technique_log_sources
// doc: Graph view: from a (gap) technique to the log sources that would detect it — Technique <-DETECTS- DetectionStrategy -HAS_ANALYTIC-> Analytic -USES_LOG_SOURCE-> LogSource -OF_DATA_COMPONENT-> DataComponent (ATT&CK v18), or DataComponent -DETECTS-> Technique when an older release is loaded.
// params: technique_id, limit
// example: {"technique_id": "T1059.001", "limit": 300}
MATCH (t:Technique {attack_id: toUpper(trim($technique_id))})
WHERE NOT t.revoked AND NOT t.deprecated
CALL (t) {
  MATCH p = (t)<-[d:DETECTS]-(s:DetectionStrategy)-[:HAS_ANALYTIC]->(a:Analytic)
            -[:USES_LOG_SOURCE]->(:LogSource)-[:OF_DATA_COMPONENT]->(dc:DataComponent)
  WHERE NOT d.revoked AND NOT d.deprecated AND NOT s.revoked AND NOT s.deprecated
    AND NOT a.revoked AND NOT a.deprecated AND NOT dc.revoked AND NOT dc.deprecated
  RETURN p
  UNION ALL
  MATCH p = (t)<-[d:DETECTS]-(dc:DataComponent)
  WHERE NOT d.revoked AND NOT d.deprecated AND NOT dc.revoked AND NOT dc.deprecated
  RETURN p
}
RETURN p
LIMIT $limit
