// name: browser_actor_graph
// doc: Graph view: one actor (ATT&CK id, name or alias) with the techniques and software it uses and the campaigns attributed to it; Neo4j Browser draws the software's own USES edges between them.
// params: actor, limit
// example: {"actor": "APT29", "limit": 300}
MATCH (g:Group)
WHERE NOT g.revoked AND NOT g.deprecated
  AND (g.attack_id = toUpper(trim($actor)) OR toLower(g.name) = toLower(trim($actor))
       OR any(alias IN coalesce(g.aliases, []) WHERE toLower(alias) = toLower(trim($actor))))
CALL (g) {
  MATCH p = (g)-[u:USES]->(x)
  WHERE (x:Technique OR x:Software) AND NOT u.revoked AND NOT u.deprecated
    AND NOT x.revoked AND NOT x.deprecated
  RETURN p, CASE WHEN x:Technique THEN 0 ELSE 1 END AS rank, x.attack_id AS key
  UNION ALL
  MATCH p = (g)<-[a:ATTRIBUTED_TO]-(c:Campaign)
  WHERE NOT a.revoked AND NOT a.deprecated AND NOT c.revoked AND NOT c.deprecated
  RETURN p, 2 AS rank, c.attack_id AS key
}
RETURN p
ORDER BY rank, key
LIMIT $limit
