// name: intel_known_relationships
// doc: Which of the given STIX relationship ids ATT&CK itself holds between its objects (so an import does not mistake MITRE relationships for imported ones).
// params: stix_ids
// example: {"stix_ids": ["relationship--0a6c8bf6-2c8e-4b3e-8a5e-0e0d3bd8b7b6"]}
MATCH (:AttackObject)-[r]->(:AttackObject)
WHERE r.stix_id IN $stix_ids
RETURN DISTINCT r.stix_id AS id
