// name: release_tactic_states
// doc: Tactics of one domain's loaded release (current or retired), with ATT&CK id, name and shortname: what the release diff compares tactic by tactic.
// params: domain, limit
// example: {"domain": "enterprise-attack", "limit": 100}
MATCH (t:Tactic)
WHERE $domain IN t.loaded_domains AND t.in_release
RETURN t.stix_id AS stix_id, t.attack_id AS attack_id, t.name AS name, t.shortname AS shortname,
       t.revoked AS revoked, t.deprecated AS deprecated
ORDER BY stix_id
LIMIT $limit
