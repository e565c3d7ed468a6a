// name: group_campaigns
// doc: Campaigns attributed to a group, with first and last seen.
// params: group_id, limit
// example: {"group_id": "G0016", "limit": 10}
MATCH (g:Group {attack_id: $group_id})<-[a:ATTRIBUTED_TO]-(c:Campaign)
WHERE NOT c.revoked AND NOT c.deprecated AND NOT a.revoked AND NOT a.deprecated
RETURN c.attack_id AS campaign_id, c.name AS name, c.first_seen AS first_seen,
       c.last_seen AS last_seen, a.description AS attribution
ORDER BY first_seen, campaign_id
LIMIT $limit
