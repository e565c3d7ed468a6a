// name: group_info
// doc: One group's own fields.
// params: group_id
// example: {"group_id": "G0016"}
MATCH (g:Group {attack_id: $group_id})
RETURN g.attack_id AS group_id, g.name AS name, g.aliases AS aliases, g.description AS description,
       g.url AS url, g.domains AS domains, g.created AS created, g.modified AS modified
