"""The FastAPI application: drivers per process created in the lifespan, one gate (auth and
limits) and one response cache in front of every route, problem+json for every error.

Async design: the services in ``queries/`` are synchronous and shared with the CLI, so routes
that call them are plain ``def`` routes that FastAPI runs in its thread pool over the pooled
sync driver (``app.state.graph``). What the API does by itself — readiness and the response
cache's data-version check — runs on the event loop over the async driver
(``app.state.agraph``); the read-only Cypher endpoint runs in the worker's Cypher child process
(``app.state.cypher_runner``, see api.cypher_runner). A cached answer (the common case:
ATT&CK changes twice a year) therefore costs no thread at all, and concurrent requests share
one version read.
Each worker's connections come from ``TTPGRAPH_POOL_BUDGET`` split across
``TTPGRAPH_WORKERS``, and its thread pool is sized to its sync pool, so a thread never waits
for a connection.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from queries.graph import AsyncGraph, Graph
from queries.settings import Settings, get_settings

from .auth import Gate, KeyStore, document_security, keys_path, open_paths
from .cypher_runner import CypherRunner
from .deps import ResponseCacheMiddleware, VersionGate
from .problems import COMMON_RESPONSES, PROBLEM, Problem, install_handlers
from .routes import (
    actors,
    coverage,
    cypher,
    docs,
    intel,
    layers,
    matrix,
    overlap,
    releases,
    system,
    threat_models,
)

ROUTERS = [
    system.router,
    docs.router,
    actors.router,
    coverage.router,
    layers.router,
    matrix.router,
    overlap.router,
    intel.router,
    releases.router,
    threat_models.router,
    cypher.router,
]


@dataclass(frozen=True)
class PoolSizes:
    sync: int  # the services' driver, one connection per busy thread
    async_: int  # readiness, version checks, the Cypher endpoint
    threads: int


def pool_sizes(settings: Settings) -> PoolSizes:
    """This worker's share of the host's connection budget."""
    per_worker = max(6, settings.ttpgraph_pool_budget // max(1, settings.ttpgraph_workers))
    async_ = max(2, per_worker // 5)
    sync = per_worker - async_
    return PoolSizes(sync=sync, async_=async_, threads=sync)


def create_app(settings: Settings | None = None) -> FastAPI:
    s = settings or get_settings()
    sizes = pool_sizes(s)
    keys = KeyStore(keys_path(s))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = sizes.threads
        app.state.settings = s
        app.state.keys = keys
        app.state.graph = Graph.connect(s, pool_size=sizes.sync, fail_fast=True)
        app.state.agraph = AsyncGraph.connect(s, pool_size=sizes.async_, fail_fast=True)
        app.state.version_gate = VersionGate(app.state.agraph.data_version)
        app.state.cypher_runner = CypherRunner(s)
        app.state.cypher_runner.start_soon()
        if s.ttpgraph_warm_up:
            # The first answers at full speed: the start-up warm-up of `ttpgraph neo4j start`
            # let finish if it runs, then the common questions asked once (plans made, code
            # paths and connections warm) before serving; the rest of the catalog, unless the
            # start-up warm-up planned it, in the background.
            from queries.warm import catalog_planned, wait_for_warm_up, warm, warm_once

            def warm_services() -> bool:
                """Warm the services; whether the catalog still needs its pass after."""
                t0 = time.monotonic()
                budget = s.ttpgraph_warm_up_seconds
                waited = wait_for_warm_up(app.state.graph, budget=budget)
                left = max(1.0, budget - (time.monotonic() - t0))
                warmed = warm_once(app.state.graph, budget=left, catalog=False)
                # not when a start-up warm-up planned it: one this API waited for, or one that
                # ended before the API started (it says so in the graph)
                unplanned = warmed is not None and not waited
                return unplanned and not catalog_planned(app.state.graph)

            try:
                if await anyio.to_thread.run_sync(warm_services):

                    def plan_catalog() -> None:
                        with contextlib.suppress(Exception):  # the API may be stopping
                            warm(app.state.graph, services=False)

                    threading.Thread(
                        target=plan_catalog, name="ttpgraph-warm-catalog", daemon=True
                    ).start()
            except Exception:  # noqa: BLE001 - a warm-up never keeps the API from serving
                logging.getLogger("ttpgraph").warning("warm-up failed", exc_info=True)
        # What start-up made (modules, schemas, the warm-up's leftovers) is moved out of the
        # collector's sight: a full collection then walks what requests made since, not the
        # whole process (20-60 ms every few gap analyses before, a spike in the first answers).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            app.state.version_gate = None
            await app.state.cypher_runner.close()
            await app.state.agraph.close()
            app.state.graph.close()

    app = FastAPI(
        title="ttpgraph",
        version="0.1.0",
        description=(
            "MITRE ATT&CK as a graph: actors, coverage, telemetry and Navigator layers.\n\n"
            "Send an API key in the `X-API-Key` header (or `Authorization: Bearer <key>`): "
            "GET routes need a read key, routes that change the graph a write key. Errors are "
            "RFC 9457 `application/problem+json`. Lists take `limit` and `cursor` and give the "
            "next page in `Link` / `X-Next-Cursor`. GET answers carry an `ETag`."
        ),
        lifespan=lifespan,
        # /docs and /redoc come from routes/docs.py, with their assets served locally.
        docs_url=None,
        redoc_url=None,
    )
    install_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    # Last added runs first: the gate (URL, auth, body size), then the response cache.
    app.add_middleware(
        ResponseCacheMiddleware,
        enabled=s.ttpgraph_response_cache,
        max_mb=s.ttpgraph_response_cache_mb,
    )
    app.add_middleware(Gate, settings=s, keys=keys)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            public = open_paths(app)
            for path, item in spec.get("paths", {}).items():
                for method, op in item.items():
                    if isinstance(op, dict) and path not in public:
                        _add_problem_responses(op, method)
            schemas = spec.setdefault("components", {}).setdefault("schemas", {})
            schemas.setdefault("Problem", Problem.model_json_schema())
            app.openapi_schema = document_security(spec, public)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _add_problem_responses(op: dict[str, Any], method: str) -> None:
    responses = op.setdefault("responses", {})
    ref = {"schema": {"$ref": "#/components/schemas/Problem"}}
    for code, desc in COMMON_RESPONSES.items():
        if code == "413" and method in ("get", "head", "delete"):
            continue
        entry = responses.setdefault(code, {"description": desc})
        entry.setdefault("content", {}).setdefault(PROBLEM, ref)
