// name: release_tactics
// doc: Every tactic by domain and shortname (how a technique's kill chain phase names its tactic).
// params: limit
// example: {"limit": 100}
MATCH (t:Tactic)
UNWIND coalesce(t.domains, t.loaded_domains, []) AS domain
RETURN domain, t.shortname AS shortname, t.stix_id AS stix_id
ORDER BY domain, shortname
LIMIT $limit
