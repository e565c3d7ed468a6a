// name: release_sync_state
// doc: The loaded release of one domain with every property of its Release node: where it came from and, for a TAXII load, the server's last date_added (taxii_added_last, where the next sync starts).
// params: domain
// example: {"domain": "enterprise-attack"}
MATCH (r:Release {domain: $domain})
RETURN properties(r) AS release
