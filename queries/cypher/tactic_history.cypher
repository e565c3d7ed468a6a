// name: tactic_history
// doc: The tactics a domain's loaded release holds, with what earlier loads recorded of their history: former shortnames and names (renamed), and the old tactics whose techniques they took (split, merged).
// params: domain
// example: {"domain": "enterprise-attack"}
MATCH (t:Tactic)
WHERE $domain IN t.loaded_domains
RETURN t.stix_id AS stix_id, t.attack_id AS attack_id, t.shortname AS shortname, t.name AS name,
       coalesce(t.former_shortnames, []) AS former_shortnames,
       coalesce(t.former_names, []) AS former_names, coalesce(t.took_from, []) AS took_from
ORDER BY stix_id
