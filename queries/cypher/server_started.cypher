// name: server_started
// doc: When the Neo4j server process started (ms since the epoch), and the server start whose catalog a start-up warm-up (`ttpgraph neo4j warm`) planned whole (null: none yet): the warm-up plans the catalog once per server start, and an API starting later does not plan it again.
// params:
// example: {}
CALL dbms.queryJmx('java.lang:type=Runtime') YIELD attributes
OPTIONAL MATCH (v:GraphVersion {key: 'ttpgraph'})
RETURN attributes.StartTime.value AS started, v.catalog_planned_for AS catalog_planned_for
