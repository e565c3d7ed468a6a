// name: technique_evidence
// doc: Everything known about one current technique, for the matrix page's evidence panel: tactics in matrix order, parent and sub-techniques; the groups that use it (directly or through a campaign attributed to them) and the software that does, with ATT&CK's procedure text and citations; the v18 detection strategies -> analytics -> log sources -> data components and the v17 data components that detect it; the mitigations with how each applies. At most $limit uses per list.
// params: technique_id, limit
// example: {"technique_id": "T1059.001", "limit": 500}
MATCH (t:Technique {attack_id: $technique_id})
WHERE NOT t.revoked AND NOT t.deprecated
OPTIONAL MATCH (t)-[:SUBTECHNIQUE_OF]->(p:Technique)
CALL (t) {
  OPTIONAL MATCH (t)-[:IN_TACTIC]->(ta:Tactic)<-[o:HAS_TACTIC]-(m:Matrix)
  WHERE NOT m.revoked AND NOT m.deprecated AND NOT ta.revoked AND NOT ta.deprecated
  WITH ta, min(o.order) AS ord
  ORDER BY ord
  RETURN [x IN collect(CASE WHEN ta IS NOT NULL THEN
            {tactic_id: ta.attack_id, shortname: ta.shortname, name: ta.name} END)
          WHERE x IS NOT NULL] AS tactics
}
CALL (t) {
  OPTIONAL MATCH (s:Technique)-[:SUBTECHNIQUE_OF]->(t)
  WHERE NOT s.revoked AND NOT s.deprecated AND coalesce(s.in_release, true)
  WITH s ORDER BY s.attack_id
  RETURN [x IN collect(CASE WHEN s IS NOT NULL THEN
            {technique_id: s.attack_id, name: s.name} END) WHERE x IS NOT NULL] AS subtechniques
}
CALL (t) {
  CALL (t) {
    MATCH (g:Group)-[u:USES]->(t)
    WHERE NOT g.revoked AND NOT g.deprecated AND NOT u.revoked AND NOT u.deprecated
    RETURN g, 'direct' AS kind, null AS via_id, null AS via_name, null AS via_url, u
    UNION ALL
    MATCH (g:Group)<-[a:ATTRIBUTED_TO]-(c:Campaign)-[u:USES]->(t)
    WHERE NOT g.revoked AND NOT g.deprecated AND NOT a.revoked AND NOT a.deprecated
      AND NOT c.revoked AND NOT c.deprecated AND NOT u.revoked AND NOT u.deprecated
    RETURN g, 'campaign' AS kind, c.attack_id AS via_id, c.name AS via_name, c.url AS via_url, u
  }
  WITH g, kind, via_id, via_name, via_url, u
  ORDER BY g.attack_id, kind, via_id
  RETURN collect({group_id: g.attack_id, name: g.name, url: g.url, kind: kind, via_id: via_id,
                  via_name: via_name, via_url: via_url, procedure: u.description,
                  citations: coalesce(u.citations, []),
                  citation_urls: coalesce(u.citation_urls, [])})[..$limit] AS groups
}
CALL (t) {
  OPTIONAL MATCH (s:Software)-[u:USES]->(t)
  WHERE NOT s.revoked AND NOT s.deprecated AND NOT u.revoked AND NOT u.deprecated
  WITH s, u ORDER BY s.attack_id
  RETURN [x IN collect(CASE WHEN s IS NOT NULL THEN
            {software_id: s.attack_id, name: s.name, url: s.url,
             type: CASE WHEN s:Malware THEN 'malware' ELSE 'tool' END,
             procedure: u.description, citations: coalesce(u.citations, []),
             citation_urls: coalesce(u.citation_urls, [])} END)
          WHERE x IS NOT NULL][..$limit] AS software
}
CALL (t) {
  OPTIONAL MATCH (t)<-[r:DETECTS]-(d:DetectionStrategy)
  WHERE NOT r.revoked AND NOT r.deprecated AND NOT d.revoked AND NOT d.deprecated
  OPTIONAL MATCH (d)-[:HAS_ANALYTIC]->(a:Analytic)
  WHERE NOT a.revoked AND NOT a.deprecated
  OPTIONAL MATCH (a)-[:USES_LOG_SOURCE]->(l:LogSource)-[:OF_DATA_COMPONENT]->(dc:DataComponent)
  WHERE NOT dc.revoked AND NOT dc.deprecated
  WITH d, a, l, dc ORDER BY d.attack_id, a.attack_id, l.name, l.channel
  WITH d, a, [x IN collect(CASE WHEN l IS NOT NULL THEN
                {name: l.name, channel: l.channel, data_component_id: dc.attack_id,
                 data_component: dc.name} END) WHERE x IS NOT NULL] AS log_sources
  WITH d, [x IN collect(CASE WHEN a IS NOT NULL THEN
             {analytic_id: a.attack_id, url: a.url, platforms: coalesce(a.platforms, []),
              log_sources: log_sources} END) WHERE x IS NOT NULL] AS analytics
  RETURN [x IN collect(CASE WHEN d IS NOT NULL THEN
            {strategy_id: d.attack_id, name: d.name, url: d.url, analytics: analytics} END)
          WHERE x IS NOT NULL] AS detection_strategies
}
CALL (t) {
  OPTIONAL MATCH (t)<-[r:DETECTS]-(dc:DataComponent)
  WHERE NOT r.revoked AND NOT r.deprecated AND NOT dc.revoked AND NOT dc.deprecated
  WITH dc ORDER BY dc.attack_id
  RETURN [x IN collect(CASE WHEN dc IS NOT NULL THEN
            {data_component_id: dc.attack_id, name: dc.name, url: dc.url} END)
          WHERE x IS NOT NULL] AS data_components
}
CALL (t) {
  OPTIONAL MATCH (m:Mitigation)-[r:MITIGATES]->(t)
  WHERE NOT m.revoked AND NOT m.deprecated AND NOT r.revoked AND NOT r.deprecated
  WITH m, r ORDER BY m.attack_id
  RETURN [x IN collect(CASE WHEN m IS NOT NULL THEN
            {mitigation_id: m.attack_id, name: m.name, url: m.url, how: r.description} END)
          WHERE x IS NOT NULL] AS mitigations
}
RETURN t.attack_id AS technique_id, t.name AS name, t.description AS description, t.url AS url,
       coalesce(t.is_subtechnique, false) AS is_subtechnique, p.attack_id AS parent_id,
       p.name AS parent_name, coalesce(t.platforms, []) AS platforms,
       coalesce(t.domains, []) AS domains, tactics, subtechniques, groups, software,
       detection_strategies, data_components, mitigations
LIMIT $limit
