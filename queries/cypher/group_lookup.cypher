// name: group_lookup
// doc: The groups an analyst's words may name, through indexes: by ATT&CK id (with the group that replaced a revoked one) and by full-text phrase on names and aliases (Lucene phrases, e.g. name:"cozy bear" OR aliases_text:"cozy bear"). A superset of the exact matches, which the caller picks (queries/resolve.py).
// params: ids, phrases
// example: {"ids": ["G0016"], "phrases": ["name:\"cozy bear\" OR aliases_text:\"cozy bear\""]}
CALL () {
  UNWIND $ids AS id
  MATCH (g:Group {attack_id: id})
  RETURN g
  UNION
  UNWIND $ids AS id
  MATCH (:Group {attack_id: id})-[:REVOKED_BY]->(g:Group)
  RETURN g
  UNION
  UNWIND $phrases AS phrase
  CALL db.index.fulltext.queryNodes('group_text', phrase) YIELD node
  RETURN node AS g
}
OPTIONAL MATCH (g)-[:REVOKED_BY]->(r:Group)
RETURN g.attack_id AS attack_id, g.name AS name, g.aliases AS aliases,
       g.revoked AS revoked, g.deprecated AS deprecated, r.attack_id AS replaced_by
ORDER BY attack_id
