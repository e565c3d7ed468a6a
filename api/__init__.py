"""ttpgraph front doors: the FastAPI app and the Typer CLI, both thin over queries/ services."""

import queries  # noqa: F401  (its import keeps pandas out of the neo4j driver)
