// name: terminate_transactions
// doc: Ask Neo4j to stop transactions by id (the Cypher endpoint's, past their deadline).
// params: ids
// example: {"ids": ["neo4j-transaction-0"]}
TERMINATE TRANSACTIONS $ids
