// name: group_lookup
// doc: The groups an analyst's words may name, through indexes: by ATT&CK id (with the group that replaced a revoked one), by name (name_key: as names are compared) and, for the texts that are not one current group's name, by full-text phrase on names and aliases (Lucene phrases, one per text, e.g. name:"cozy bear" OR aliases_text:"cozy bear"). A superset of the exact matches, which the caller picks (queries/resolve.py). The queries that answer for groups named by words carry the same lookup (the groups_named block).
// params: words
// example: {"words": {"ids": [], "phrases": ["(name:\"cozy bear\" OR aliases_text:\"cozy bear\")"], "texts": ["cozy bear"]}}
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
UNWIND candidates AS c
RETURN c.attack_id AS attack_id, c.name AS name, c.aliases AS aliases, c.revoked AS revoked,
       c.deprecated AS deprecated, c.replaced_by AS replaced_by
ORDER BY attack_id
