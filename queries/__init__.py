"""ttpgraph core: settings, the Graph wrapper, the Cypher catalog, services and domain errors."""
