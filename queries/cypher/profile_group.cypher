// name: profile_group
// doc: Everything a group's profile shows, one row per group: the group's own fields; every technique it is tied to — how we know (direct USES, via its software (its own or its campaigns'), via campaigns attributed to it, with ATT&CK's procedure text and citations), its parent, tactics in matrix order, platforms and the STIX ids of the mitigations that address it (as the load stored them); its software and campaigns (first/last seen); and those mitigations (id, name, URL). Techniques and their evidence rows come as lists of fields (named in the comments below: queries/actors.py TECHNIQUE_FIELDS and EVIDENCE_FIELDS), not maps. For the ATT&CK groups and clusters of the organisation (by STIX id) in group_ids, a row each. The groups may be named by words instead (words: ATT&CK ids, Lucene phrases, lower-case texts): the groups_named block looks them up in the same query, returns the candidates and its guess (candidates, guessed), and the caller resolves the words from the candidates and checks the guess (queries/resolve.py read_for_groups).
// params: group_ids, words, kinds, domain, platforms, limit
// example: {"group_ids": [], "words": {"ids": [], "phrases": ["(name:\"cozy bear\" OR aliases_text:\"cozy bear\")"], "texts": ["cozy bear"]}, "kinds": ["direct", "software", "campaign"], "domain": "enterprise-attack", "platforms": [], "limit": 1000}
// paths: begin groups_named (the groups an analyst's words may name - ATT&CK ids, names by
// their name_key, full-text phrases on names and aliases, as queries/resolve.py builds them -
// looked up in the query that answers for them: one round trip; one definition, copied word for
// word)
CALL () {
  CALL () {
    UNWIND $words.ids AS id
    MATCH (c:Group {attack_id: id})
    RETURN c
    UNION
    // the group that replaced a revoked one
    UNWIND $words.ids AS id
    MATCH (:Group {attack_id: id})-[:REVOKED_BY]->(c:Group)
    RETURN c
    UNION
    // a text that is a group's name as names are compared (name_key: trimmed, lower-case,
    // white space collapsed)
    UNWIND $words.texts AS text
    MATCH (c:Group {name_key: text})
    RETURN c
    UNION
    // the texts that are not one current group's name (aliases, shared names, misspellings,
    // a graph loaded before name_key) by full-text phrase (words.phrases: one per text) on
    // names and aliases, 100 texts a Lucene query (2 clauses each; Lucene takes 1,024)
    WITH [i IN range(0, size($words.texts) - 1)
          WHERE COUNT { MATCH (g:Group {name_key: $words.texts[i]})
                        WHERE NOT coalesce(g.revoked, false)
                          AND NOT coalesce(g.deprecated, false) } <> 1
          | $words.phrases[i]] AS rest
    WHERE size(rest) > 0  // range(0, -1, 100) is [0]
    UNWIND range(0, size(rest) - 1, 100) AS k
    WITH reduce(q = '', p IN rest[k..k + 100] | q + CASE q WHEN '' THEN '' ELSE ' OR ' END + p)
         AS phrase
    CALL db.index.fulltext.queryNodes('group_text', phrase) YIELD node
    RETURN node AS c
  }
  OPTIONAL MATCH (c)-[:REVOKED_BY]->(r:Group)
  WITH c, r
  ORDER BY c.attack_id
  WITH collect({c: c, replaced_by: r.attack_id}) AS found
  // candidates: what the caller resolves the words from (queries/resolve.py); guessed: the
  // groups they resolve to when they are what they look like - an id's group (the group that
  // replaced it when revoked), a current group whose name or an alias is the words - which the
  // caller checks against its resolution before it reads the answer
  RETURN [x IN found | {attack_id: x.c.attack_id, name: x.c.name, aliases: x.c.aliases,
                        revoked: x.c.revoked, deprecated: x.c.deprecated,
                        replaced_by: x.replaced_by}] AS candidates,
         [x IN found WHERE x.c.attack_id IN $words.ids
            | CASE WHEN x.c.revoked AND x.replaced_by IS NOT NULL THEN x.replaced_by
                   ELSE x.c.attack_id END]
         + [x IN found WHERE NOT coalesce(x.c.revoked, false)
              AND NOT coalesce(x.c.deprecated, false)
              AND (toLower(x.c.name) IN $words.texts
                   OR any(a IN coalesce(x.c.aliases, []) WHERE toLower(a) IN $words.texts))
            | x.c.attack_id] AS guessed
}
// paths: end
CALL (guessed) {
  MATCH (g:Group)
  WHERE g.attack_id IN $group_ids + guessed
  RETURN g
  UNION
  // a cluster of the organisation, by STIX id (a dynamic label: no warning before an import)
  UNWIND $group_ids AS cid
  WITH cid
  WHERE cid STARTS WITH 'intrusion-set--' OR cid STARTS WITH 'threat-actor--'
  CALL (cid) {
    MATCH (g:$('OrgCluster') {stix_id: cid})
    RETURN g
  }
  RETURN g
}
CALL (g) {
  // paths: begin actor_techniques (one definition of the path kinds: queries/catalog.py checks
  // that every query carrying this block carries it word for word)
  CALL (g) {
    // direct: the actor USES the technique
    MATCH (g)-[u:USES]->(t:Technique)
    WHERE 'direct' IN $kinds AND NOT u.revoked AND NOT u.deprecated
    RETURN t, 'direct' AS kind, null AS via_id, null AS via_name, u
    UNION ALL
    // campaign: a campaign attributed to the actor uses it
    MATCH (g)<-[a:ATTRIBUTED_TO]-(c)-[u:USES]->(t:Technique)
    WHERE 'campaign' IN $kinds
      AND (c:Campaign OR ('OrgCluster' IN labels(g) AND 'OrgCampaign' IN labels(c)))
      AND NOT a.revoked AND NOT a.deprecated AND NOT c.revoked AND NOT c.deprecated
      AND NOT u.revoked AND NOT u.deprecated
    RETURN t, 'campaign' AS kind, coalesce(c.attack_id, c.stix_id) AS via_id, c.name AS via_name, u
    UNION ALL
    // software: software the actor uses, or that a campaign attributed to it uses, uses it
    CALL (g) {
      MATCH (g)-[gs:USES]->(s)
      WHERE 'software' IN $kinds
        AND (s:Software OR ('OrgCluster' IN labels(g) AND 'OrgSoftware' IN labels(s)))
        AND NOT gs.revoked AND NOT gs.deprecated
      RETURN s
      UNION
      MATCH (g)<-[a:ATTRIBUTED_TO]-(c)-[cs:USES]->(s)
      WHERE 'software' IN $kinds
        AND (c:Campaign OR ('OrgCluster' IN labels(g) AND 'OrgCampaign' IN labels(c)))
        AND (s:Software OR ('OrgCluster' IN labels(g) AND 'OrgSoftware' IN labels(s)))
        AND NOT a.revoked AND NOT a.deprecated AND NOT c.revoked AND NOT c.deprecated
        AND NOT cs.revoked AND NOT cs.deprecated
      RETURN s
    }
    MATCH (s)-[u:USES]->(t:Technique)
    WHERE NOT s.revoked AND NOT s.deprecated AND NOT u.revoked AND NOT u.deprecated
    RETURN t, 'software' AS kind, coalesce(s.attack_id, s.stix_id) AS via_id, s.name AS via_name, u
  }
  WITH *
  WHERE NOT t.revoked AND NOT t.deprecated AND coalesce(t.in_release, true)
    AND ($domain IS NULL OR $domain IN t.domains)
  // paths: end
  WITH t, kind, via_id, via_name, u
  WHERE size($platforms) = 0 OR any(p IN t.platforms WHERE p IN $platforms)
  WITH t, kind, via_id, via_name, u
  ORDER BY kind, via_id
  // Techniques and their evidence rows as lists, not maps, their fields in the order of
  // queries/actors.py's TECHNIQUE_FIELDS and EVIDENCE_FIELDS: a map repeats its keys in every
  // row on the wire (APT29: 249 techniques, 725 evidence rows; 2 ms of a 17-ms query).
  // evidence: [kind, via_id, via_name, procedure, citations, citation_urls]
  WITH t, collect([kind, via_id, via_name, u.description, coalesce(u.citations, []),
                   coalesce(u.citation_urls, [])]) AS evidence
  // as technique_details: [technique_id, name, is_subtechnique, parent_id, parent_name,
  // tactics, tactic_names, tactic_orders (tactics in matrix order, as the load stored them),
  // platforms, url, evidence, mitigation_ids]
  RETURN collect([t.attack_id, t.name, t.is_subtechnique, t.rank_parent_id, t.rank_parent_name,
                  t.rank_tactics, t.rank_tactic_names, t.rank_tactic_orders, t.platforms, t.url,
                  evidence, t.rank_mitigation_ids]) AS techniques,
         collect(t.rank_mitigation_ids) AS mitigation_ids
}
CALL (g) {
  // as group_software
  CALL (g) {
    MATCH (g)-[u:USES]->(s:Software)
    WHERE NOT u.revoked AND NOT u.deprecated
    RETURN s, 'direct' AS kind, null AS via_id, u.description AS procedure
    UNION ALL
    MATCH (g)<-[:ATTRIBUTED_TO]-(c:Campaign)-[u:USES]->(s:Software)
    WHERE NOT c.revoked AND NOT c.deprecated AND NOT u.revoked AND NOT u.deprecated
    RETURN s, 'campaign' AS kind, c.attack_id AS via_id, u.description AS procedure
    UNION ALL
    // a cluster's own software, and its campaigns' software
    MATCH (g)-[u:USES]->(s)
    WHERE 'OrgCluster' IN labels(g) AND 'OrgSoftware' IN labels(s)
      AND NOT u.revoked AND NOT u.deprecated
    RETURN s, 'direct' AS kind, null AS via_id, u.description AS procedure
    UNION ALL
    MATCH (g)<-[:ATTRIBUTED_TO]-(c)-[u:USES]->(s)
    WHERE 'OrgCluster' IN labels(g) AND 'OrgCampaign' IN labels(c)
      AND (s:Software OR 'OrgSoftware' IN labels(s)) AND NOT c.revoked AND NOT c.deprecated
      AND NOT u.revoked AND NOT u.deprecated
    RETURN s, 'campaign' AS kind, c.stix_id AS via_id, u.description AS procedure
  }
  WITH s, kind, via_id, procedure WHERE NOT s.revoked AND NOT s.deprecated
  WITH coalesce(s.attack_id, s.stix_id) AS software_id, s.name AS name,
       CASE WHEN s:Malware OR properties(s)['software_type'] = 'malware' THEN 'malware'
            ELSE 'tool' END AS type,
       collect(DISTINCT kind) AS kinds, [v IN collect(DISTINCT via_id) WHERE v IS NOT NULL] AS campaigns,
       head(collect(procedure)) AS procedure
  ORDER BY software_id
  LIMIT $limit
  RETURN collect({software_id: software_id, name: name, type: type, kinds: kinds,
                  campaigns: campaigns, procedure: procedure}) AS software
}
CALL (g) {
  // as group_campaigns
  MATCH (g)<-[a:ATTRIBUTED_TO]-(c)
  WHERE (c:Campaign OR ('OrgCluster' IN labels(g) AND 'OrgCampaign' IN labels(c)))
    AND NOT c.revoked AND NOT c.deprecated AND NOT a.revoked AND NOT a.deprecated
  WITH c, a
  ORDER BY c.first_seen, coalesce(c.attack_id, c.stix_id)
  LIMIT $limit
  RETURN collect({campaign_id: coalesce(c.attack_id, c.stix_id), name: c.name,
                  first_seen: c.first_seen, last_seen: c.last_seen,
                  attribution: a.description}) AS campaigns
}
CALL (mitigation_ids) {
  // the mitigations that address those techniques (each technique's, as the load stored them)
  UNWIND mitigation_ids AS ids
  UNWIND ids AS mid
  WITH DISTINCT mid
  MATCH (m:AttackObject {stix_id: mid})
  WHERE m:Mitigation AND NOT m.revoked AND NOT m.deprecated
  RETURN collect({stix_id: mid, mitigation_id: m.attack_id, name: m.name, url: m.url})
         AS mitigations
}
RETURN coalesce(g.attack_id, g.stix_id) AS group_id, g.name AS name, g.aliases AS aliases,
       g.description AS description, g.url AS url, techniques, software, campaigns, mitigations,
       candidates, guessed
