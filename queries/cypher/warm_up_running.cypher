// name: warm_up_running
// doc: Whether a start-up warm-up (`ttpgraph neo4j warm`) is planning the catalog now: it holds a transaction tagged with this app name open while it runs.
// params: app
// example: {"app": "ttpgraph-warm-up"}
SHOW TRANSACTIONS YIELD metaData
WHERE metaData.app = $app
RETURN count(*) > 0 AS running
