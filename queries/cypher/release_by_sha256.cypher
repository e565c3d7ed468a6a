// name: release_by_sha256
// doc: The loaded releases whose bundle had these bytes (SHA-256 of the decompressed bundle): a load of the same bytes has nothing to write.
// params: sha256
// example: {"sha256": "0000000000000000000000000000000000000000000000000000000000000000"}
MATCH (r:Release)
WHERE r.sha256 = $sha256
RETURN r.domain AS domain, r.version AS version, r.spec_version AS spec_version,
       r.source AS source, r.sha256 AS sha256, r.nodes AS nodes,
       r.relationships AS relationships, r.counts AS counts, r.load_format AS load_format
ORDER BY domain
