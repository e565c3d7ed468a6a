"""RFC 9457 problem+json: one model and one place that maps errors to responses.

Domain errors (``queries.errors``) map by their ``status``; validation errors name the field;
Neo4j's own errors map to 503 (away or busy) and 504 (query timeout); anything else is a 500
with a problem body and no traceback. The gate's answers (401, 403, 413, 414) use the same body.
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from neo4j.exceptions import DriverError, Neo4jError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope, Send

from queries.errors import TtpgraphError
from queries.graph import domain_error

PROBLEM = "application/problem+json"
TYPE_BASE = "https://ttpgraph.dev/problems/"
RETRY_AFTER_S = "5"
log = logging.getLogger("ttpgraph.api")


class Problem(BaseModel):
    type: str = Field("about:blank", description="URI reference that identifies the problem type")
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    suggestions: list[str] | None = None
    errors: list[dict[str, Any]] | None = Field(
        None, description="Validation errors, each naming the field ('loc')"
    )


def _type(name: str | None) -> str:
    if not name or name == "about:blank" or name.startswith(("http://", "https://")):
        return name or "about:blank"
    return TYPE_BASE + name


def problem(status: int, title: str, detail: str | None, request: Request, **extra: Any):
    headers = extra.pop("headers", None) or {}
    if status in (503, 504) and "Retry-After" not in headers:
        headers["Retry-After"] = RETRY_AFTER_S
    body = Problem(
        type=_type(extra.pop("type", None)),
        title=title,
        status=status,
        detail=detail,
        instance=str(request.url.path),
        **extra,
    ).model_dump(exclude_none=True)
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers or None)


async def send_problem(
    scope: Scope,
    send: Send,
    status: int,
    title: str,
    detail: str,
    *,
    type: str | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """A problem+json answer from ASGI middleware (before FastAPI's handlers exist)."""
    body = json.dumps(
        {
            "type": _type(type),
            "title": title,
            "status": status,
            "detail": detail,
            "instance": scope.get("path"),
        }
    ).encode()
    out = [
        (b"content-type", PROBLEM.encode()),
        (b"content-length", str(len(body)).encode()),
        *(headers or []),
    ]
    if status in (503, 504):
        out.append((b"retry-after", RETRY_AFTER_S.encode()))
    await send({"type": "http.response.start", "status": status, "headers": out})
    await send({"type": "http.response.body", "body": body})


def problem_response(desc: str) -> dict[str, Any]:
    return {"model": Problem, "content": {PROBLEM: {}}, "description": desc}


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: problem_response(desc)
    for code, desc in {
        404: "Not found (with close matches)",
        422: "Invalid input (the field is named)",
        503: "Graph database unavailable",
    }.items()
}

# Added to every operation of the OpenAPI document (see api.app).
COMMON_RESPONSES: dict[str, str] = {
    "401": "No API key, or not a valid one",
    "403": "The key's role is not enough for this operation",
    "413": "Request body too large",
    "414": "URL too long",
    "422": "Invalid input (the field is named)",
    "500": "Unexpected server error",
    "503": "Graph database unavailable (retry after a few seconds)",
    "504": "A query ran past its time limit",
}


# The `type` of an HTTP error raised by the framework, as docs/api.md lists them.
HTTP_TYPES = {
    401: "unauthorized",
    403: "forbidden",
    404: "notfound",
    409: "conflict",
    413: "too-large",
    414: "uri-too-long",
    422: "invalidinput",
}


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(TtpgraphError)
    async def _domain(request: Request, exc: TtpgraphError):
        if exc.private:
            log.warning("%s %s: %s (%s)", request.method, request.url.path, exc.detail,
                        exc.private)  # fmt: skip
        retry_after = getattr(exc, "retry_after", None)
        return problem(
            exc.status,
            exc.title,
            exc.detail,
            request,
            type=exc.__class__.__name__.lower(),
            suggestions=exc.suggestions or None,
            headers={"Retry-After": str(retry_after)} if retry_after else None,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"loc": [], "msg": "invalid"}
        field = ".".join(str(x) for x in first["loc"])
        return problem(
            422,
            "Invalid input",
            f"{field}: {first['msg']}",
            request,
            type="invalidinput",
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        return problem(
            exc.status_code,
            _title(exc.status_code),
            str(exc.detail),
            request,
            type=HTTP_TYPES.get(exc.status_code),
            headers=dict(exc.headers) if exc.headers else None,
        )

    @app.exception_handler(Neo4jError)
    @app.exception_handler(DriverError)
    async def _neo4j(request: Request, exc: Exception):
        # Services that open sessions themselves (multi-statement writes) raise the driver's
        # errors; map them as Graph.read does.
        mapped = domain_error(exc)
        if mapped is None:
            return _server_error(request, exc)
        return await _domain(request, mapped)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        return _server_error(request, exc)


def _server_error(request: Request, exc: Exception):
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(
        500,
        "Internal server error",
        "an unexpected error occurred; it has been logged",
        request,
        type="internal",
    )


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
