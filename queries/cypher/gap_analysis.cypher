// name: gap_analysis
// doc: A threat model in one row, for ranking its gaps: the techniques a set of groups (and clusters of the organisation, by STIX id) uses — directly, through campaigns attributed to them, optionally through software (their own and their campaigns'); filtered by domain and platforms (lower-case) — each with who uses it and how, and what ranks it (name, parent, tactics in matrix order with the matrix width, platforms, ATT&CK detection strategies and analytics (v18) or data components (v17), mitigations, how many current groups use it: facts the release load stored on the technique); plus how many current groups there are, the inventory's name (null when there is none), the releases loaded, the tactics of the current matrices, and the inventory's rules on each technique as its import stored them (coverage_stored false when a release was loaded since: coverage_rules_for_techniques computes them then). The techniques come as lists of fields (named in the comment above the RETURN: queries/coverage/gaps.py TECHNIQUE_FIELDS) with their ids beside them (technique_ids). The groups may be named by words instead (words: ATT&CK ids, Lucene phrases, lower-case texts): the groups_named block looks them up in the same query, returns the candidates and its guess (candidates, guessed), and the caller resolves the words from the candidates and checks the guess (queries/resolve.py read_for_groups).
// params: group_ids, words, kinds, domain, platforms, inventory
// example: {"group_ids": ["G0016", "G0007"], "words": {"ids": [], "phrases": ["(name:\"cozy bear\" OR aliases_text:\"cozy bear\")"], "texts": ["cozy bear"]}, "kinds": ["direct", "campaign"], "domain": "enterprise-attack", "platforms": [], "inventory": "example"}
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
CALL () {
  OPTIONAL MATCH (i:Inventory {name: $inventory})
  RETURN i.name AS inventory, i.releases AS inventory_releases
}
CALL () {
  MATCH (r:Release)
  WITH r ORDER BY r.domain
  RETURN collect({domain: r.domain, version: r.version}) AS releases
}
CALL () {
  MATCH (m:Matrix)-[o:HAS_TACTIC]->(ta:Tactic)
  WHERE NOT m.revoked AND NOT m.deprecated AND NOT ta.revoked AND NOT ta.deprecated
  WITH m, o, ta ORDER BY m.attack_id, o.order
  RETURN collect({domain: m.attack_id, tactic_id: ta.attack_id, name: ta.name,
                  shortname: ta.shortname, order: o.order}) AS tactics
}
CALL () {
  MATCH (g:Group) WHERE NOT g.revoked AND NOT g.deprecated
  RETURN count(g) AS total_groups
}
CALL (guessed) {
  // the threat model: the same paths as coverage_threat_model
  CALL (guessed) {
    MATCH (g:Group)
    WHERE g.attack_id IN $group_ids + guessed AND NOT g.revoked AND NOT g.deprecated
    RETURN g, g.attack_id AS gid
    UNION
    // clusters of the organisation, by STIX id (a dynamic label: no warning before an import)
    UNWIND $group_ids AS cid
    WITH cid WHERE cid STARTS WITH 'intrusion-set--' OR cid STARTS WITH 'threat-actor--'
    CALL (cid) {
      MATCH (g:$('OrgCluster') {stix_id: cid})
      WHERE NOT g.revoked AND NOT g.deprecated
      RETURN g
    }
    RETURN g, cid AS gid
  }
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
  WITH gid, t, kind
  WHERE size($platforms) = 0
    OR any(p IN coalesce(t.platforms, []) WHERE toLower(p) IN $platforms)
  WITH t, gid AS group_id, collect(DISTINCT kind) AS kinds
  WITH t, collect({group_id: group_id, kinds: kinds}) AS actors
  // what ranks each technique: release-wide facts the load stored (loader/technique_facts.py)
  ORDER BY t.attack_id
  // each technique as a list, not a map (a map repeats its 19 keys in every row on the wire),
  // its fields in the order of queries/coverage/gaps.py's TECHNIQUE_FIELDS: [technique_id,
  // name, is_subtechnique, parent_id, parent_name, tactics, tactic_names, tactic_orders,
  // matrix_widths, tactic_domains, platforms, domains, url, detection_strategies, analytics,
  // data_components, mitigations, groups_using, actors]
  RETURN collect([
    t.attack_id, t.name, coalesce(t.is_subtechnique, false), t.rank_parent_id,
    t.rank_parent_name, t.rank_tactics, t.rank_tactic_names, t.rank_tactic_orders,
    t.rank_matrix_widths, t.rank_tactic_domains, coalesce(t.platforms, []), t.domains, t.url,
    t.rank_detection_strategies, t.rank_analytics, t.rank_data_components, t.rank_mitigations,
    CASE WHEN 'software' IN $kinds THEN t.rank_groups_using_software ELSE t.rank_groups_using END,
    actors
  ]) AS techniques,
         collect(t.attack_id) AS technique_ids
}
// the inventory's rules on those techniques, as its import stored them (TechniqueCoverage),
// while the releases they were computed against are loaded; coverage_stored false: after a
// release load, coverage_rules_for_techniques computes them from the rules' COVERS edges
CALL (technique_ids) {
  OPTIONAL MATCH (i:Inventory {name: $inventory})
  WITH i, COLLECT { MATCH (rel:Release) RETURN rel.domain + '@' + coalesce(rel.sha256, rel.version) } AS loaded
  WITH i, coalesce(size(loaded) = size(i.coverage_basis)
                   AND all(b IN loaded WHERE b IN i.coverage_basis), false) AS stored
  CALL (i, stored, technique_ids) {
    WITH i WHERE stored
    MATCH (i)-[:HAS_COVERAGE]->(c:TechniqueCoverage)
    WHERE c.technique_id IN technique_ids
    MATCH (t:AttackObject {stix_id: c.technique})
    WHERE NOT t.revoked AND NOT t.deprecated
    RETURN collect({technique_id: t.attack_id, rules: c.rules, rule_count: c.rule_count,
                    partial_rules: c.partial_rules, partial_rule_count: c.partial_rule_count,
                    via: c.via}) AS coverage
  }
  RETURN stored AS coverage_stored, coverage
}
RETURN inventory, inventory_releases, releases, tactics, total_groups, techniques,
       technique_ids, coverage_stored, coverage, candidates, guessed
