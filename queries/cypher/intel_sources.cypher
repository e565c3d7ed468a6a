// name: intel_sources
// doc: Intelligence sources the organisation imported (exports, MISP events, incidents), newest first, with what each holds.
// params: limit
// example: {"limit": 50}
MATCH (s:IntelSource)
RETURN s.source AS source, s.flavour AS flavour, s.file AS file, s.sha256 AS sha256,
       s.imported_at AS imported_at, s.nodes AS nodes, s.relationships AS relationships,
       s.counts AS counts, coalesce(s.warnings, []) AS warnings
ORDER BY imported_at DESC, source
LIMIT $limit
