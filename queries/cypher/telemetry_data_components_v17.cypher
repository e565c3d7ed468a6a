// name: telemetry_data_components_v17
// doc: ATT&CK v17 telemetry for the given techniques: data components that DETECT them directly (with their data source); empty in a v18 graph.
// params: technique_ids, limit
// example: {"technique_ids": ["T1059.001", "T1003.001"], "limit": 500}
UNWIND $technique_ids AS tid
MATCH (t:Technique {attack_id: tid})<-[r:DETECTS]-(dc:DataComponent)
WHERE NOT t.revoked AND NOT t.deprecated AND NOT r.revoked AND NOT r.deprecated
  AND NOT dc.revoked AND NOT dc.deprecated
// v18 graphs hold no PART_OF edges: matched by type so Neo4j does not warn of an unknown type
OPTIONAL MATCH (dc)-[p]->(ds:DataSource) WHERE type(p) = 'PART_OF'
RETURN t.attack_id AS technique_id, dc.attack_id AS data_component_id,
       dc.name AS data_component, ds.attack_id AS data_source_id, ds.name AS data_source,
       r.description AS description
ORDER BY technique_id, data_component_id
LIMIT $limit
