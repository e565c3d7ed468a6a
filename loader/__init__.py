"""ttpgraph loader: STIX sources -> graph rows -> batched Neo4j writes; server provisioning."""
