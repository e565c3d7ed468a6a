// name: threat_model_get
// doc: One saved threat model by name.
// params: name
// example: {"name": "Our adversaries"}
MATCH (m:$('ThreatModel') {name: $name})
RETURN m {.*} AS m
