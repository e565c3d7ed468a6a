// name: group_technique_sets
// doc: For the given groups (or all when empty), the set of techniques each uses directly, via campaigns and optionally via software.
// params: group_ids, include_software, domain
// example: {"group_ids": ["G0016"], "include_software": true, "domain": null}
MATCH (g:Group)
WHERE (size($group_ids) = 0 OR g.attack_id IN $group_ids) AND NOT g.revoked AND NOT g.deprecated
CALL (g) {
  MATCH (g)-[u:USES]->(t:Technique)
  WHERE NOT u.revoked AND NOT u.deprecated
  RETURN t, 'direct' AS kind
  UNION ALL
  MATCH (g)<-[a:ATTRIBUTED_TO]-(c:Campaign)-[u:USES]->(t:Technique)
  WHERE NOT a.revoked AND NOT a.deprecated AND NOT c.revoked AND NOT c.deprecated
    AND NOT u.revoked AND NOT u.deprecated
  RETURN t, 'campaign' AS kind
  UNION ALL
  CALL (g) {
    MATCH (g)-[gs:USES]->(s:Software)
    WHERE $include_software AND NOT gs.revoked AND NOT gs.deprecated
    RETURN s
    UNION
    MATCH (g)<-[a:ATTRIBUTED_TO]-(c:Campaign)-[cs:USES]->(s:Software)
    WHERE $include_software AND NOT a.revoked AND NOT a.deprecated AND NOT c.revoked
      AND NOT c.deprecated AND NOT cs.revoked AND NOT cs.deprecated
    RETURN s
  }
  MATCH (s)-[u:USES]->(t:Technique)
  WHERE NOT s.revoked AND NOT s.deprecated AND NOT u.revoked AND NOT u.deprecated
  RETURN t, 'software' AS kind
}
WITH g, t, kind
WHERE NOT t.revoked AND NOT t.deprecated AND ($domain IS NULL OR $domain IN t.domains)
WITH g, t.attack_id AS technique_id, collect(DISTINCT kind) AS kinds
RETURN g.attack_id AS group_id, g.name AS name,
       collect({technique_id: technique_id, kinds: kinds}) AS techniques
ORDER BY group_id
