"""ttpgraph front doors: the FastAPI app and the Typer CLI, both thin over queries/ services."""
