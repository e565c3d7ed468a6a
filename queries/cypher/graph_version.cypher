// name: graph_version
// doc: The graph's data version, bumped by every ttpgraph write, with the token of each scope written (properties scope:attack, scope:intel, scope:inventory:<name>...); cached answers are valid while what they read is unchanged.
// params:
// example: {}
OPTIONAL MATCH (v:GraphVersion {key: 'ttpgraph'})
RETURN v.value AS value, v.token AS token, v.changed_at AS changed_at, properties(v) AS versions
