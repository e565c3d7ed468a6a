// name: graph_version
// doc: The graph's data version, bumped by every ttpgraph write; cached answers are valid while it is unchanged.
// params:
// example: {}
OPTIONAL MATCH (v:GraphVersion {key: 'ttpgraph'})
RETURN v.value AS value, v.token AS token, v.changed_at AS changed_at
