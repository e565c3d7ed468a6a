// name: intel_ioc_paths
// doc: What an IOC tells, as graph paths: from the indicators and observables holding the value to the techniques, software, campaigns, groups and clusters they are linked to - directly, through indicators based on them, through software that talks to or drops them, through the reports and incidents that mention them - and their sightings. Relationships of MITRE are followed only from software and campaigns (their techniques, their attribution).
// params: value, limit
// example: {"value": "203.0.113.7", "limit": 200}
// paths: begin ioc_holders (one definition: intel_ioc_lookup.cypher carries it too)
CALL () {
  // an index seek on the first value; the few IOCs with several values are read apart
  MATCH (n:OrgObject {ioc_key: toLower(trim($value))})
  RETURN n
  UNION
  MATCH (n:OrgObject {ioc_multi: true})
  WHERE toLower(trim($value)) IN n.values
  RETURN n
}
WITH n AS ioc
WHERE (ioc:Indicator OR ioc:Observable)
  // only the import its source answers with (not one being written or removed)
  AND EXISTS { MATCH (s:IntelSource {source: ioc.source})
               WHERE coalesce(s.import_id, '') = coalesce(ioc.import_id, '') }
// paths: end
// paths: begin ioc_paths (one definition: intel_ioc_lookup.cypher carries it too)
CALL (ioc) {
  // what it indicates or is related to, then what that uses, is attributed to, is the same as
  MATCH p = (ioc)-[:INDICATES|RELATED_TO]-(x)-[:USES|ATTRIBUTED_TO|SAME_AS*0..2]->(y)
  RETURN p
  UNION
  // the same through the indicators based on it (or the observables it is based on)
  MATCH p = (ioc)-[:BASED_ON]-(:OrgObject)-[:INDICATES|RELATED_TO]-(x)
            -[:USES|ATTRIBUTED_TO|SAME_AS*0..2]->(y)
  RETURN p
  UNION
  // software that communicates with, drops, downloads or delivers it
  MATCH p = (ioc)<-[:COMMUNICATES_WITH|DROPS|DOWNLOADS|DELIVERS]-(x)
            -[:USES|ATTRIBUTED_TO|SAME_AS*0..2]->(y)
  RETURN p
  UNION
  // reports and incidents that mention it, and the techniques and actors they name
  MATCH p = (ioc)<-[:REFERS_TO]-(:OrgObject)-[:REFERS_TO|USES]->(y)
  WHERE NOT (y:Indicator OR y:Observable)
  RETURN p
  UNION
  MATCH p = (ioc)<-[:REFERS_TO]-(:OrgObject)
  RETURN p
  UNION
  MATCH p = (ioc)<-[:SIGHTING_OF]-(:Sighting)
  RETURN p
}
WITH p
WHERE all(r IN relationships(p) WHERE NOT coalesce(r.revoked, false)
          AND NOT coalesce(r.deprecated, false)
          AND (coalesce(r.org, false)
               OR (type(r) IN ['USES', 'ATTRIBUTED_TO']
                   AND any(l IN labels(startNode(r)) WHERE l IN ['Software', 'Campaign']))))
  AND all(n IN nodes(p) WHERE NOT coalesce(n.revoked, false) AND NOT coalesce(n.deprecated, false))
// paths: end
RETURN p,
       [n IN nodes(p) | {label: [l IN labels(n) WHERE l IN
          ['Technique', 'Group', 'Software', 'Campaign', 'OrgCluster', 'OrgCampaign', 'OrgSoftware',
           'Report', 'Incident', 'Indicator', 'Observable', 'Sighting']][0],
          id: coalesce(n.attack_id, n.stix_id), name: n.name, source: n.source}] AS nodes,
       [i IN range(0, length(p) - 1) | {type: type(relationships(p)[i]),
        forward: startNode(relationships(p)[i]) = nodes(p)[i]}] AS relationships
ORDER BY length(p), nodes[-1].id
LIMIT $limit
