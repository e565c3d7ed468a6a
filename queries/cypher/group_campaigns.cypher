// name: group_campaigns
// doc: Campaigns attributed to a group (or to a cluster of the organisation, by STIX id), with first and last seen.
// params: group_id, limit
// example: {"group_id": "G0016", "limit": 10}
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
MATCH (g)<-[a:ATTRIBUTED_TO]-(c)
WHERE (c:Campaign OR ('OrgCluster' IN labels(g) AND 'OrgCampaign' IN labels(c)))
  AND NOT c.revoked AND NOT c.deprecated AND NOT a.revoked AND NOT a.deprecated
RETURN coalesce(c.attack_id, c.stix_id) AS campaign_id, c.name AS name, c.first_seen AS first_seen,
       c.last_seen AS last_seen, a.description AS attribution
ORDER BY first_seen, campaign_id
LIMIT $limit
