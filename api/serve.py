"""``ttpgraph serve``: the HTTP API under uvicorn, refusing to run open on a network address."""

from __future__ import annotations

import os
from typing import Annotated

import typer


class ServeError(RuntimeError):
    pass


def check_bind(host: str, auth: bool) -> None:
    """Without auth the API may only listen on loopback (127.0.0.0/8, ::1, localhost)."""
    from .auth import is_loopback

    if not auth and not is_loopback(host):
        raise ServeError(
            f"refusing to serve without authentication on {host}: bind 127.0.0.1 for local "
            "use, or keep auth on (TTPGRAPH_API_AUTH=true) and create keys with "
            "'ttpgraph apikey create --role read'"
        )


def serve(
    host: Annotated[
        str, typer.Option(help="Address to bind (anything but loopback needs auth).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="uvicorn worker processes (2-4 per core; each gets a share of --pool-budget).",
        ),
    ] = 1,
    auth: Annotated[
        bool | None,
        typer.Option(
            "--auth/--no-auth",
            help="Require API keys (default: TTPGRAPH_API_AUTH, on). --no-auth only on loopback.",
        ),
    ] = None,
    pool_budget: Annotated[
        int | None,
        typer.Option(
            help="Bolt connections all workers may "
            "hold together (default: TTPGRAPH_POOL_BUDGET, 100)."
        ),
    ] = None,
) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs)."""
    import uvicorn

    from queries.settings import get_settings

    from .auth import KeyStore, keys_path

    settings = get_settings()
    auth = settings.ttpgraph_api_auth if auth is None else auth
    try:
        check_bind(host, auth)
    except ServeError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    # Every worker process reads its settings from the environment.
    os.environ["TTPGRAPH_API_AUTH"] = "true" if auth else "false"
    os.environ["TTPGRAPH_WORKERS"] = str(workers)
    if pool_budget is not None:
        os.environ["TTPGRAPH_POOL_BUDGET"] = str(pool_budget)
    get_settings.cache_clear()
    shown = f"[{host}]" if ":" in host else host
    typer.echo(f"API on http://{shown}:{port}/  (docs: http://{shown}:{port}/docs)")
    if not auth:
        typer.echo("authentication is OFF: loopback connections only", err=True)
    else:
        path = keys_path(settings)
        if KeyStore(path).active_count() == 0:
            hint = (f"no API keys in {path} yet: every route but /health, /ready and /docs "
                    "answers 401. Create one: ttpgraph apikey create --role read")  # fmt: skip
            typer.echo(hint, err=True)
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        proxy_headers=False,
    )
