// name: warm_subjects
// doc: What the warm-up asks about (queries/warm.py): the five current groups with the most USES edges, and up to three inventories.
// params:
// example: {}
CALL () {
  MATCH (g:Group)
  WHERE NOT g.revoked AND NOT g.deprecated
  WITH g ORDER BY COUNT { (g)-[:USES]->() } DESC, g.attack_id
  LIMIT 5
  RETURN collect({id: g.attack_id, name: g.name}) AS groups
}
CALL () {
  MATCH (i:Inventory)
  WITH i ORDER BY i.name
  LIMIT 3
  RETURN collect(i.name) AS inventories
}
RETURN groups, inventories
