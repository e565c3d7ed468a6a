// name: browser_actors_between
// doc: Graph view: two actors and everything between them, shortest first: the techniques and software both use, techniques one reaches through its software or campaigns and the other uses, and campaigns linking them (paths of 2 to 3 hops, nothing revoked or deprecated, no third group).
// params: actor_a, actor_b, limit
// example: {"actor_a": "APT29", "actor_b": "APT28", "limit": 300}
MATCH (a:Group), (b:Group)
WHERE NOT a.revoked AND NOT a.deprecated AND NOT b.revoked AND NOT b.deprecated AND a <> b
  AND (a.attack_id = toUpper(trim($actor_a)) OR toLower(a.name) = toLower(trim($actor_a))
       OR any(alias IN coalesce(a.aliases, []) WHERE toLower(alias) = toLower(trim($actor_a))))
  AND (b.attack_id = toUpper(trim($actor_b)) OR toLower(b.name) = toLower(trim($actor_b))
       OR any(alias IN coalesce(b.aliases, []) WHERE toLower(alias) = toLower(trim($actor_b))))
MATCH p = (a)-[:USES|ATTRIBUTED_TO*2..3]-(b)
WHERE all(r IN relationships(p) WHERE NOT r.revoked AND NOT r.deprecated)
  AND all(n IN nodes(p)[1..-1] WHERE NOT n:Group AND NOT n.revoked AND NOT n.deprecated)
RETURN p
ORDER BY length(p)
LIMIT $limit
