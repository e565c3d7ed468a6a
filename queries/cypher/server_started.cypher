// name: server_started
// doc: When the Neo4j server process started (ms since the epoch): the warm-up plans the catalog once per server start.
// params:
// example: {}
CALL dbms.queryJmx('java.lang:type=Runtime') YIELD attributes
RETURN attributes.StartTime.value AS started
