// name: technique_details
// doc: Name, parent, tactics (in matrix order: current tactics of current matrices, as each ATT&CK load stores them on the technique, loader/technique_facts.py) and platforms of the given techniques.
// params: technique_ids
// example: {"technique_ids": ["T1059.001", "T1055.011"]}
UNWIND $technique_ids AS tid
MATCH (t:Technique {attack_id: tid})
WHERE NOT t.revoked AND NOT t.deprecated
RETURN t.attack_id AS technique_id, t.name AS name, t.is_subtechnique AS is_subtechnique,
       t.rank_parent_id AS parent_id, t.rank_parent_name AS parent_name,
       t.rank_tactics AS tactics, t.rank_tactic_names AS tactic_names,
       t.rank_tactic_orders AS tactic_orders, t.platforms AS platforms, t.domains AS domains,
       t.url AS url
