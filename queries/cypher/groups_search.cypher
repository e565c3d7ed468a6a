// name: groups_search
// doc: Groups ranked by a full-text match on their name, aliases and description (sectors, countries, ...).
// params: text, limit
// example: {"text": "financial", "limit": 5}
CALL db.index.fulltext.queryNodes('group_text', $text) YIELD node, score
WHERE NOT node.revoked AND NOT node.deprecated
RETURN node.attack_id AS group_id, node.name AS name, node.aliases AS aliases,
       round(score, 3) AS score, node.domains AS domains,
       left(node.description, 300) AS description
ORDER BY score DESC, group_id
LIMIT $limit
