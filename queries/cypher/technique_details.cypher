// name: technique_details
// doc: Name, parent, tactics (in matrix order) and platforms of the given techniques.
// params: technique_ids
// example: {"technique_ids": ["T1059.001", "T1055.011"]}
UNWIND $technique_ids AS tid
MATCH (t:Technique {attack_id: tid})
WHERE NOT t.revoked AND NOT t.deprecated
OPTIONAL MATCH (t)-[:SUBTECHNIQUE_OF]->(p:Technique)
CALL (t) {
  OPTIONAL MATCH (t)-[:IN_TACTIC]->(ta:Tactic)
  OPTIONAL MATCH (:Matrix)-[o:HAS_TACTIC]->(ta)
  WITH ta, min(o.order) AS ord
  ORDER BY ord
  RETURN collect(ta.shortname) AS tactics, collect(ta.name) AS tactic_names,
         collect(ord) AS tactic_orders
}
RETURN t.attack_id AS technique_id, t.name AS name, t.is_subtechnique AS is_subtechnique,
       p.attack_id AS parent_id, p.name AS parent_name, tactics, tactic_names, tactic_orders,
       t.platforms AS platforms, t.domains AS domains, t.url AS url
