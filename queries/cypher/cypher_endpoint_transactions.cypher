// name: cypher_endpoint_transactions
// doc: Transactions the read-only Cypher endpoint opened that Neo4j still holds (every worker, every replica), with their owner (API key id) and request id.
// params: app
// example: {"app": "ttpgraph-cypher-endpoint"}
SHOW TRANSACTIONS YIELD transactionId, metaData, status
WHERE metaData.app = $app
RETURN transactionId AS transaction_id, metaData.owner AS owner, metaData.request AS request,
       status
