// name: group_technique_evidence
// doc: Every technique a group is tied to and how we know: direct USES, via its software (its own or its campaigns'), via campaigns attributed to it.
// params: group_id, kinds, domain, platforms
// example: {"group_id": "G0016", "kinds": ["direct", "software", "campaign"], "domain": "enterprise-attack", "platforms": []}
MATCH (g:Group {attack_id: $group_id})
CALL (g) {
  MATCH (g)-[u:USES]->(t:Technique)
  WHERE NOT u.revoked AND NOT u.deprecated
  RETURN t, 'direct' AS kind, null AS via_id, null AS via_name, u
  UNION ALL
  CALL (g) {
    MATCH (g)-[gs:USES]->(s:Software)
    WHERE NOT gs.revoked AND NOT gs.deprecated
    RETURN s
    UNION
    MATCH (g)<-[a:ATTRIBUTED_TO]-(c:Campaign)-[cs:USES]->(s:Software)
    WHERE NOT a.revoked AND NOT a.deprecated AND NOT c.revoked AND NOT c.deprecated
      AND NOT cs.revoked AND NOT cs.deprecated
    RETURN s
  }
  MATCH (s)-[u:USES]->(t:Technique)
  WHERE NOT s.revoked AND NOT s.deprecated AND NOT u.revoked AND NOT u.deprecated
  RETURN t, 'software' AS kind, s.attack_id AS via_id, s.name AS via_name, u
  UNION ALL
  MATCH (g)<-[a:ATTRIBUTED_TO]-(c:Campaign)-[u:USES]->(t:Technique)
  WHERE NOT a.revoked AND NOT a.deprecated AND NOT c.revoked AND NOT c.deprecated
    AND NOT u.revoked AND NOT u.deprecated
  RETURN t, 'campaign' AS kind, c.attack_id AS via_id, c.name AS via_name, u
}
WITH t, kind, via_id, via_name, u
WHERE NOT t.revoked AND NOT t.deprecated AND kind IN $kinds
  AND ($domain IS NULL OR $domain IN t.domains)
  AND (size($platforms) = 0 OR any(p IN t.platforms WHERE p IN $platforms))
RETURN t.attack_id AS technique_id, kind, via_id, via_name,
       u.description AS procedure, u.citations AS citations, u.citation_urls AS citation_urls
ORDER BY technique_id, kind, via_id
