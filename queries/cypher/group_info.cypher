// name: group_info
// doc: One group's own fields (an ATT&CK group, or a cluster of the organisation by STIX id).
// params: group_id
// example: {"group_id": "G0016"}
CALL () {
  MATCH (g:Group {attack_id: $group_id})
  RETURN g
  UNION
  // a cluster of the organisation, by STIX id (a dynamic label: no warning before an import)
  WITH $group_id AS cid
  WHERE cid STARTS WITH 'intrusion-set--' OR cid STARTS WITH 'threat-actor--'
  CALL (cid) {
    MATCH (g:$('OrgCluster') {stix_id: cid})
    RETURN g
  }
  RETURN g
}
RETURN coalesce(g.attack_id, g.stix_id) AS group_id, g.name AS name, g.aliases AS aliases, g.description AS description,
       g.url AS url, g.domains AS domains, g.created AS created, g.modified AS modified
