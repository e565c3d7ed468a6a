"""The FastAPI application: one driver per process, created in the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from queries.graph import Graph
from queries.settings import Settings, get_settings

from .problems import install_handlers
from .routes import actors, coverage, intel, layers, overlap, releases, system

ROUTERS = [
    system.router,
    actors.router,
    coverage.router,
    layers.router,
    overlap.router,
    intel.router,
    releases.router,
]


def create_app(settings: Settings | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.graph = Graph.connect(settings or get_settings())
        try:
            yield
        finally:
            app.state.graph.close()

    app = FastAPI(
        title="ttpgraph",
        version="0.1.0",
        description="MITRE ATT&CK as a graph: actors, coverage, telemetry and Navigator layers.",
        lifespan=lifespan,
    )
    install_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    return app
