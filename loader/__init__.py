"""ttpgraph loader: STIX sources -> graph rows -> batched Neo4j writes; server provisioning."""

import queries  # noqa: F401  (its import keeps pandas out of the neo4j driver)
