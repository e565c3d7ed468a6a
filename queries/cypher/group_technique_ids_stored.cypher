// name: group_technique_ids_stored
// doc: Every current ATT&CK group's technique ids as the last release load stored them on the group (group_technique_ids for all groups and domains, by direct and campaign paths; with include_software, software too): what a similarity over every group reads. Null lists: a graph loaded before they were stored (similar_groups then asks group_technique_ids).
// params: include_software
// example: {"include_software": false}
MATCH (g:Group)
WHERE NOT g.revoked AND NOT g.deprecated
RETURN g.attack_id AS group_id, g.name AS name,
       CASE WHEN $include_software THEN g.rank_technique_ids_software
            ELSE g.rank_technique_ids END AS techniques
ORDER BY group_id
