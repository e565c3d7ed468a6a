// name: releases
// doc: The ATT&CK releases loaded, one per domain, with where they came from and their counts.
// params: limit
// example: {"limit": 10}
MATCH (r:Release)
RETURN r.domain AS domain, r.version AS version, r.spec_version AS spec_version,
       r.source AS source, r.sha256 AS sha256, r.nodes AS nodes,
       r.relationships AS relationships, r.counts AS counts, r.loaded_at AS loaded_at
ORDER BY domain
LIMIT $limit
