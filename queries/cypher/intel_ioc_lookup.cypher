// name: intel_ioc_lookup
// doc: One IOC in one round trip (what `ttpgraph ioc` and GET /ioc ask): the organisation's indicators and observables holding the value (case-insensitive; only the import each source answers with), in order of source, label and STIX id, at most limit; and the graph paths from them (intel_ioc_paths, the same paths, returns them as Neo4j paths for the Browser) as nodes and relationship directions, shortest first, at most limit, a technique's node carrying its tactics in matrix order.
// params: value, limit
// example: {"value": "203.0.113.7", "limit": 200}
// paths: begin ioc_holders (one definition: intel_ioc_paths.cypher carries it too)
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
WITH collect(ioc) AS iocs
CALL (iocs) {
  UNWIND iocs AS n
  WITH n, CASE WHEN n:Indicator THEN 'Indicator' ELSE 'Observable' END AS label
  ORDER BY n.source, label, n.stix_id
  LIMIT $limit
  RETURN collect({label: label, stix_id: n.stix_id, stix_type: n.stix_type, name: n.name,
                  value: n.value, pattern: n.pattern, source: n.source, score: n.score,
                  valid_from: n.valid_from, valid_until: n.valid_until,
                  description: n.description, revoked: n.revoked}) AS matches
}
CALL (iocs) {
  UNWIND iocs AS ioc
  // paths: begin ioc_paths (one definition: intel_ioc_paths.cypher carries it too)
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
  WITH p, [n IN nodes(p) | {label: [l IN labels(n) WHERE l IN
          ['Technique', 'Group', 'Software', 'Campaign', 'OrgCluster', 'OrgCampaign', 'OrgSoftware',
           'Report', 'Incident', 'Indicator', 'Observable', 'Sighting']][0],
          id: coalesce(n.attack_id, n.stix_id), name: n.name, source: n.source,
          tactics: CASE WHEN n:Technique THEN n.rank_tactics END}] AS nodes
  ORDER BY length(p), nodes[-1].id
  LIMIT $limit
  RETURN collect({nodes: nodes,
                  relationships: [i IN range(0, length(p) - 1) | {type: type(relationships(p)[i]),
                    forward: startNode(relationships(p)[i]) = nodes(p)[i]}]}) AS paths
}
RETURN matches, paths
