// name: telemetry_sources
// doc: The telemetry that shows the given techniques, in one row: v18 (detection strategy -> analytic -> log source (name, channel) -> data component, optionally only analytics for the given platforms, lower-case) and v17 (data components that DETECT them directly, with their data source; empty in a v18 graph).
// params: technique_ids, platforms
// example: {"technique_ids": ["T1059.001", "T1003.001"], "platforms": ["windows"]}
CALL () {
  UNWIND $technique_ids AS tid
  MATCH (t:Technique {attack_id: tid})<-[r:DETECTS]-(d:DetectionStrategy)-[:HAS_ANALYTIC]->(a:Analytic)
  WHERE NOT t.revoked AND NOT t.deprecated AND NOT r.revoked AND NOT r.deprecated
    AND NOT d.revoked AND NOT d.deprecated AND NOT a.revoked AND NOT a.deprecated
    AND (size($platforms) = 0 OR any(p IN coalesce(a.platforms, []) WHERE toLower(p) IN $platforms))
  MATCH (a)-[:USES_LOG_SOURCE]->(l:LogSource)-[:OF_DATA_COMPONENT]->(dc:DataComponent)
  WHERE NOT dc.revoked AND NOT dc.deprecated
  WITH t, d, a, l, dc
  ORDER BY t.attack_id, d.attack_id, a.attack_id, l.name, l.channel
  RETURN collect({technique_id: t.attack_id, strategy_id: d.attack_id, strategy: d.name,
                  analytic_id: a.attack_id, platforms: coalesce(a.platforms, []),
                  log_source: l.name, channel: l.channel,
                  data_component_id: dc.attack_id, data_component: dc.name}) AS v18
}
CALL () {
  UNWIND $technique_ids AS tid
  MATCH (t:Technique {attack_id: tid})<-[r:DETECTS]-(dc:DataComponent)
  WHERE NOT t.revoked AND NOT t.deprecated AND NOT r.revoked AND NOT r.deprecated
    AND NOT dc.revoked AND NOT dc.deprecated
  // v18 graphs hold no PART_OF edges: matched by type so Neo4j does not warn of an unknown type
  OPTIONAL MATCH (dc)-[p]->(ds:DataSource) WHERE type(p) = 'PART_OF'
  WITH t, dc, ds, r
  ORDER BY t.attack_id, dc.attack_id
  RETURN collect({technique_id: t.attack_id, data_component_id: dc.attack_id,
                  data_component: dc.name, data_source_id: ds.attack_id,
                  data_source: ds.name, description: r.description}) AS v17
}
RETURN v18, v17
