// name: graph_counts
// doc: Nodes per ATT&CK label in the graph, split into current and revoked or deprecated.
// params: labels
// example: {"labels": ["Technique", "Group"]}
UNWIND $labels AS label
CALL (label) {
  MATCH (n) WHERE label IN labels(n)
  RETURN count(n) AS total,
         count(CASE WHEN coalesce(n.revoked, false) OR coalesce(n.deprecated, false)
                    THEN 1 END) AS retired
}
RETURN label, total, total - retired AS current, retired
ORDER BY label
