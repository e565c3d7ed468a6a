// name: browser_technique_graph
// doc: Graph view: one technique (ATT&CK id) with its tactics, parent or sub-techniques, the mitigations and detection strategies for it, and the groups that use it directly.
// params: technique_id, limit
// example: {"technique_id": "T1059", "limit": 300}
MATCH (t:Technique {attack_id: toUpper(trim($technique_id))})
WHERE NOT t.revoked AND NOT t.deprecated
CALL (t) {
  MATCH p = (t)-[:IN_TACTIC]->(:Tactic)
  RETURN p, 0 AS rank
  UNION ALL
  MATCH p = (t)-[:SUBTECHNIQUE_OF]-(o:Technique)
  WHERE NOT o.revoked AND NOT o.deprecated
  RETURN p, 1 AS rank
  UNION ALL
  MATCH p = (t)<-[r:MITIGATES|DETECTS]-(o)
  WHERE NOT r.revoked AND NOT r.deprecated AND NOT o.revoked AND NOT o.deprecated
  RETURN p, 2 AS rank
  UNION ALL
  MATCH p = (t)<-[u:USES]-(o:Group)
  WHERE NOT u.revoked AND NOT u.deprecated AND NOT o.revoked AND NOT o.deprecated
  RETURN p, 3 AS rank
}
RETURN p
ORDER BY rank
LIMIT $limit
